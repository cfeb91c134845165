"""Notebooks are stored clean and follow the course's conventions. (nbval runs them: see pyproject.)"""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_start_here.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    dirty = [i for i, c in enumerate(cells) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_imports_follow_the_colab_cell_and_there_is_a_lesson(path):
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert "google.colab" in "".join(code[0]["source"])  # tests/test_colab.py checks that cell
    assert "from helpers import" in "".join(code[1]["source"])
    assert (ROOT / "lessons" / path.with_suffix(".md").name).exists(), f"lessons/{path.stem}.md is missing"
