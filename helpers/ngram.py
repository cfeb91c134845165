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

``CountLM`` is the dict-based model for any tokens (characters or words). ``helpers.ngram_lm`` turns a
character-sized ``CountLM`` into dense tables behind the course's language-model contract.
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


def seen_contexts(counts: Counts, tokens: Sequence[Hashable], n: int) -> list[bool]:
    """For every position t of ``tokens``: was its context (the up to n - 1 tokens before it) followed by
    some token in the training text that ``counts`` came from? False marks the positions where an n-gram
    model of order n has nothing of its own and falls back on a shorter context."""
    if not isinstance(n, int) or not 1 <= n <= counts.max_n:
        raise ValueError(f"n must be between 1 and the counted order {counts.max_n}, got {n!r}")
    tokens = tuple(tokens)
    contexts = (tokens[max(0, t - n + 1):t] for t in range(len(tokens)))
    return [context in counts.raw[len(context)] for context in contexts]
