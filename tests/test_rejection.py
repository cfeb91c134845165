"""Best-of-N: the KL formula and the exact expectation against enumerating every subset; picking and checking."""

import itertools
import math
import random

import pytest

from helpers import rejection


def test_kl_of_best_of_n():
    assert rejection.kl_best_of_n(1) == 0.0
    assert rejection.kl_best_of_n(2) == pytest.approx(math.log(2) - 0.5)
    assert rejection.kl_best_of_n(64) == pytest.approx(math.log(64) - 63 / 64)
    with pytest.raises(ValueError, match="n must be"):
        rejection.kl_best_of_n(0)


def test_best_of_n_expectation_equals_the_mean_over_every_subset():
    rng = random.Random(0)
    proxy = [rng.random() for _ in range(7)]
    values = [rng.gauss(0, 1) for _ in range(7)]
    for n in range(1, 8):
        subsets = list(itertools.combinations(range(7), n))
        brute = sum(values[max(s, key=lambda i: proxy[i])] for s in subsets) / len(subsets)
        assert rejection.best_of_n_expectation(proxy, values, n) == pytest.approx(brute)
    assert rejection.best_of_n_expectation(proxy, values, 1) == pytest.approx(sum(values) / 7)
    assert rejection.best_of_n_expectation(proxy, values, 7) == values[proxy.index(max(proxy))]
    with pytest.raises(ValueError, match="from 1 to 7"):
        rejection.best_of_n_expectation(proxy, values, 8)
    with pytest.raises(ValueError, match="one length"):
        rejection.best_of_n_expectation(proxy, values[:3], 1)


def test_best_answers_and_correct_answers():
    assert rejection.best_answers([["a", "b", "c"], ["x", "y"]], [[0.1, 0.9, 0.9], [2.0, -1.0]]) == ["b", "x"]
    with pytest.raises(ValueError, match="as many scores as answers"):
        rejection.best_answers([["a"]], [[1.0, 2.0]])
    kept = rejection.correct_answers([["4", "5", "4"], ["7"]], lambda i, a: a == ("4" if i == 0 else "8"))
    assert kept == [(0, "4")]
