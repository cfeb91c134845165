"""Self-checks for exercises and small assertions for notebooks.

- ``exercise(name, attempt, reference, cases)`` runs your function and the reference on each case and
  returns a verdict: *not attempted yet*, *correct*, or exactly what is wrong (on which input, expected
  vs got). It never raises, so Restart & Run All always gets to the end of a notebook.
- ``assert_close`` and ``check_shape`` raise an ``AssertionError`` whose message says what differs in
  plain words, instead of a traceback from deep inside torch.

Two environment variables serve a teacher who grades (see lessons/README.md, "Grading the exercises"):

- ``COURSE_GRADE_LOG``: when set, every ``exercise`` call appends its verdict as one JSON line
  ``{"exercise", "function", "status", "message"}`` to that file. ``scripts/classroom.py grade`` sets it to learn
  the verdicts without parsing printed output.
- ``NBGRADER_EXECUTION`` (set by ``nbgrader autograde``) or ``NBGRADER_VALIDATING`` (``nbgrader validate``): nbgrader
  awards a test cell its points when the cell raises no error, so under nbgrader a verdict that is not correct is
  raised as an ``AssertionError`` instead of returned.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

NOT_ATTEMPTED, CORRECT, WRONG, ERROR = "not attempted", "correct", "wrong", "error"
GRADE_LOG = "COURSE_GRADE_LOG"  # environment variable: a file that receives one JSON line per verdict
NBGRADER_VARIABLES = ("NBGRADER_EXECUTION", "NBGRADER_VALIDATING")  # set by nbgrader while it runs a notebook


@dataclass(frozen=True)
class Verdict:
    name: str  # the exercise's name, as shown to the learner
    status: str  # one of NOT_ATTEMPTED, CORRECT, WRONG, ERROR
    message: str  # what to tell the learner

    @property
    def passed(self) -> bool:
        return self.status == CORRECT

    def __str__(self) -> str:
        mark = {NOT_ATTEMPTED: "[ ]", CORRECT: "[ok]", WRONG: "[x]", ERROR: "[x]"}[self.status]
        return f"{mark} {self.name}: {self.message}"

    __repr__ = __str__


def _short(value, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def _describe_case(args: tuple) -> str:
    return ", ".join(_short(a, 120) for a in args)


def exercise(
    name: str,
    attempt: Callable,
    reference: Callable,
    cases: Iterable[tuple | object],
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Verdict:
    """Compare ``attempt(*case)`` with ``reference(*case)`` on every case; never raises (except under nbgrader).

    A case that is not a tuple is passed as the single argument. The learner's stub signals
    "not attempted" by raising ``NotImplementedError`` (the template's ``raise NotImplementedError``).
    The verdict is also appended to ``$COURSE_GRADE_LOG`` when that is set; under nbgrader a verdict that is
    not correct is raised as an ``AssertionError``, so that nbgrader withholds the cell's points.
    """
    verdict = _judge(name, attempt, reference, cases, atol=atol, rtol=rtol)
    _record(verdict, attempt)
    if not verdict.passed and any(os.environ.get(variable) for variable in NBGRADER_VARIABLES):
        raise AssertionError(str(verdict))
    return verdict


def _record(verdict: Verdict, attempt) -> None:
    """Append ``verdict`` as one JSON line to the file named by ``$COURSE_GRADE_LOG``, if set."""
    path = os.environ.get(GRADE_LOG)
    if not path:
        return
    line = {"exercise": verdict.name, "function": getattr(attempt, "__name__", type(attempt).__name__),
            "status": verdict.status, "message": verdict.message}
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(line) + "\n")


def _judge(name: str, attempt: Callable, reference: Callable, cases: Iterable[tuple | object], *,
           atol: float, rtol: float) -> Verdict:
    """The verdict of ``exercise``, neither recorded nor raised."""
    if not callable(attempt):
        return Verdict(name, ERROR, f"expected a function to check, got {type(attempt).__name__}.")
    cases = [c if isinstance(c, tuple) else (c,) for c in cases]
    if not cases:
        return Verdict(name, ERROR, "the check has no test cases, so nothing was checked (a bug in the notebook: "
                                    "pass at least one case).")
    for args in cases:
        expected = reference(*args)
        try:
            got = attempt(*args)
        except NotImplementedError:
            return Verdict(name, NOT_ATTEMPTED, "not attempted yet: replace `raise NotImplementedError`.")
        except Exception as err:  # the learner's bug is reported, not raised
            where = traceback.extract_tb(err.__traceback__)[-1]
            return Verdict(
                name, ERROR,
                f"your function raised {type(err).__name__}: {err} (line {where.lineno}) "
                f"on input ({_describe_case(args)}).",
            )
        try:
            problem = difference(got, expected, atol=atol, rtol=rtol)
        except Exception as err:  # an answer too strange to compare is still an answer to report
            problem = f"could not compare your answer {_short(got)} with the expected {_short(expected)} ({err})"
        if problem:
            return Verdict(name, WRONG, f"on input ({_describe_case(args)}): {problem}")
    return Verdict(name, CORRECT, f"correct on all {len(cases)} test cases.")


def difference(got, expected, *, atol: float = 1e-5, rtol: float = 1e-4) -> str | None:
    """Describe how ``got`` differs from ``expected`` in words, or return None when they match."""
    if isinstance(expected, (torch.Tensor, np.ndarray)):
        return _tensor_difference(got, expected, atol=atol, rtol=rtol)
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if got == expected and type(got) is type(expected):
            return None
        return f"expected {_short(expected)}, got {_short(got)}"
    if isinstance(expected, numbers.Real):
        if isinstance(got, (torch.Tensor, np.ndarray, np.generic)) and (
                got.numel() if isinstance(got, torch.Tensor) else got.size) == 1:
            got = got.item()  # a one-element tensor or array counts as a number
        if not isinstance(got, numbers.Real) or isinstance(got, bool):
            return f"expected a number, got {type(got).__name__} {_short(got)}"
        if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol) or (math.isnan(got) and math.isnan(expected)):
            return None
        return f"expected {expected!r}, got {got!r}"
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"expected a dict, got {type(got).__name__}"
        missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
        if missing or extra:
            missing, extra = sorted(missing, key=repr), sorted(extra, key=repr)
            return f"keys differ: missing {_short(missing)}, unexpected {_short(extra)}"
        for key in expected:
            problem = difference(got[key], expected[key], atol=atol, rtol=rtol)
            if problem:
                return f"at key {key!r}: {problem}"
        return None
    if isinstance(expected, Sequence):
        if not isinstance(got, Sequence) or isinstance(got, str):
            return f"expected a {type(expected).__name__}, got {type(got).__name__}"
        if len(got) != len(expected):
            return f"expected {len(expected)} items, got {len(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            problem = difference(g, e, atol=atol, rtol=rtol)
            if problem:
                return f"at position {i}: {problem}"
        return None
    return None if got == expected else f"expected {_short(expected)}, got {_short(got)}"


def _tensor_difference(got, expected, *, atol: float, rtol: float) -> str | None:
    kind = "tensor" if isinstance(expected, torch.Tensor) else "numpy array"
    if isinstance(expected, np.ndarray):
        expected = torch.from_numpy(expected)
        got = torch.from_numpy(got) if isinstance(got, np.ndarray) else got
    if not isinstance(got, torch.Tensor):
        return f"expected a {kind}, got {type(got).__name__}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
    if expected.dtype.is_floating_point or got.dtype.is_floating_point:
        g, e = got.detach().double().cpu(), expected.detach().double().cpu()
        if torch.allclose(g, e, atol=atol, rtol=rtol, equal_nan=True):
            return None
        wrong = ~torch.isclose(g, e, atol=atol, rtol=rtol, equal_nan=True)  # equal infinities are not wrong
        diff = torch.where(wrong, (g - e).abs().nan_to_num(nan=math.inf), torch.zeros_like(g))
        index = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), tuple(diff.shape))) if diff.dim() else ()
        return (f"values differ at {int(wrong.sum())} of {wrong.numel()} positions; the largest difference "
                f"is at index {index} (expected {e[index].item():.6g}, got {g[index].item():.6g})")
    if torch.equal(got.cpu(), expected.cpu()):
        return None
    mismatch = (got.cpu() != expected.cpu()).nonzero()
    index = tuple(mismatch[0].tolist())
    return (f"{len(mismatch)} values differ; first at index {index} "
            f"(expected {expected[index].item()}, got {got[index].item()})")


def assert_close(got, expected, *, atol: float = 1e-5, rtol: float = 1e-4, name: str = "value") -> None:
    """Raise an AssertionError saying how ``got`` differs from ``expected`` (tensors, numbers, lists)."""
    problem = difference(got, expected, atol=atol, rtol=rtol)
    if problem:
        raise AssertionError(f"{name}: {problem}")


def check_shape(tensor, shape: Sequence[int | None], name: str = "tensor") -> None:
    """Assert ``tensor.shape`` equals ``shape``; ``None`` in ``shape`` matches any size.

    >>> check_shape(torch.zeros(4, 8), (4, None))
    """
    if not isinstance(tensor, (torch.Tensor, np.ndarray)):
        raise AssertionError(f"{name}: expected a tensor of shape {tuple(shape)}, got {type(tensor).__name__}")
    if isinstance(shape, int) or not all(s is None or isinstance(s, int) for s in shape):
        raise TypeError(f"check_shape: shape must be a tuple of ints or None, got {shape!r}")
    actual = tuple(tensor.shape)
    pattern = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
    if len(actual) != len(shape):
        raise AssertionError(f"{name}: expected {len(shape)} dimensions {pattern}, got {len(actual)}: {actual}")
    for axis, (a, s) in enumerate(zip(actual, shape)):
        if s is not None and a != s:
            raise AssertionError(f"{name}: expected shape {pattern}, got {actual} (dimension {axis} is {a}, not {s})")
