"""scripts/classroom.py: solution notebooks, grading of submitted notebooks, nbgrader metadata on exercise cells.

The grading tests share one run (module fixture) over a folder holding the solution of every notebook and broken
submissions of notebook 00; it reuses the suite's COURSE_HOME, so stages built here serve the notebook tests.
"""

import csv
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _load_script():
    spec = importlib.util.spec_from_file_location("classroom", ROOT / "scripts" / "classroom.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


classroom = _load_script()


def exercises_of(path: Path):
    return classroom.find_exercises(json.loads(path.read_text()), path.name)


def notebook(*sources: str) -> dict:
    """A notebook whose code cells hold ``sources``."""
    return {"cells": [{"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
                      for s in sources]}


# -- the course's exercises and their nbgrader metadata ------------------------------------------------------------

def test_every_notebook_has_exercises_and_notebook_00_a_demonstration():
    counts = {path.name[:2]: len(exercises_of(path)[0]) for path in NOTEBOOKS}
    assert all(2 <= n <= 4 for n in counts.values()), counts
    exercises, demos = exercises_of(NOTEBOOKS[0])
    assert [(e.name, e.function) for e in exercises] == [("perplexity", "perplexity"), ("softmax", "softmax")]
    assert demos == {"naive_softmax"}  # its wrong verdict on purpose is not an exercise


def nbgrader_problems(cell: dict, solution: bool) -> list[str]:
    """How the cell's metadata breaks nbgrader's schema 3, or misses the role of an answer / a test cell."""
    meta = cell["metadata"].get("nbgrader")
    if meta is None:
        return ["no nbgrader metadata"]
    allowed = {"schema_version", "grade", "locked", "solution", "task", "grade_id", "points", "checksum", "cell_type"}
    problems = [f"unknown key {k}" for k in meta.keys() - allowed]
    problems += [f"{k} missing" for k in ("schema_version", "grade", "locked", "solution", "grade_id") if k not in meta]
    problems += [f"{k} is not a bool" for k in ("grade", "locked", "solution", "task") if
                 not isinstance(meta.get(k, False), bool)]
    if meta.get("schema_version") != 3 or not re.fullmatch(r"[A-Za-z0-9_\-]+", str(meta.get("grade_id", ""))):
        problems.append(f"schema_version {meta.get('schema_version')!r} or grade_id {meta.get('grade_id')!r}")
    role = (False, True, False) if solution else (True, False, True)  # (grade, solution, locked)
    if (meta.get("grade"), meta.get("solution"), meta.get("locked")) != role or meta.get("task"):
        problems.append(f"not an autograded {'answer' if solution else 'test'} cell: {meta}")
    if meta.get("grade") and not (isinstance(meta.get("points"), (int, float)) and meta["points"] > 0):
        problems.append(f"a graded cell needs positive points, got {meta.get('points')!r}")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_cells_carry_nbgrader_metadata_with_unique_ids(path):
    nb = json.loads(path.read_text())
    exercises, _ = classroom.find_exercises(nb, path.name)
    for e in exercises:
        for index, solution in ((e.stub_cell, True), (e.check_cell, False)):
            problems = nbgrader_problems(nb["cells"][index], solution)
            assert not problems, f"{path.name}, cell {index} ({e.function}): {problems}; run scripts/classroom.py tag"
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"] if "nbgrader" in c["metadata"]]
    assert len(ids) == len(set(ids)) == 2 * len(exercises)


def test_tagging_is_idempotent(tmp_path):
    copy = tmp_path / NOTEBOOKS[1].name
    shutil.copy(NOTEBOOKS[1], copy)
    assert not classroom.tag(copy) and copy.read_bytes() == NOTEBOOKS[1].read_bytes()
    nb = json.loads(copy.read_text())
    for cell in nb["cells"]:
        cell["metadata"].pop("nbgrader", None)
    copy.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    assert classroom.tag(copy) and copy.read_bytes() == NOTEBOOKS[1].read_bytes()


# -- finding exercises and solving them --------------------------------------------------------------------------

STUB = 'def twice(x, scale=1.0):\n    """Two times x."""\n    # YOUR CODE HERE\n    raise NotImplementedError\n'


def test_a_stub_without_a_check_or_a_check_without_a_stub_is_named():
    with pytest.raises(ValueError, match=r"lab\.ipynb, cell 0: the stub twice has no checks\.exercise"):
        classroom.find_exercises(notebook(STUB, "x = 1"), "lab.ipynb")
    with pytest.raises(ValueError, match=r"lab\.ipynb, cell 1: the check 'thrice' calls thrice, but no earlier"):
        classroom.find_exercises(notebook(STUB, 'checks.exercise("thrice", thrice, f, [1])'), "lab.ipynb")
    with pytest.raises(ValueError, match=r"lab\.ipynb, cell 2: twice \('again'\) is checked twice"):
        classroom.find_exercises(notebook(STUB, 'checks.exercise("twice", twice, f, [1])',
                                          'checks.exercise("again", twice, f, [1])'), "lab.ipynb")


def nbgrader_release(source: str) -> str:
    """What nbgrader's ClearSolutions makes of a solution region: its code stub, at the marker's indent."""
    return re.sub(r"( *)### BEGIN SOLUTION\n.*?### END SOLUTION\n",
                  r"\1# YOUR CODE HERE\n\1raise NotImplementedError()\n", source, flags=re.DOTALL)


@pytest.mark.parametrize("stub, reference, inlined", [
    (STUB, "lambda z: 2 * z", True),  # a parameter with a default that the lambda lacks is not passed
    (STUB, "reference_twice", False),
    ("def twice(x, scale=1.0):\n    # YOUR CODE HERE\n    raise NotImplementedError()", "reference_twice", False),
    ("def twice(*values):\n    raise NotImplementedError", "lambda *v: 2 * v[0]", False),
])
def test_a_solved_stub_keeps_its_signature_and_calls_the_reference(stub, reference, inlined):
    check = f"checks.exercise('twice', twice, {reference}, [3.0])"
    nb = notebook("reference_twice = lambda x, scale: 2 * x", stub, check)
    [exercise], _ = classroom.find_exercises(nb, "lab.ipynb")
    solved = classroom.solve(stub, exercise)
    assert solved.startswith(stub.split("\n")[0]) and ('"""Two times x."""' in solved) == ('"""' in stub)
    assert ("inlined" in solved) == inlined and "YOUR CODE HERE" not in solved
    namespace = {"reference_twice": lambda x, scale: 2 * x}
    exec(solved, namespace)
    assert namespace["twice"](3.0) == 6.0
    released = nbgrader_release(solved + "\n")
    assert "raise NotImplementedError()" in released and released.splitlines()[0] == stub.split("\n")[0]


def test_a_reference_that_a_stub_parameter_would_hide_is_refused():
    nb = notebook("scale = 2.0", STUB, "checks.exercise('twice', twice, lambda v: v * scale, [3.0])")
    [exercise], _ = classroom.find_exercises(nb, "lab.ipynb")
    with pytest.raises(ValueError, match=r"cell 1: the check's reference lambda v: v \* scale uses scale, which"):
        classroom.solve(STUB, exercise)  # `return (lambda v: v * scale)(x)` would multiply by the parameter


def test_solution_copies_differ_only_in_their_stubs_and_carry_no_outputs(tmp_path):
    original = json.loads(NOTEBOOKS[2].read_text())
    run = json.loads(NOTEBOOKS[2].read_text())  # as saved after a run: a code cell with an output and a count
    run["cells"][1].update(outputs=[{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}], execution_count=1)
    (tmp_path / NOTEBOOKS[2].name).write_text(json.dumps(run))
    before = {path: path.read_bytes() for path in NOTEBOOKS}
    [copy] = classroom.write_solutions(tmp_path / "solutions", [tmp_path / NOTEBOOKS[2].name])
    assert {path: path.read_bytes() for path in NOTEBOOKS} == before  # notebooks/ is never modified
    solved = json.loads(copy.read_text())
    stubs = {e.stub_cell for e in classroom.find_exercises(original, "02")[0]}
    changed = {i for i, (a, b) in enumerate(zip(original["cells"], solved["cells"])) if a != b}
    assert changed == stubs and len(original["cells"]) == len(solved["cells"])
    assert all(not c.get("outputs") and not c.get("execution_count") for c in solved["cells"])


# -- grading ---------------------------------------------------------------------------------------------------

def test_submissions_are_found_in_each_layout(tmp_path):
    for name in ("ann/ps1/01_ngram.ipynb", "bo_02_rnn.ipynb", "cy_03.ipynb", "dee.ipynb", "ed/notes.ipynb",
                 "ann/.ipynb_checkpoints/x.ipynb", "mary_ann_04_transformer.ipynb"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    found = [(s, p.relative_to(tmp_path).as_posix(), n) for s, p, n in classroom.find_submissions(tmp_path, "05")]
    assert found == [("ann", "ann/ps1/01_ngram.ipynb", "01"), ("bo", "bo_02_rnn.ipynb", "02"),
                     ("cy", "cy_03.ipynb", "03"), ("dee", "dee.ipynb", "05"), ("ed", "ed/notes.ipynb", "05"),
                     ("mary_ann", "mary_ann_04_transformer.ipynb", "04")]
    assert classroom.find_submissions(tmp_path)[3][2] is None


def test_a_cell_past_its_timeout_is_interrupted_and_the_run_goes_on(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in (
        "import time\ntime.sleep(120)", "from helpers import checks",
        "checks.exercise('one', lambda: 1, lambda: 1, [()])", "raise RuntimeError('not reached: all checked')")])
    log = tmp_path / "verdicts.jsonl"
    errors, stopped = classroom.execute_notebook(nb, log, {"one"}, set(), timeout=3)
    assert stopped is None and list(errors) == [0] and "interrupted after 3 s" in errors[0]
    assert [json.loads(line)["status"] for line in log.read_text().splitlines()] == ["correct"]


def edited(source: Path, target: Path, edit) -> None:
    nb = json.loads(source.read_text())
    edit(nb["cells"])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(nb))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """CSV rows of one grading run: every solution notebook, and broken submissions of notebook 00."""
    folder = tmp_path_factory.mktemp("submissions")
    solved = classroom.write_solutions(folder / "solution")[0]  # nbgrader's layout: <student>/<notebook>
    perplexity, softmax = exercises_of(NOTEBOOKS[0])[0]

    def replace(cells, index, old, new):
        cells[index]["source"] = "".join(cells[index]["source"]).replace(old, new)

    edited(solved, folder / "bob_00.ipynb", lambda c: (  # a wrong answer, and a check cell deleted
        replace(c, perplexity.stub_cell, "math.exp(loss)", "loss"), c.pop(softmax.check_cell)))
    edited(solved, folder / "carol_00_start_here.ipynb", lambda c: (  # a cell that raises, then a syntax error
        replace(c, softmax.stub_cell, "def softmax(logits: torch.Tensor)", "def softmax(logits:"),
        c.insert(perplexity.stub_cell, nbformat.v4.new_code_cell("raise RuntimeError('carol')"))))
    edited(solved, folder / "frank" / "00_start_here.ipynb", lambda c: c.insert(
        softmax.stub_cell, nbformat.v4.new_code_cell("import os\nos._exit(1)")))
    (folder / "dave").mkdir()
    (folder / "dave" / "00_start_here.ipynb").write_text("not JSON: the student saved the wrong file")
    (folder / "erin.ipynb").write_text("{}")
    out = folder / "grades.csv"
    classroom.main(["grade", str(folder), "--csv", str(out), "--timeout", "600"])
    with out.open() as file:
        return list(csv.DictReader(file))


def rows_of(rows, student):
    return {row["exercise"]: (row["verdict"], row["message"]) for row in rows if row["student"] == student}


def test_every_solution_notebook_passes_every_check(graded):
    solution = [row for row in graded if row["student"] == "solution"]
    expected = {(path.stem, e.name) for path in NOTEBOOKS for e in exercises_of(path)[0]}
    assert {(row["notebook"], row["exercise"]) for row in solution} == expected and len(solution) == len(expected)
    wrong = [row for row in solution if row["verdict"] != "correct"]
    assert not wrong, wrong


def test_a_wrong_answer_is_graded_wrong_and_a_deleted_check_not_run(graded):
    bob = rows_of(graded, "bob")
    assert bob["perplexity"] == ("wrong", "on input (0.0): expected 1.0, got 0.0")
    verdict, message = bob["softmax"]  # notebook 00's demonstration still checks a "softmax": not his verdict
    assert verdict == "not run" and "the check cell was deleted or changed" in message, message


def test_a_crashing_submission_is_graded_as_far_as_it_runs(graded):
    carol = rows_of(graded, "carol")
    assert carol["perplexity"][0] == "correct"
    verdict, message = carol["softmax"]
    assert verdict == "not run" and "raised NameError" in message and "SyntaxError" in message, message


def test_a_dead_kernel_leaves_the_rest_not_run(graded):
    frank = rows_of(graded, "frank")
    assert frank["perplexity"][0] == "correct"
    assert frank["softmax"][0] == "not run" and "kernel died" in frank["softmax"][1]


def test_a_file_that_is_not_a_notebook_or_of_no_known_notebook_gets_rows(graded):
    dave = rows_of(graded, "dave")
    assert set(dave) == {"perplexity", "softmax"}
    assert all(v == "not run" and "NotJSONError" in m for v, m in dave.values())
    erin = rows_of(graded, "erin")
    assert list(erin) == [""] and erin[""][0] == "not run" and "cannot tell which notebook" in erin[""][1]


def test_make_grade_without_dir_prints_usage(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("needs make")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / ".installed").touch()  # a set-up that is up to date: make installs nothing
    done = subprocess.run(["make", "-s", "grade", f"VENV={tmp_path / 'venv'}", "DIR="], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout.startswith("usage: make grade DIR=") and done.stdout.count("\n") == 1
    assert [line for line in done.stderr.splitlines() if not line.startswith("make")] == []  # nothing else ran
