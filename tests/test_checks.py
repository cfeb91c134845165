import json

import numpy as np
import pytest
import torch

from helpers import checks


def reference_softmax(x):
    return torch.softmax(x, dim=-1)


CASES = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([[0.0, 0.0], [5.0, -5.0]])]


def test_not_attempted_stub():
    def stub(x):
        raise NotImplementedError

    verdict = checks.exercise("softmax", stub, reference_softmax, CASES)
    assert verdict.status == checks.NOT_ATTEMPTED and "not attempted" in str(verdict)


def test_correct_answer():
    def mine(x):
        e = (x - x.max(-1, keepdim=True).values).exp()
        return e / e.sum(-1, keepdim=True)

    verdict = checks.exercise("softmax", mine, reference_softmax, CASES)
    assert verdict.passed and "2 test cases" in verdict.message


def test_wrong_answer_says_where_and_what():
    def wrong(x):
        return x.exp() / x.exp().sum()  # forgets the dimension: wrong on 2-D input

    verdict = checks.exercise("softmax", wrong, reference_softmax, CASES)
    assert verdict.status == checks.WRONG
    assert "largest difference" in verdict.message and "expected" in verdict.message


def test_wrong_shape_and_type_are_named():
    v = checks.exercise("softmax", lambda x: reference_softmax(x).flatten(), reference_softmax, CASES)
    assert v.status == checks.WRONG and "shape (2, 2)" in v.message
    v = checks.exercise("softmax", lambda x: x.tolist(), reference_softmax, CASES)
    assert v.status == checks.WRONG and "expected a tensor, got list" in v.message


def test_exceptions_are_reported_not_raised():
    v = checks.exercise("softmax", lambda x: 1 / 0, reference_softmax, CASES)
    assert v.status == checks.ERROR and "ZeroDivisionError" in v.message
    v = checks.exercise("softmax", "not a function", reference_softmax, CASES)
    assert v.status == checks.ERROR and "expected a function" in v.message


@pytest.mark.parametrize("expected, good, bad", [
    (3, 3.0, 4),
    ([1, [2, 3]], [1, [2, 3]], [1, [2, 4]]),
    ({"a": 1.0}, {"a": 1.0000001}, {"b": 1.0}),
    ("abc", "abc", "abd"),
    (np.arange(3.0), np.arange(3.0), np.arange(3.0) + 1),
])
def test_difference_on_plain_values(expected, good, bad):
    assert checks.difference(good, expected) is None
    assert checks.difference(bad, expected)


def test_integer_tensors_must_match_exactly():
    problem = checks.difference(torch.tensor([1, 2, 4]), torch.tensor([1, 2, 3]))
    assert "1 values differ" in problem and "index (2,)" in problem


def test_assert_close_message():
    checks.assert_close(torch.ones(3), torch.ones(3) + 1e-7)
    with pytest.raises(AssertionError, match="logits: values differ"):
        checks.assert_close(torch.zeros(3), torch.ones(3), name="logits")


def test_check_shape():
    checks.check_shape(torch.zeros(2, 5, 7), (2, None, 7))
    with pytest.raises(AssertionError, match=r"expected shape \(2, \*, 8\), got \(2, 5, 7\)"):
        checks.check_shape(torch.zeros(2, 5, 7), (2, None, 8), name="x")
    with pytest.raises(AssertionError, match="expected 2 dimensions"):
        checks.check_shape(torch.zeros(2, 5, 7), (2, 5))
    with pytest.raises(AssertionError, match="got list"):
        checks.check_shape([1, 2], (2,))
    with pytest.raises(TypeError, match="tuple of ints"):
        checks.check_shape(torch.zeros(2), 2)


def test_numbers_accept_one_element_tensors_and_numpy_scalars():
    assert checks.difference(torch.tensor(2.0), 2) is None
    assert checks.difference(np.float32(2.0), 2.0) is None
    assert "expected a number" in checks.difference(torch.ones(3), 2.0)


def test_an_answer_too_strange_to_compare_is_reported():
    class Weird:
        def __eq__(self, other):
            raise RuntimeError("no comparing me")

    verdict = checks.exercise("odd", lambda x: Weird(), lambda x: object(), [1])
    assert verdict.status == checks.WRONG and "could not compare" in verdict.message


def test_no_cases_is_never_correct():
    verdict = checks.exercise("empty", lambda x: x, lambda x: x, [])
    assert verdict.status == checks.ERROR and not verdict.passed and "no test cases" in verdict.message


def test_infinities_are_reported_where_they_differ():
    expected = torch.tensor([float("-inf"), 1.0, float("-inf"), 2.0])
    got = torch.tensor([float("-inf"), 1.0, 0.5, 2.0])  # right -inf first, a finite value where -inf belongs
    message = checks.difference(got, expected)
    assert "differ at 1 of 4 positions" in message and "index (2,)" in message and "expected -inf, got 0.5" in message


@pytest.fixture
def no_grading(monkeypatch):
    """An environment as a learner's: no grade log, no nbgrader."""
    for variable in (checks.GRADE_LOG, *checks.NBGRADER_VARIABLES):
        monkeypatch.delenv(variable, raising=False)


def test_verdicts_are_appended_to_the_grade_log(tmp_path, monkeypatch, no_grading):
    log = tmp_path / "verdicts.jsonl"
    monkeypatch.setenv(checks.GRADE_LOG, str(log))

    def my_softmax(x):
        return torch.softmax(x, dim=-1)

    checks.exercise("softmax", my_softmax, reference_softmax, CASES)
    checks.exercise("softmax", lambda x: x, reference_softmax, CASES)
    checks.exercise("exp", "not a function", reference_softmax, CASES)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(v["exercise"], v["function"], v["status"]) for v in lines] == [
        ("softmax", "my_softmax", checks.CORRECT), ("softmax", "<lambda>", checks.WRONG), ("exp", "str", checks.ERROR)]
    assert lines[0]["message"] == "correct on all 2 test cases." and "expected" in lines[1]["message"]


def test_nothing_is_written_without_a_grade_log(tmp_path, monkeypatch, no_grading):
    monkeypatch.chdir(tmp_path)
    verdict = checks.exercise("softmax", lambda x: x, reference_softmax, CASES)
    assert verdict.status == checks.WRONG and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("variable, value", [("NBGRADER_EXECUTION", "autograde"), ("NBGRADER_VALIDATING", "1")])
def test_under_nbgrader_a_verdict_that_is_not_correct_raises(monkeypatch, no_grading, variable, value):
    monkeypatch.setenv(variable, value)
    assert checks.exercise("softmax", reference_softmax, reference_softmax, CASES).passed
    with pytest.raises(AssertionError, match=r"\[x\] softmax: on input"):
        checks.exercise("softmax", lambda x: x, reference_softmax, CASES)

    def stub(x):
        raise NotImplementedError

    with pytest.raises(AssertionError, match="not attempted"):
        checks.exercise("softmax", stub, reference_softmax, CASES)


def test_outside_nbgrader_nothing_raises(no_grading):
    for attempt in (lambda x: x, lambda x: 1 / 0, "not a function"):
        assert not checks.exercise("softmax", attempt, reference_softmax, CASES).passed
