"""N-gram (Markov) language models: counting, smoothing, evaluation and sampling.

A language model gives a text a probability through the chain rule,

    p(x_1 .. x_T) = prod_t p(x_t | x_1 .. x_{t-1}),

and an n-gram model makes the Markov assumption that only the last n - 1 tokens matter:
p(x_t | x_<t) ~= p(x_t | h) with the context h = x_{t-n+1} .. x_{t-1}. Its estimates come from counts c(.)
of the training text. With w the next token, V the vocabulary size and h' the context without its
first token, the smoothings here are

- ``"mle"``           maximum likelihood:  c(h w) / c(h)   (zero for anything unseen);
- ``"add-k"``         (c(h w) + k) / (c(h) + k V)          (Laplace when k = 1);
- ``"interpolation"`` lam * c(h w) / c(h) + (1 - lam) * p(w | h')   (Jelinek-Mercer, one fixed lam);
- ``"kneser-ney"``    max(c(h w) - D, 0) / c(h) + D * N1+(h .) / c(h) * p(w | h')   (interpolated
  Kneser-Ney, Chen & Goodman 1998), where N1+(h .) is the number of distinct tokens seen after h and the
  lower orders count *continuations*: c(h w) there is the number of distinct tokens seen before h w.

The recursions end in the uniform distribution 1/V; a context never seen in training passes its whole
weight to the shorter context. Evaluation is the cross-entropy H = -(1/T) sum_t ln p(x_t | h_t) in nats,
the perplexity e^H, and bits per token H / ln 2.

Simplifications: one discount D and one weight lam for every order (no held-out tuning, no modified
Kneser-Ney with three discounts); no start-of-text padding: the first tokens of a text are scored with the
shorter context they have; words are lower-cased and split on a simple regular expression.

``CountLM`` is the dict-based model for any tokens (characters or words). ``NGramLM`` turns a
character-sized ``CountLM`` into dense log-probability tables behind the course's language-model contract
``forward(idx, targets=None) -> (logits, loss)``, so ``sampling.generate`` and ``train.evaluate`` work on it.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from helpers import lm

SMOOTHINGS = ("mle", "add-k", "interpolation", "kneser-ney")
UNK = "<unk>"
Entry = tuple[dict, int]  # ({next token: count}, total count) of one context


def words(text: str) -> list[str]:
    """Lower-cased words (with inner apostrophes) and punctuation marks, in order."""
    if not isinstance(text, str):
        raise TypeError(f"words() needs a string, got {type(text).__name__}")
    return re.findall(r"[a-z]+(?:'[a-z]+)*|[^\sa-z]", text.lower())


def build_vocab(tokens: Sequence[Hashable], min_count: int = 1, unk: str = UNK) -> list:
    """Tokens seen at least ``min_count`` times, most frequent first, plus ``unk`` for all the others."""
    counts = Counter(tokens)
    return [t for t, c in counts.most_common() if c >= min_count and t != unk] + [unk]


def map_unknown(tokens: Sequence[Hashable], vocab: Sequence[Hashable], unk: str = UNK) -> list:
    """Replace every token that is not in ``vocab`` by ``unk`` (which must be in ``vocab``)."""
    known = set(vocab)
    if unk not in known:
        raise ValueError(f"the vocabulary has no unknown-token {unk!r} to map to; build it with build_vocab")
    return [t if t in known else unk for t in tokens]


def ngram_counts(tokens: Sequence[Hashable], n: int) -> Counter:
    """How often each n-gram (a tuple of n tokens) occurs; empty when the text is shorter than n."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return Counter(zip(*(tokens[i:] for i in range(n))))


def bigram_counts(ids: Sequence[int], vocab_size: int) -> torch.Tensor:
    """A (V, V) table of integer counts: entry [a, b] counts how often token b follows token a."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must lie in 0..{vocab_size - 1}")
    pairs = ids[:-1] * vocab_size + ids[1:]  # one integer per bigram
    return torch.bincount(pairs, minlength=vocab_size * vocab_size).view(vocab_size, vocab_size)


def add_k(counts: torch.Tensor, k: float) -> torch.Tensor:
    """Rows of a count table turned into probabilities with add-k smoothing: (c + k) / (row sum + k V)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    counts = counts.double() + k
    totals = counts.sum(-1, keepdim=True)
    if (totals == 0).any():
        raise ValueError("a row has no counts and k = 0: it has no probability distribution; use k > 0")
    return counts / totals


def perplexity_from_probs(probs: Sequence[float]) -> float:
    """exp of the mean negative log-probability; inf when one probability is 0."""
    if len(probs) == 0:
        raise ValueError("perplexity needs at least one probability")
    if any(p <= 0 for p in probs):
        return math.inf
    return math.exp(-sum(math.log(p) for p in probs) / len(probs))


def _group(grams: Counter) -> dict:
    """{(a, b, c): 5} -> {(a, b): ({c: 5}, 5)}: next-token counts and their total per context."""
    table: dict = {}
    for gram, c in grams.items():
        following, total = table.get(gram[:-1], ({}, 0))
        following[gram[-1]] = c
        table[gram[:-1]] = (following, total + c)
    return table


@dataclass(frozen=True)
class Counts:
    """Count tables of every order 1..max_n of one training text (build them with ``count``)."""

    vocab: tuple  # the tokens; position i is index i of every distribution
    max_n: int  # highest order counted
    raw: tuple  # raw[j - 1]: context of j - 1 tokens -> Entry, from n-gram counts
    cont: tuple  # cont[j - 1]: the same from continuation counts (Kneser-Ney), for j < max_n
    index: dict  # token -> its position in vocab


def count(tokens: Sequence[Hashable], max_n: int, vocab: Sequence[Hashable] | None = None) -> Counts:
    """Count all n-grams of orders 1..max_n in ``tokens``; ``vocab`` defaults to the sorted tokens seen."""
    if len(tokens) == 0:
        raise ValueError("cannot count n-grams of an empty text")
    if not isinstance(max_n, int) or not 1 <= max_n <= len(tokens):
        raise ValueError(f"max_n must be between 1 and the text length {len(tokens)}, got {max_n!r}")
    vocab = tuple(sorted(set(tokens))) if vocab is None else tuple(vocab)
    unknown = set(tokens) - set(vocab)
    if unknown:
        raise ValueError(f"tokens not in the vocabulary: {sorted(map(str, unknown))[:10]}; map them first "
                         "(see map_unknown)")
    grams = [ngram_counts(tokens, j) for j in range(1, max_n + 1)]
    raw = tuple(_group(g) for g in grams)
    cont = tuple(_group(Counter(g[1:] for g in grams[j])) for j in range(1, max_n))  # distinct left words
    return Counts(vocab, max_n, raw, cont, {t: i for i, t in enumerate(vocab)})


@dataclass(frozen=True)
class CountLM:
    """An n-gram model read straight from count tables, with one of ``SMOOTHINGS``."""

    counts: Counts  # tables from ``count``; counts.max_n >= n
    n: int  # order: the model looks at the last n - 1 tokens
    smoothing: str = "kneser-ney"  # one of SMOOTHINGS
    k: float = 1.0  # add-k pseudo-count
    lam: float = 0.7  # interpolation weight of the higher order
    discount: float = 0.75  # Kneser-Ney absolute discount D, 0 < D < 1

    def __post_init__(self):
        if self.smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {self.smoothing!r}")
        if not isinstance(self.n, int) or not 1 <= self.n <= self.counts.max_n:
            raise ValueError(f"n must be between 1 and the counted order {self.counts.max_n}, got {self.n!r}")
        if self.smoothing == "add-k" and not self.k > 0:
            raise ValueError(f"add-k smoothing needs k > 0 (k = 0 is 'mle'), got {self.k}")
        if not 0 <= self.lam <= 1 or not 0 < self.discount < 1:
            raise ValueError(f"need 0 <= lam <= 1 and 0 < discount < 1, got {self.lam}, {self.discount}")

    @property
    def vocab_size(self) -> int:
        return len(self.counts.vocab)

    def num_entries(self) -> int:
        """How many counts this model reads from its tables (every stored entry of every level it mixes):
        the count-model analogue of a neural network's number of parameters."""
        top = self.n
        first = top if self.smoothing in ("mle", "add-k") else 1
        total = 0
        for j in range(first, top + 1):
            table = self.counts.cont[j - 1] if self.smoothing == "kneser-ney" and j < top else self.counts.raw[j - 1]
            total += sum(len(following) for following, _ in table.values())
        return total

    def base(self) -> np.ndarray:
        """Where the recursion ends: uniform over the vocabulary (zeros for 'mle', which has no floor)."""
        return np.full(self.vocab_size, 0.0 if self.smoothing == "mle" else 1.0 / self.vocab_size)

    def levels(self, context: Sequence[Hashable]) -> list[Entry | None]:
        """The table entries that mix into p(. | context), shortest context first (None: never seen)."""
        top = min(len(context), self.n - 1) + 1  # the order actually used
        first = top if self.smoothing in ("mle", "add-k") else 1
        found = []
        for j in range(first, top + 1):
            table = self.counts.cont[j - 1] if self.smoothing == "kneser-ney" and j < top else self.counts.raw[j - 1]
            found.append(table.get(tuple(context[len(context) - j + 1:])))
        return found

    def mix(self, c, total: int, distinct: int, lower):
        """One step of the recursion: c counts (a number or a vector over the vocabulary) into p."""
        if self.smoothing == "mle":
            return c / total
        if self.smoothing == "add-k":
            return (c + self.k) / (total + self.k * self.vocab_size)
        if self.smoothing == "interpolation":
            return self.lam * c / total + (1 - self.lam) * lower
        kept = np.maximum(c - self.discount, 0.0) if isinstance(c, np.ndarray) else max(c - self.discount, 0.0)
        return kept / total + self.discount * distinct / total * lower

    def prob(self, context: Sequence[Hashable], token: Hashable) -> float:
        """p(token | context); the context may be of any length (only the last n - 1 tokens count)."""
        if token not in self.counts.index:
            raise ValueError(f"token {token!r} is not in the vocabulary; map unknown tokens first")
        p = 0.0 if self.smoothing == "mle" else 1.0 / self.vocab_size
        for entry in self.levels(context):
            if entry is not None:
                p = self.mix(entry[0].get(token, 0), entry[1], len(entry[0]), p)
        return float(p)

    def distribution(self, context: Sequence[Hashable]) -> np.ndarray:
        """p(. | context) over the whole vocabulary, in ``counts.vocab`` order; (V,) float64."""
        index, p = self.counts.index, self.base()
        for entry in self.levels(context):
            if entry is not None:
                c = np.zeros(self.vocab_size)
                c[[index[t] for t in entry[0]]] = list(entry[0].values())
                p = self.mix(c, entry[1], len(entry[0]), p)
        return p

    def log_probs(self, tokens: Sequence[Hashable]) -> list[float]:
        """ln p(x_t | previous n - 1 tokens) for every token of ``tokens`` (-inf where p = 0)."""
        tokens = tuple(tokens)
        probs = (self.prob(tokens[max(0, t - self.n + 1):t], tokens[t]) for t in range(len(tokens)))
        return [math.log(p) if p > 0 else -math.inf for p in probs]


def cross_entropy(model: CountLM, tokens: Sequence[Hashable]) -> float:
    """Mean negative log-probability of ``tokens`` in nats per token; inf if one token has p = 0."""
    if len(tokens) == 0:
        raise ValueError("cross-entropy of an empty text is undefined: pass at least one token")
    return -sum(model.log_probs(tokens)) / len(tokens)


def perplexity(cross_entropy_nats: float) -> float:
    """e^H: as unsure as a uniform choice among this many tokens."""
    return math.exp(cross_entropy_nats) if math.isfinite(cross_entropy_nats) else math.inf


def sample(model: CountLM, context: Sequence[Hashable], length: int, *, seed: int = 0) -> list:
    """Extend ``context`` by ``length`` tokens drawn from the model; return only the new tokens."""
    rng, tokens = random.Random(seed), list(context)
    for _ in range(length):
        p = model.distribution(tokens)
        if p.sum() <= 0:
            raise ValueError(f"the context {tokens[len(tokens) - model.n + 1:]!r} was never seen and 'mle' "
                             "has no estimate for it; use a smoothed model")
        tokens.append(rng.choices(model.counts.vocab, weights=p)[0])
    return tokens[len(context):]


def suggest(model: CountLM, text: str, k: int = 5) -> list[tuple[str, float]]:
    """Next-word suggestions for a word model: the ``k`` most likely words and their probabilities.

    When ``text`` ends inside a word (no trailing space), that word is a prefix to complete, as a phone
    keyboard does: only words that start with it are suggested.
    """
    tokens = words(text)
    partial = tokens.pop() if tokens and text[-1:].isalpha() else ""
    p = model.distribution(tokens)
    order = np.argsort(-p, kind="stable")
    vocab = model.counts.vocab
    found = [(vocab[i], float(p[i])) for i in order
             if vocab[i] != UNK and str(vocab[i]).startswith(partial) and p[i] > 0]
    return found[:k]


def unseen_share(train_tokens: Sequence[Hashable], heldout_tokens: Sequence[Hashable], n: int) -> float:
    """The share of held-out n-grams (occurrences) that never occur in the training text."""
    seen, held = ngram_counts(train_tokens, n), ngram_counts(heldout_tokens, n)
    total = sum(held.values())
    if total == 0:
        raise ValueError(f"the held-out text has no {n}-grams (it has {len(heldout_tokens)} tokens)")
    return sum(c for g, c in held.items() if g not in seen) / total


@dataclass(frozen=True)
class NGramConfig:
    vocab_size: int = 65  # number of distinct tokens (65 characters in Tiny Shakespeare)
    n: int = 3  # order: the model uses the last n - 1 tokens
    smoothing: str = "kneser-ney"  # how the tables were smoothed (a record; tables hold the result)
    block_size: int = 32  # window for generate / evaluate; only the last n - 1 tokens are used

    def __post_init__(self):
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
        lm = cls(NGramConfig(V, model.n, model.smoothing, max(block_size, model.n - 1)))
        inner = model.base()[None, :]  # (1, V): the order-0 "distribution"
        for j in range(1, model.n + 1):
            lower = inner[np.arange(V ** (j - 1)) % len(inner)]  # (V^(j-1), V): p(. | h') for every h
            table = _fill(model, model.counts.raw[j - 1], lower, V)
            getattr(lm, f"log_probs_{j}").copy_(torch.from_numpy(np.log(table)))
            if model.smoothing in ("interpolation", "kneser-ney") and j < model.n:
                inner = _fill(model, (model.counts.cont if model.smoothing == "kneser-ney" else
                                      model.counts.raw)[j - 1], lower, V)
        return lm

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        lm.check_ids(idx, self.config.vocab_size)
        B, T = idx.shape
        V, n = self.config.vocab_size, self.config.n
        logits = self.log_probs_1[0].expand(B, T, V).clone()  # (B, T, V)
        for j in range(2, min(n, T + 1) + 1):
            windows = idx.unfold(1, j - 1, 1)  # (B, T - j + 2, j - 1): contexts of length j - 1
            powers = V ** torch.arange(j - 2, -1, -1, device=idx.device)
            logits[:, j - 2:] = getattr(self, f"log_probs_{j}")[(windows * powers).sum(-1)]
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
