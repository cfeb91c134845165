"""Write the Colab first cell into every notebook and the "Open in Colab" and Binder links into the README.

Both come from one setting: the repository's address, ``[project.urls] Repository`` in pyproject.toml. Change
it there, run ``python scripts/colab.py``, and commit. ``--check`` changes nothing and exits 1 when a notebook or
the README is out of step (tests/test_colab.py runs it).

    python scripts/colab.py            # write
    python scripts/colab.py --check    # verify
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers.colab import first_cell  # noqa: E402

CELL_ID = "colab-setup"
# One README course-map row per notebook: "| 00 | `00_start_here` | ... | ready | [open](...) |".
ROW = re.compile(r"^(\| \d\d \| `(\d\d_\w+)` \|.*?\|)( \[open\]\([^)]*\) \|)?$", re.M)


def repository() -> str:
    """The repository's address, from pyproject.toml."""
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("urls", {})
    url = urls.get("Repository", "")
    match = re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url)
    if not match:
        raise SystemExit(f"pyproject.toml: [project.urls] Repository must be https://github.com/OWNER/NAME, "
                         f"got {url!r}")
    return url


def colab_link(url: str, notebook: str) -> str:
    return f"https://colab.research.google.com/github/{url.removeprefix('https://github.com/')}/blob/main/notebooks/{notebook}"


def with_first_cell(nb: dict, source: str) -> dict:
    """The notebook with its Colab cell first (replaced if present, inserted if not)."""
    cell = {"cell_type": "code", "execution_count": None, "id": CELL_ID, "metadata": {"tags": ["colab"]},
            "outputs": [], "source": source.splitlines(keepends=True)}
    cells = [c for c in nb["cells"] if c.get("id") != CELL_ID]
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    return {**nb, "cells": cells[:first_code] + [cell] + cells[first_code:]}


BINDER = re.compile(r"https://mybinder\.org/v2/gh/[^/\s]+/[^/\s]+/")


def with_links(readme: str, url: str) -> str:
    """The README with each course-map row's Colab link, and the Binder link, pointing at ``url``."""
    readme = BINDER.sub(f"https://mybinder.org/v2/gh/{url.removeprefix('https://github.com/')}/", readme)
    return ROW.sub(lambda m: f"{m.group(1)} [open]({colab_link(url, m.group(2) + '.ipynb')}) |", readme)


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of step")
    args = parser.parse_args(argv)
    url = repository()
    stale = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        text = path.read_text()
        new = dumps(with_first_cell(json.loads(text), first_cell(url)))
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                write_atomic(path, new)
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = with_links(text, url)
    if sum(1 for m in ROW.finditer(new) if m.group(3)) != len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))):
        raise SystemExit("README.md: the course map must have one row per notebook, ending in an [open](...) column")
    if new != text:
        stale.append(readme.relative_to(ROOT))
        if not args.check:
            write_atomic(readme, new)
    verb = "out of step (run python scripts/colab.py)" if args.check else "written"
    print(f"{verb}: {', '.join(map(str, stale))}" if stale else f"all in step with {url}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
