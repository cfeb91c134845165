"""The Colab first cell: present and guarded in every notebook, in step with the README's links, and working in
the running kernel of a Python where the course is not installed (the way Colab starts)."""

import importlib.util
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from helpers import colab

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import colab as colab_script  # noqa: E402  (scripts/colab.py)

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_notebooks_and_readme_are_in_step_with_the_repository_url(capsys):
    assert colab_script.main(["--check"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_first_code_cell_is_the_guarded_colab_cell(path):
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert code[0]["id"] == colab_script.CELL_ID
    assert "".join(code[0]["source"]) == colab.first_cell(colab_script.repository())
    assert "from helpers import" in "".join(code[1]["source"])


def test_the_cell_does_nothing_outside_colab(tmp_path, monkeypatch):
    assert "google.colab" not in sys.modules
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    exec(colab.first_cell("https://github.com/example/course"), {})  # the cell's own text, as the kernel runs it
    assert sys.path == path_before and not any(tmp_path.iterdir())


def test_readme_links_open_each_notebook_on_colab():
    url = colab_script.repository()
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        link = f"https://colab.research.google.com/github/{url[len('https://github.com/'):]}/blob/main/notebooks/"
        assert f"[open]({link}{path.name})" in readme, path.name


def test_links_and_cells_are_rewritten_not_repeated():
    row = "| 00 | `00_start_here` | topic | 1 min | ready |"
    once = colab_script.with_links(row, "https://github.com/a/b")
    assert once.endswith("| ready | [open](https://colab.research.google.com/github/a/b/blob/main/notebooks/"
                         "00_start_here.ipynb) |")
    assert colab_script.with_links(colab_script.with_links(once, "https://github.com/c/d"), "https://github.com/c/d") \
        == row + " [open](https://colab.research.google.com/github/c/d/blob/main/notebooks/00_start_here.ipynb) |"
    binder = "[here](https://mybinder.org/v2/gh/OWNER/NAME/main?urlpath=lab)"
    assert colab_script.with_links(binder, "https://github.com/a/b") == binder.replace("OWNER/NAME", "a/b")
    nb = {"cells": [{"cell_type": "markdown", "source": []}, {"cell_type": "code", "source": ["x = 1"]}]}
    twice = colab_script.with_first_cell(colab_script.with_first_cell(nb, "a"), "b")
    assert [c.get("id") for c in twice["cells"]] == [None, colab_script.CELL_ID, None]
    assert twice["cells"][1]["source"] == ["b"]


def test_requirements_leave_colabs_own_packages_alone():
    reqs = colab.requirements(ROOT)
    names = {Requirement(r).name.lower() for r in reqs}
    assert "tiktoken" in names and "matplotlib" in names
    assert not names & {"torch", "jupyterlab", "ipywidgets"}


def test_missing_finds_absent_and_too_old_packages():
    assert colab.missing(["numpy>=1.0", "surely-not-a-package-xyz>=1", "numpy>=999"]) == [
        "surely-not-a-package-xyz>=1", "numpy>=999"]


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="url must be"):
        colab.first_cell("http://github.com/a/b")
    with pytest.raises(FileNotFoundError, match="root must be a clone of the course"):
        colab.setup(tmp_path)
    with pytest.raises(FileNotFoundError, match="pyproject.toml"):
        colab.requirements(tmp_path)


def test_the_cell_works_in_a_fresh_kernel_of_a_plain_venv(tmp_path, monkeypatch):
    """As on Colab: a Python without the course, `google.colab` imported, the cell run, then the notebook's imports.

    The venv sees the course's dependencies (a .pth to this environment's site-packages, whose own .pth files,
    the editable install among them, are not read), so `import helpers` fails until the cell has run. git is
    told to fetch the repository's URL from this clone (url.<here>.insteadOf), so the cell's real `git clone`
    runs without the network and gets this clone's last commit."""
    if not (ROOT / ".git").exists() or subprocess.run(["git", "--version"], capture_output=True).returncode:
        pytest.skip("needs git and a git clone of the course")
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "course_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    spec = tmp_path / "share" / "jupyter" / "kernels" / "plain"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "plain venv", "language": "python"}))
    url = colab_script.repository()
    for key, value in {"JUPYTER_PATH": str(tmp_path / "share" / "jupyter"), "GIT_CONFIG_COUNT": "1",
                       "GIT_CONFIG_KEY_0": f"url.file://{ROOT}.insteadOf", "GIT_CONFIG_VALUE_0": url}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    work = tmp_path / "content"
    work.mkdir()
    imports = next(c["source"] for c in json.loads(NOTEBOOKS[0].read_text())["cells"]
                   if c["cell_type"] == "code" and "from helpers import" in "".join(c["source"]))
    cells = [
        "import sys, types, importlib.util\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
        "assert importlib.util.find_spec('helpers') is None, 'helpers is importable before the cell ran'",
        colab.first_cell(url),
        "".join(imports),
        "import helpers\nprint(helpers.__file__)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, kernel_name="plain", timeout=180, resources={"metadata": {"path": str(work)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.outputs)
    assert "installed: nothing, all present" in printed, printed
    assert str(work / "llm-course" / "helpers" / "__init__.py") in printed, printed
    assert (work / "llm-course" / "notebooks" / NOTEBOOKS[0].name).exists()
    assert importlib.util.find_spec("helpers").origin != str(work / "llm-course" / "helpers" / "__init__.py")
