"""The course on Google Colab: what the first cell of every notebook calls there, and that cell itself.

Colab brings Python, PyTorch, NumPy, Matplotlib and its own notebook front end (with its own ipywidgets). The
first cell of each notebook clones the repository next to the notebook, puts the clone on ``sys.path`` and calls
``setup``, which installs only the requirements Colab lacks. Nothing is installed with ``pip install -e``: an
editable install is seen only by a kernel started after it, which is why ``import helpers`` used to fail until a
restart. Outside Colab the cell does nothing (``make lab`` has installed everything).

``first_cell(url)`` is that cell's source; ``scripts/colab.py`` writes it into every notebook (and the README's
"Open in Colab" links) from the one repository URL in ``pyproject.toml``, and a test keeps them in step.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

# Colab's own builds of these stay: its PyTorch matches its CUDA, and its front end needs its ipywidgets.
KEEP_COLABS = ("torch", "jupyterlab", "ipywidgets")
FOLDER = "llm-course"  # where the first cell clones the course, beside the notebook (on Colab: /content)


def first_cell(url: str) -> str:
    """The first code cell of every notebook: on Colab, fetch the course into the running kernel."""
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ValueError(f"url must be the repository's https:// address, got {url!r}")
    return f'''# On Google Colab this cell fetches the course into the running kernel; anywhere else it does nothing.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    if not os.path.isdir("{FOLDER}"):
        subprocess.run(["git", "clone", "--quiet", "--depth=1", "{url}", "{FOLDER}"], check=True)
    if os.path.abspath("{FOLDER}") not in sys.path:
        sys.path.insert(0, os.path.abspath("{FOLDER}"))
    from helpers import colab

    colab.setup("{FOLDER}")'''


def requirements(root: str | Path) -> list[str]:
    """The course's requirements from ``root/pyproject.toml``, less the packages Colab provides itself."""
    path = Path(root) / "pyproject.toml"
    if not path.is_file():
        raise FileNotFoundError(f"root must be the course's folder (with pyproject.toml); no {path}")
    from packaging.requirements import Requirement

    listed = tomllib.loads(path.read_text())["project"]["dependencies"]
    return [r for r in listed if Requirement(r).name.lower() not in KEEP_COLABS]


def missing(reqs: list[str]) -> list[str]:
    """The requirements that are not installed, or installed at a version they exclude."""
    from packaging.requirements import Requirement

    out = []
    for text in reqs:
        req = Requirement(text)
        try:
            version = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            out.append(text)
            continue
        if not req.specifier.contains(version, prereleases=True):
            out.append(text)
    return out


def setup(root: str | Path = FOLDER, *, install: bool = True) -> list[str]:
    """Make the course importable in this kernel: ``root`` on ``sys.path``, missing requirements installed.

    Returns the requirements it installed (or, with ``install=False``, would install)."""
    root = Path(root).resolve()
    if not (root / "helpers" / "__init__.py").is_file():
        raise FileNotFoundError(f"root must be a clone of the course (with helpers/); {root} is not")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    needed = missing(requirements(root))
    if needed and install:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *needed], check=True)
        importlib.invalidate_caches()  # packages installed just now are importable without a restart
    print(f"course: {root} (importable in this kernel); installed: {', '.join(needed) or 'nothing, all present'}")
    return needed

