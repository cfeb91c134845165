"""Classroom tools: solution notebooks for the teacher, and headless grading of submitted notebooks.

    python scripts/classroom.py solutions [--out build/solutions]
    python scripts/classroom.py grade DIR [--csv build/grades.csv] [--notebook NN] [--timeout 600]
    python scripts/classroom.py tag       # maintainers: nbgrader metadata on the exercise cells of notebooks/

An exercise is a stub (a function whose body ends in ``raise NotImplementedError``) and the later cell that checks it
with ``checks.exercise("name", stub, reference, cases)``. A check whose attempt is not a stub (notebook 00's
``naive_softmax``) is a demonstration, not an exercise.

- ``solutions`` copies every notebook with each stub's body replaced by a call to its check's reference, between
  nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers (so the copies also serve as nbgrader's source).
- ``grade`` executes each submission with ``COURSE_GRADE_LOG`` set, so that every check appends its verdict to a file
  (helpers/checks.py), and writes one CSV row per student and exercise. An exercise whose check reported nothing is
  "not run", with the reason. A run stops once every exercise has a verdict: later cells cannot change one.

Folder layouts, the CSV and the nbgrader import are described in lessons/README.md ("Grading the exercises").
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NOT_RUN = "not run"  # the verdict of an exercise whose check reported nothing
COLUMNS = ("student", "notebook", "exercise", "verdict", "message", "file")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"  # nbgrader replaces what lies between with its stub


@dataclass(frozen=True)
class Exercise:
    name: str  # the name given to checks.exercise, as the learner sees it
    function: str  # the stub's function name
    stub_cell: int  # index of the cell that defines the stub
    check_cell: int  # index of the cell that checks it
    stub: ast.FunctionDef  # the stub's definition, parsed from its cell
    reference: ast.expr  # the check's reference, parsed from the check cell


def course_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _is_stub(node: ast.stmt) -> bool:
    if not isinstance(node, ast.FunctionDef) or not isinstance(node.body[-1], ast.Raise):
        return False
    error = node.body[-1].exc
    error = error.func if isinstance(error, ast.Call) else error
    return isinstance(error, ast.Name) and error.id == "NotImplementedError"


def _checks(tree: ast.Module) -> list[tuple[ast.Call, ast.expr | None, ast.expr | None, ast.expr | None]]:
    """Every ``checks.exercise(...)`` call in ``tree``, with its name, attempt and reference arguments."""
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == "exercise" and isinstance(node.func.value, ast.Name)
             and node.func.value.id == "checks"]
    given = [dict(zip(("name", "attempt", "reference"), c.args)) | {k.arg: k.value for k in c.keywords} for c in calls]
    return [(c, g.get("name"), g.get("attempt"), g.get("reference")) for c, g in zip(calls, given)]


def find_exercises(nb: dict, label: str) -> tuple[list[Exercise], set[str]]:
    """The exercises of notebook ``nb`` in order, and the attempt names of its demonstration checks.

    Raises ValueError naming ``label`` and the cell when a stub has no check, or a check names no stub."""
    stubs: dict[str, tuple[int, ast.FunctionDef]] = {}  # function name -> (cell index, definition)
    defined: set[str] = set()  # names bound at the top level of a cell
    exercises, demos = [], set()
    for index, cell in enumerate(nb["cells"]):
        try:
            tree = ast.parse(_source(cell)) if cell["cell_type"] == "code" else None
        except SyntaxError:  # IPython syntax (magics); no exercise lives there
            tree = None
        if tree is None:
            continue
        for node in tree.body:
            if _is_stub(node):
                stubs[node.name] = (index, node)
            targets = node.targets if isinstance(node, ast.Assign) else [node]
            defined |= {getattr(t, "name", getattr(t, "id", None)) for t in targets}
        for call, name, attempt, reference in _checks(tree):
            if not (isinstance(getattr(name, "value", None), str) and isinstance(attempt, ast.Name) and reference):
                raise ValueError(f"{label}, cell {index}: expected checks.exercise(\"name\", function, reference, "
                                 f"cases), got {ast.unparse(call)[:200]}")
            if attempt.id in stubs:
                exercises.append(Exercise(name.value, attempt.id, stubs[attempt.id][0], index,
                                          stubs[attempt.id][1], reference))
            elif attempt.id in defined:
                demos.add(attempt.id)
            else:
                raise ValueError(f"{label}, cell {index}: the check {name.value!r} calls {attempt.id}, but no "
                                 f"earlier cell defines a stub of that name (a function ending in "
                                 f"`raise NotImplementedError`)")
    twice = [e for e in exercises if sum(e.function == o.function or e.name == o.name for o in exercises) > 1]
    if twice:
        raise ValueError(f"{label}, cell {twice[-1].check_cell}: {twice[-1].function} ({twice[-1].name!r}) is checked "
                         f"twice or shares its name; each exercise needs one check and a name of its own")
    checked = {e.function for e in exercises}
    for function, (index, _) in stubs.items():
        if function not in checked:
            raise ValueError(f"{label}, cell {index}: the stub {function} has no checks.exercise(...) cell")
    return exercises, demos


def _inline(reference: ast.Lambda, names: list[str]) -> str | None:
    """The lambda's body with its parameters renamed to ``names``, or None when that could change its meaning."""
    params = reference.args
    bound = [p.arg for p in params.args]
    if params.posonlyargs or params.vararg or params.kwonlyargs or params.kwarg or len(bound) != len(names):
        return None
    body = ast.parse(ast.unparse(reference.body), mode="eval").body  # a copy to rename in
    nested = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr)
    if any(isinstance(n, nested) for n in ast.walk(body)):  # names bound inside the body: leave them alone
        return None
    renames = dict(zip(bound, names))
    for node in ast.walk(body):
        if isinstance(node, ast.Name) and node.id in renames:
            node.id = renames[node.id]
    return ast.unparse(body)


def solution_body(exercise: Exercise) -> list[str]:
    """The lines of a stub's solution: a call that forwards its parameters to the check's reference."""
    params = exercise.stub.args
    names = [p.arg for p in params.posonlyargs + params.args]
    forwarded = names + ([f"*{params.vararg.arg}"] if params.vararg else []) \
        + [f"{p.arg}={p.arg}" for p in params.kwonlyargs] + ([f"**{params.kwarg.arg}"] if params.kwarg else [])
    reference = exercise.reference
    bound = {a.arg for a in ast.walk(reference) if isinstance(a, ast.arg)}  # the lambda's own parameters
    hidden = {a.arg for a in ast.walk(params) if isinstance(a, ast.arg)}  # the stub's parameters hide these
    shadowed = {n.id for n in ast.walk(reference) if isinstance(n, ast.Name) and n.id not in bound} & hidden
    if shadowed:
        raise ValueError(f"cell {exercise.stub_cell}: the check's reference {ast.unparse(reference)} uses "
                         f"{', '.join(sorted(shadowed))}, which the stub's parameters hide; rename one of them")
    inlined = None
    if isinstance(reference, ast.Lambda) and not (params.vararg or params.kwonlyargs or params.kwarg):
        taken = len(reference.args.args)  # parameters with defaults that the lambda lacks (an eps) are not passed
        forwarded = names[:taken] if len(names) - len(params.defaults) <= taken < len(names) else forwarded
        inlined = _inline(reference, forwarded)
    if inlined:
        return [BEGIN, "# Solution: the check's reference (a lambda), inlined.", f"return {inlined}", END]
    callee = ast.unparse(reference)
    if not isinstance(reference, (ast.Name, ast.Attribute)):
        callee = f"({callee})"
    return [BEGIN, f"# Solution: the check's reference, {ast.unparse(reference)}.",
            f"return {callee}({', '.join(forwarded)})", END]


def solve(source: str, exercise: Exercise) -> str:
    """The stub cell's ``source`` with the stub's body, after its signature and docstring, replaced by a solution."""
    stub, lines = exercise.stub, source.splitlines(keepends=True)
    first, last = stub.body[0], stub.body[-1]
    if first.lineno == stub.lineno:
        raise ValueError(f"cell {exercise.stub_cell}: put the body of the stub {stub.name} on its own lines")
    documented = first is not last and isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    keep = first.end_lineno if documented else first.lineno - 1  # lines kept above the new body
    while not documented and keep > stub.lineno and lines[keep - 1].strip()[:1] in ("", "#"):
        keep -= 1  # comments such as "# YOUR CODE HERE" go
    indent = lines[last.lineno - 1][:last.col_offset]
    body = "".join(f"{indent}{line}\n" for line in solution_body(exercise))
    solved = "".join(lines[:keep]) + body + "".join(lines[stub.end_lineno:])
    return solved if source.endswith("\n") else solved.rstrip("\n")


def _write_json(path: Path, nb: dict) -> None:
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")  # the layout Jupyter writes


def write_solutions(out: Path, notebooks: list[Path] | None = None) -> list[Path]:
    """Write a copy of each course notebook, outputs cleared, with every stub solved; return the copies' paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks or course_notebooks():
        nb = json.loads(path.read_text())
        for exercise in find_exercises(nb, path.name)[0]:
            cell = nb["cells"][exercise.stub_cell]
            try:
                cell["source"] = solve(_source(cell), exercise).splitlines(keepends=True)
            except ValueError as err:
                raise ValueError(f"{path.name}, {err}") from None
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        _write_json(out / path.name, nb)
        written.append(out / path.name)
    return written


def nbgrader_metadata(exercise: Exercise, cell: str) -> dict:
    """nbgrader's cell metadata (schema 3): the stub is an "autograded answer", its check "autograder tests"."""
    stub = cell == "stub"
    return {"grade": not stub, "grade_id": f"{'exercise' if stub else 'check'}_{exercise.function}",
            "locked": not stub, **({} if stub else {"points": 1}), "schema_version": 3, "solution": stub, "task": False}


def tag(path: Path) -> bool:
    """Write nbgrader metadata on the exercise cells of the notebook at ``path``; True when the file changed."""
    text = path.read_text()
    nb = json.loads(text)
    for exercise in find_exercises(nb, path.name)[0]:
        nb["cells"][exercise.stub_cell]["metadata"]["nbgrader"] = nbgrader_metadata(exercise, "stub")
        nb["cells"][exercise.check_cell]["metadata"]["nbgrader"] = nbgrader_metadata(exercise, "check")
    if json.dumps(nb, indent=1, ensure_ascii=False) + "\n" == text:
        return False
    _write_json(path, nb)
    return True


def find_submissions(folder: Path, notebook: str | None = None) -> list[tuple[str, Path, str | None]]:
    """(student, path, notebook number or None) for every .ipynb under ``folder``, hidden folders skipped.

    ``folder/<student>/.../<NN>_<name>.ipynb`` (nbgrader's submitted/ layout) or ``folder/<student>_<NN>[_...].ipynb``;
    a file whose name has no number is notebook ``notebook``."""
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        parts = path.relative_to(folder).parts
        if any(part.startswith(".") for part in parts):
            continue
        if len(parts) > 1:
            match = re.match(r"(\d\d)(_|\.ipynb$)", path.name)
            student, number = parts[0], match and match.group(1)
        else:
            match = re.fullmatch(r"(.+?)_(\d\d)(_.*)?\.ipynb", path.name)
            student, number = (match.group(1), match.group(2)) if match else (path.stem, None)
        found.append((student, path, number or notebook))
    return found


class _AllChecked(Exception):
    """Raised from a cell hook to end a run once every exercise has a verdict."""


def _verdicts(log: Path, demos: set[str]) -> list[dict]:
    """The verdicts in the grade log, demonstrations and unreadable lines left out."""
    verdicts = []
    for line in log.read_text().splitlines() if log.exists() else []:
        try:
            verdict = json.loads(line)
            if verdict["function"] not in demos:
                verdicts.append(verdict)
        except (ValueError, KeyError, TypeError):
            continue
    return verdicts


def execute_notebook(nb, log: Path, wanted: set[str], demos: set[str], *,
                     timeout: int = 600) -> tuple[dict[int, str], str | None]:
    """Run ``nb`` (nbformat) in place at smoke scale, verdicts to ``log``, until every exercise in ``wanted`` has one;
    return the errors by cell index, and why the run stopped before (None if it did not)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    errors, running = {}, [None]

    def started(cell, cell_index):
        running[0] = cell_index

    def executed(cell, cell_index, execute_reply):
        content = (execute_reply or {}).get("content", {})
        if content.get("status") == "error":
            errors[cell_index] = f"{content.get('ename')}: {content.get('evalue')}"
        if wanted <= {v.get("exercise") for v in _verdicts(log, demos)}:
            raise _AllChecked

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
                            error_on_timeout={"ename": "Timeout", "evalue": f"interrupted after {timeout} s",
                                              "traceback": []},
                            resources={"metadata": {"path": str(NOTEBOOKS)}}, on_cell_start=started,
                            on_cell_executed=executed)
    env = {**os.environ, "COURSE_SCALE": "smoke", "COURSE_GRADE_LOG": str(log), "MPLBACKEND": "Agg"}
    if env.get("COURSE_DATA"):
        env["COURSE_DATA"] = str(Path(env["COURSE_DATA"]).expanduser().resolve())
    try:
        client.execute(env=env)
    except _AllChecked:
        pass
    except DeadKernelError:
        return errors, f"the kernel died in cell {running[0]}, so the cells after it did not run"
    except Exception as err:  # whatever a submission does, the next one is graded
        return errors, f"the run stopped in cell {running[0]} ({type(err).__name__}: {err})"
    return errors, None


def _why_not_run(nb, exercise: Exercise, errors: dict[int, str], stopped: str | None) -> str:
    def checks_it(cell) -> bool:
        try:
            calls = _checks(ast.parse(cell.source)) if cell.cell_type == "code" else []
        except SyntaxError:
            return False
        return any(getattr(attempt, "id", None) == exercise.function for _, _, attempt, _ in calls)

    cells = [i for i, cell in enumerate(nb.cells) if checks_it(cell)]
    first = f" (the first error was in cell {min(errors)}: {errors[min(errors)]})" if errors else ""
    if not cells:
        return f"no cell checks {exercise.function} any more: the check cell was deleted or changed{first}"
    failed = [i for i in cells if i in errors]
    if failed:  # the likely causes: the last error before the check (a stub's syntax error) and the first one
        before = sorted(i for i in errors if i < failed[0])
        causes = [f"after an error in cell {i}: {errors[i]}" for i in before[-1:]] + [
            f"the first error was in cell {i}: {errors[i]}" for i in before[:1] if len(before) > 1]
        because = f" ({'; '.join(causes)})" if causes else ""
        return f"its check (cell {failed[0]}) raised {errors[failed[0]]}{because}"
    return stopped or f"its check (cell {cells[0]}) reported no verdict{first}"


def grade_submission(path: Path, number: str | None, *, timeout: int = 600) -> list[dict]:
    """Rows {notebook, exercise, verdict, message}, one per exercise of course notebook ``number``."""
    course = {p.name[:2]: p for p in course_notebooks()}.get(number)
    if course is None:
        why = (f"there is no course notebook {number}" if number else
               "cannot tell which notebook this is: name it NN_....ipynb or pass --notebook NN")
        return [{"notebook": "", "exercise": "", "verdict": NOT_RUN, "message": why}]
    exercises, demos = find_exercises(json.loads(course.read_text()), course.name)
    rows = [{"notebook": course.stem, "exercise": e.name, "verdict": NOT_RUN, "message": ""} for e in exercises]
    try:
        import nbformat

        nb = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory() as folder:
            log = Path(folder) / "verdicts.jsonl"
            errors, stopped = execute_notebook(nb, log, {e.name for e in exercises}, demos, timeout=timeout)
            verdicts = _verdicts(log, demos)
        for row, exercise in zip(rows, exercises):
            found = [v for v in verdicts if v.get("exercise") == exercise.name]
            row["verdict"], row["message"] = ((found[-1].get("status"), found[-1].get("message")) if found else
                                              (NOT_RUN, _why_not_run(nb, exercise, errors, stopped)))
    except Exception as err:  # not JSON, not a notebook: every exercise is "not run", and grading goes on
        for row in rows:
            row["message"] = f"could not run the file: {type(err).__name__}: {str(err).splitlines()[0][:300]}"
    return rows


def grade(folder: Path, out: Path, *, notebook: str | None = None, timeout: int = 600) -> list[dict]:
    """Grade every submission under ``folder`` into the CSV ``out`` (written as it goes); return the rows."""
    submissions = find_submissions(folder, notebook)
    if not submissions:
        raise SystemExit(f"grade: no .ipynb files under {folder}")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with out.open("w", newline="") as file:
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        for student, path, number in submissions:
            start = time.monotonic()
            graded = grade_submission(path, number, timeout=timeout)
            for row in graded:
                row.update(student=student, file=str(path.relative_to(folder)))
            writer.writerows(graded)
            file.flush()
            rows += graded
            counts = Counter(row["verdict"] for row in graded)
            print(f"{student} {path.relative_to(folder)}: {', '.join(f'{n} {v}' for v, n in counts.items())} "
                  f"({time.monotonic() - start:.0f} s)", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    solutions = commands.add_parser("solutions", help="write solution notebooks")
    solutions.add_argument("--out", type=Path, default=ROOT / "build" / "solutions")
    grading = commands.add_parser("grade", help="grade a folder of submitted notebooks into a CSV")
    grading.add_argument("folder", type=Path, help="DIR/<student>/NN_*.ipynb or DIR/<student>_NN*.ipynb")
    grading.add_argument("--csv", type=Path, default=ROOT / "build" / "grades.csv")
    grading.add_argument("--notebook", help="the notebook number (NN) of files whose names carry none")
    grading.add_argument("--timeout", type=int, default=600, help="seconds a cell may run before it is interrupted")
    commands.add_parser("tag", help="write nbgrader metadata on the exercise cells of notebooks/")
    args = parser.parse_args(argv)
    if args.command == "solutions":
        for path in write_solutions(args.out):
            print(path)
    elif args.command == "tag":
        for path in course_notebooks():
            print(f"{path.name}: {'tagged' if tag(path) else 'unchanged'}")
    else:
        if not args.folder.is_dir():
            parser.error(f"grade: DIR must be a folder of submitted notebooks, got {args.folder}")
        if args.notebook is not None and not re.fullmatch(r"\d\d", args.notebook):
            parser.error(f"--notebook must be a two-digit number such as 01, got {args.notebook!r}")
        if args.timeout < 1:
            parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
        rows = grade(args.folder, args.csv, notebook=args.notebook, timeout=args.timeout)
        correct = sum(row["verdict"] == "correct" for row in rows)
        print(f"{correct} of {len(rows)} exercises correct; one row per student and exercise in {args.csv}")


if __name__ == "__main__":
    main()
