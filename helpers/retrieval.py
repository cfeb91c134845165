"""Retrieval written from scratch (notebook 11): BM25 over mini-web pages, and the prompt that puts what it found
into the model's context.

- ``words``: the retriever's tokenizer (lower-case runs of letters and digits), not the model's.
- ``BM25``: Okapi BM25 (Robertson and Zaragoza, 2009). A page scores, for each query word it contains,
  ``idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len / avglen))``: rare words count more (idf), repeats of a word
  count less and less (k1), and long pages are not favoured for being long (b). The idf is
  ``log((N - n + 0.5) / (n + 0.5))``; a word on more than half of the pages would get a negative weight, so it
  gets ``epsilon`` times the mean idf instead (the convention of the ``rank_bm25`` package, which the tests
  compare with).
- ``Retriever``: pages in, ``search(question, k)`` out (best first); ``rag_prompt(question, k)``.
- ``recall_at_k``: the share of questions whose right page is among the first ``k`` retrieved.
- ``rag_prompt``: passages, then the question, in the reading-comprehension format the base model read on the web
  (``Passage: ... Q: ... A:``), so that it copies the answer from its context.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """The retriever's tokens: lower-case runs of letters and digits ("Mira's" -> ["mira", "s"])."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


class BM25:
    """Okapi BM25 over pre-tokenized documents (lists of words)."""

    def __init__(self, documents: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        if not documents:
            raise ValueError("BM25 needs at least one document")
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"k1 must be >= 0 and b in [0, 1], got k1={k1!r}, b={b!r}")
        self.k1, self.b = k1, b
        self.counts = [Counter(d) for d in documents]
        self.lengths = [len(d) for d in documents]
        self.avg_length = sum(self.lengths) / len(documents) or 1.0
        n = len(documents)
        pages_with = Counter(w for c in self.counts for w in c)  # in how many documents each word occurs
        self.idf = {w: math.log(n - m + 0.5) - math.log(m + 0.5) for w, m in pages_with.items()}
        floor = epsilon * sum(self.idf.values()) / max(len(self.idf), 1)
        self.idf = {w: (floor if v < 0 else v) for w, v in self.idf.items()}

    def score(self, query: Sequence[str], doc: int) -> float:
        """BM25 score of document ``doc`` for the query words (a word asked twice counts twice)."""
        counts, norm = self.counts[doc], self.k1 * (1 - self.b + self.b * self.lengths[doc] / self.avg_length)
        return sum(self.idf.get(q, 0.0) * counts[q] * (self.k1 + 1) / (counts[q] + norm) for q in query if q in counts)

    def scores(self, query: Sequence[str]) -> list[float]:
        """The score of every document, in order."""
        return [self.score(query, i) for i in range(len(self.counts))]

    def top(self, query: Sequence[str], k: int) -> list[int]:
        """Indices of the ``k`` best documents, best first (ties: the earlier document first)."""
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a whole number >= 1, got {k!r}")
        s = self.scores(query)
        return sorted(range(len(s)), key=lambda i: (-s[i], i))[:k]


class Retriever:
    """BM25 over page texts: ``search(question, k)`` returns the ``k`` best pages' indices."""

    def __init__(self, pages: Sequence[str], **bm25_args):
        if not pages or not all(isinstance(p, str) for p in pages):
            raise ValueError("Retriever needs a non-empty list of page texts (str)")
        self.pages = list(pages)
        self.index = BM25([words(p) for p in self.pages], **bm25_args)

    def search(self, question: str, k: int = 1) -> list[int]:
        return self.index.top(words(question), k)

    def rag_prompt(self, question: str, k: int = 1) -> str:
        """The question with the ``k`` best pages put before it (best page nearest the question)."""
        return rag_prompt(question, [self.pages[i] for i in self.search(question, k)])


def rag_prompt(question: str, passages: Sequence[str]) -> str:
    """``Passage: ...`` (the passages joined, the first one last, nearest the question), then ``Q: question``
    and ``A:``, the format of the web's reading-comprehension pages. With no passages: the bare question."""
    q = f"Q: {question.strip()}\nA:"
    if not passages:
        return q
    body = " ".join(" ".join(p.split()) for p in reversed(list(passages)))
    return f"Passage: {body}\n\n{q}"


def recall_at_k(retrieved: Sequence[Sequence[int]], relevant: Sequence[set[int] | int], k: int) -> float:
    """Share of queries with a relevant document among their first ``k`` retrieved (``relevant``: one index or a
    set of indices per query)."""
    if len(retrieved) != len(relevant) or not retrieved:
        raise ValueError(f"one ranking per query, at least one: got {len(retrieved)} rankings, "
                         f"{len(relevant)} relevant sets")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")
    hits = sum(bool(set(r[:k]) & ({rel} if isinstance(rel, int) else set(rel))) for r, rel in zip(retrieved, relevant))
    return hits / len(retrieved)
