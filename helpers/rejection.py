"""Optimising against a reward without reinforcement learning (notebook 10): best-of-N sampling, and fine-tuning
on the best samples (rejection sampling; with an exact checker, expert iteration).

- ``best_of_n_expectation``: from M scored samples of one prompt, the exact expected value (gold reward, say) of
  the sample a proxy (the reward model) picks as best out of N random ones, for every N <= M, without drawing.
- ``kl_best_of_n``: the KL divergence of best-of-N from the model it samples, log N - (N-1)/N (an upper bound
  that is exact when no two samples tie; Stiennon et al., 2020, appendix; Beirami et al., 2024).
- ``best_answers``: the proxy's choice per prompt; ``correct_answers``: the answers an exact checker accepts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def kl_best_of_n(n: int) -> float:
    """KL(best-of-n || the sampling model) in nats: log n - (n - 1) / n."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number >= 1, got {n!r}")
    return math.log(n) - (n - 1) / n


def best_of_n_expectation(proxy: Sequence[float], values: Sequence[float], n: int) -> float:
    """Expected ``values`` of the sample with the highest ``proxy`` among ``n`` drawn without replacement from the
    M given samples. With the samples sorted by proxy (ascending), sample i (1-based) is the best of a random
    n-subset with probability C(i-1, n-1) / C(M, n). Ties in the proxy are broken by position."""
    m = len(proxy)
    if m != len(values) or m == 0:
        raise ValueError(f"proxy and values must be non-empty and of one length, got {m} and {len(values)}")
    if not isinstance(n, int) or not 1 <= n <= m:
        raise ValueError(f"n must be a whole number from 1 to {m} (the samples given), got {n!r}")
    order = sorted(range(m), key=lambda i: (proxy[i], i))
    total = math.comb(m, n)
    return sum(values[j] * math.comb(rank, n - 1) / total for rank, j in enumerate(order))


def best_answers(answers: Sequence[Sequence[str]], scores: Sequence[Sequence[float]]) -> list[str]:
    """The highest-scoring answer of each prompt's list (the first one on a tie)."""
    if len(answers) != len(scores):
        raise ValueError(f"one list of scores per prompt expected: {len(answers)} and {len(scores)}")
    out = []
    for a, s in zip(answers, scores):
        if len(a) != len(s) or not a:
            raise ValueError(f"each prompt needs as many scores as answers (at least one), got {len(a)} and {len(s)}")
        out.append(a[max(range(len(s)), key=lambda i: (s[i], -i))])
    return out


def correct_answers(answers: Sequence[Sequence[str]], check: Callable[[int, str], bool]) -> list[tuple[int, str]]:
    """(prompt index, answer) for every answer ``check(prompt index, answer)`` accepts, each distinct answer of a
    prompt once: the training set of one round of expert iteration."""
    kept = []
    for i, options in enumerate(answers):
        for a in dict.fromkeys(options):
            if check(i, a):
                kept.append((i, a))
    return kept
