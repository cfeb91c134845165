"""A character n-gram model behind the course's language-model contract.

``helpers.ngram.CountLM`` reads probabilities from dictionaries of counts, one context at a time.
``NGramLM`` stores the same model as dense tables of log-probabilities, one table per order j = 1..n,

    log_probs_j[h, w] = ln p(w | h),    h the context of j - 1 tokens read as a base-V number,

so that it answers ``forward(idx, targets=None) -> (logits, loss)`` for a whole (B, T) batch at once, like
every neural model of the course: ``sampling.generate``, ``train.evaluate`` and ``artifacts.save`` work on
it unchanged. Its "logits" are log-probabilities (softmax leaves them as they are) and its loss is the
shared ``lm.lm_loss``, so target id -1 adds nothing here either.

Simplifications: the tables are dense, V^(j-1) rows per order, so only small vocabularies and orders fit
(``NGramLM.MAX_ENTRIES``); the tables are filled once from counts and never trained; a position with fewer
than n - 1 tokens before it uses the table of the order it has (no start-of-text padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from helpers import lm
from helpers.ngram import CountLM


@dataclass(frozen=True)
class NGramConfig:
    vocab_size: int = 65  # number of distinct tokens (65 characters in Tiny Shakespeare)
    n: int = 3  # order: the model uses the last n - 1 tokens
    smoothing: str = "kneser-ney"  # how the tables were smoothed (a record; tables hold the result)
    block_size: int = 32  # window for generate / evaluate; only the last n - 1 tokens are used

    def __post_init__(self):
        if self.vocab_size < 1:
            raise ValueError(f"vocab_size must be at least 1, got {self.vocab_size}")
        if self.n < 1 or self.block_size < max(1, self.n - 1):
            raise ValueError(f"need n >= 1 and block_size >= n - 1, got n={self.n}, block_size={self.block_size}")


class NGramLM(nn.Module):
    """Dense log-probability tables of orders 1..n behind ``forward(idx, targets) -> (logits, loss)``.

    ``log_probs_j`` has shape (V^(j-1), V): row h (the context read as a base-V number) holds
    ln p(. | h). A position with fewer than n - 1 tokens before it uses the table of the order it has.
    """

    MAX_ENTRIES = 1 << 22  # V^n above this would not fit comfortably in memory

    def __init__(self, config: NGramConfig):
        super().__init__()
        V, n = config.vocab_size, config.n
        if V ** n > self.MAX_ENTRIES:
            raise ValueError(f"a dense table of {V}^{n} entries is too large; use CountLM for this order")
        self.config = config
        for j in range(1, n + 1):
            self.register_buffer(f"log_probs_{j}", torch.zeros(V ** (j - 1), V))

    @classmethod
    def from_counts(cls, model: CountLM, block_size: int = 32) -> NGramLM:
        """Fill the tables from a ``CountLM`` over token ids 0..V-1 (same numbers as ``model.prob``)."""
        V = model.vocab_size
        if model.counts.vocab != tuple(range(V)):
            raise ValueError("NGramLM needs a CountLM counted over token ids 0..V-1 (e.g. CharTokenizer ids)")
        if model.smoothing == "mle":
            raise ValueError("'mle' gives probability 0 to unseen n-grams (infinite loss); use a smoothing")
        ngram_lm = cls(NGramConfig(V, model.n, model.smoothing, max(block_size, model.n - 1)))
        inner = model.base()[None, :]  # (1, V): the order-0 "distribution"
        for j in range(1, model.n + 1):
            lower = inner[np.arange(V ** (j - 1)) % len(inner)]  # (V^(j-1), V): p(. | h') for every h
            table = _fill(model, model.counts.raw[j - 1], lower, V)
            getattr(ngram_lm, f"log_probs_{j}").copy_(torch.from_numpy(np.log(table)))
            if model.smoothing in ("interpolation", "kneser-ney") and j < model.n:
                inner = _fill(model, (model.counts.cont if model.smoothing == "kneser-ney" else
                                      model.counts.raw)[j - 1], lower, V)
        return ngram_lm

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        lm.check_ids(idx, self.config.vocab_size)
        B, T = idx.shape
        V, n = self.config.vocab_size, self.config.n
        logits = self.log_probs_1[0].expand(B, T, V).clone()  # (B, T, V)
        for j in range(2, min(n, T + 1) + 1):
            windows = idx.unfold(1, j - 1, 1)  # (B, T - j + 2, j - 1): contexts of length j - 1
            powers = V ** torch.arange(j - 2, -1, -1, device=idx.device)
            logits[:, j - 2:] = getattr(self, f"log_probs_{j}")[(windows * powers).sum(-1)]  # (B, T - j + 2, V)
        return logits, lm.lm_loss(logits, targets)


def _fill(model: CountLM, table: dict, lower: np.ndarray, V: int) -> np.ndarray:
    """One order's dense table: ``lower`` rows, with the seen contexts mixed in from ``table``."""
    out = lower.copy()
    for context, (following, total) in table.items():
        row = sum(t * V ** (len(context) - 1 - i) for i, t in enumerate(context))
        c = np.zeros(V)
        c[list(following)] = list(following.values())
        out[row] = model.mix(c, total, len(following), lower[row])
    return out
