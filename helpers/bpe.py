"""Byte-pair encoding (BPE) training: learn the merges of a byte-level tokenizer from text.

Training (Sennrich et al. 2016; on bytes, as in GPT-2, Radford et al. 2019): the vocabulary starts as the
256 byte values; count every adjacent pair of tokens, make the most frequent pair a new token, replace it
everywhere, repeat until the vocabulary has ``vocab_size`` tokens. A regex first cuts the text into chunks
(words, numbers, punctuation, spaces: "pre-tokenization") and merges never cross a chunk's edge.

- ``get_stats`` and ``merge``: the two pure functions the algorithm is made of.
- ``naive_merges``: the algorithm as written, one merge at a time, recounting every pair after each merge
  (clear, slow). ``train_naive`` runs it to a vocabulary size; ``train_steps`` records each step for a slider.
- ``train_fast``: the same merges from counts updated incrementally, over unique chunks with their counts,
  an index pair -> chunks that contain it, and a heap of pair counts (fast).
- ``train``: text -> ``Tokenizer``. ``apply_merges``: encode by replaying the merges in training order.

The tokenizer that uses the result (encode, decode, special tokens, files, tiktoken) is ``helpers.tokenizer``;
its names are imported here too, so that ``bpe.train``, ``bpe.Tokenizer``, ``bpe.split`` and ``bpe.PAD``
all come from one place.

Simplified: pure Python; ties between equally frequent pairs go to the pair with the smallest ids, so
training is deterministic but may differ from other libraries on ties; a merge whose bytes already are a
token reuses that token (rare; it keeps the vocabulary free of duplicates).
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# The tokenizer that training returns, and the names a user of ``bpe.train`` needs with it.
from helpers.tokenizer import BOS, ENDOFTEXT, EOS, PAD, PATTERNS, Tokenizer, pad, resolve_pattern, split, valid_text  # noqa: F401, E501


def get_stats(ids: list[int], counts: dict[tuple[int, int], int] | None = None,
              weight: int = 1) -> dict[tuple[int, int], int]:
    """Count adjacent pairs: [1, 2, 3, 1, 2] -> {(1, 2): 2, (2, 3): 1, (3, 1): 1}. Adds into ``counts``."""
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge(ids: list[int], pair: tuple[int, int], idx: int) -> list[int]:
    """Replace every occurrence of ``pair``, left to right, by ``idx``: ([1, 2, 3, 1, 2], (1, 2), 4) -> [4, 3, 4]."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def best_pair(stats: dict[tuple[int, int], int]) -> tuple[int, int]:
    """The most frequent pair; ties go to the smallest pair of ids."""
    return min(stats, key=lambda pair: (-stats[pair], pair))


def _new_token(vocab: list[bytes], index: dict[bytes, int], pair: tuple[int, int]) -> int:
    """The id for merging ``pair``: a new one, or the existing token with the same bytes."""
    token = vocab[pair[0]] + vocab[pair[1]]
    if token not in index:
        index[token] = len(vocab)
        vocab.append(token)
    return index[token]


@dataclass(frozen=True)
class Merge:
    pair: tuple[int, int]  # the two token ids joined
    idx: int  # the id of the joined token
    count: int  # how often the pair occurred when it was chosen
    vocab: list[bytes]  # id -> bytes, after this merge (the same list, growing, at every step)
    ids: list[list[int]]  # every chunk as token ids, after this merge


def naive_merges(chunks: Iterable[bytes]) -> Iterator[Merge]:
    """Naive BPE, one merge at a time: recount all pairs in all chunks, merge the most frequent everywhere.
    Stops when every chunk is a single token; take as many merges as you need (e.g. ``itertools.islice``)."""
    ids = [list(chunk) for chunk in chunks]
    vocab = [bytes([b]) for b in range(256)]  # id -> bytes
    index = {token: i for i, token in enumerate(vocab)}  # bytes -> id
    while True:
        stats = {}  # (int, int) -> count
        for chunk_ids in ids:
            get_stats(chunk_ids, stats)
        if not stats:  # nothing left to merge
            return
        pair = best_pair(stats)
        idx = _new_token(vocab, index, pair)
        ids = [merge(chunk_ids, pair, idx) for chunk_ids in ids]
        yield Merge(pair, idx, stats[pair], vocab, ids)


def train_naive(chunks: Iterable[bytes], vocab_size: int, *, progress: bool = False
                ) -> tuple[dict[tuple[int, int], int], list[bytes]]:
    """Learn merges with ``naive_merges`` until the vocabulary has ``vocab_size`` tokens. Returns (merges, vocab)."""
    from tqdm.auto import tqdm

    merges = {}  # (int, int) -> int, in the order they were learned
    vocab = [bytes([b]) for b in range(256)]
    with tqdm(total=max(vocab_size - 256, 0), desc="naive BPE", disable=not progress) as bar:
        for step in naive_merges(chunks) if vocab_size > 256 else ():
            merges[step.pair], vocab = step.idx, step.vocab
            bar.update(len(vocab) - 256 - bar.n)
            if len(vocab) >= vocab_size:
                break
    return merges, vocab


@dataclass(frozen=True)
class Step:
    pair: tuple[bytes, bytes] | None  # the two tokens joined at this step (None for the start)
    count: int  # how often that pair occurred
    pieces: list[bytes]  # the whole text as tokens after this step


def train_steps(text: str, num_merges: int, pattern: str = "gpt4") -> list[Step]:
    """Every state of naive training on a small text, from raw bytes to ``num_merges`` merges."""
    chunks = [chunk.encode("utf-8") for chunk in split(valid_text(text), pattern)]
    steps = [Step(None, 0, [bytes([b]) for chunk in chunks for b in chunk])]
    for step in itertools.islice(naive_merges(chunks), num_merges):
        vocab = step.vocab
        pieces = [vocab[i] for chunk_ids in step.ids for i in chunk_ids]
        steps.append(Step((vocab[step.pair[0]], vocab[step.pair[1]]), step.count, pieces))
    return steps


def _merge_where_needed(words: list[list[int]], weights: list[int], where: dict[tuple[int, int], set[int]],
                        pair: tuple[int, int], idx: int) -> dict[tuple[int, int], int]:
    """Merge ``pair`` in the chunks that contain it (in place, index kept up to date); return the count changes."""
    delta = {}  # (int, int) -> change in count
    for i in where.pop(pair):
        old, new = words[i], merge(words[i], pair, idx)
        get_stats(old, delta, -weights[i])
        get_stats(new, delta, weights[i])
        old_pairs, new_pairs = set(zip(old, old[1:])), set(zip(new, new[1:]))
        for gone in old_pairs - new_pairs - {pair}:
            where[gone].discard(i)
        for born in new_pairs - old_pairs:
            where.setdefault(born, set()).add(i)
        words[i] = new
    return delta


def _count_pairs(words: list[list[int]], weights: list[int]
                 ) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], set[int]]]:
    """Weighted pair counts over unique chunks, and the index pair -> indices of the chunks that contain it."""
    stats, where = {}, {}  # (int, int) -> count; (int, int) -> set of indices into words
    for i, word in enumerate(words):
        for pair in zip(word, word[1:]):
            stats[pair] = stats.get(pair, 0) + weights[i]
            where.setdefault(pair, set()).add(i)
    return stats, where


def train_fast(chunks: Iterable[bytes], vocab_size: int, *, progress: bool = False
               ) -> tuple[dict[tuple[int, int], int], list[bytes]]:
    """The same merges as ``train_naive``, with counts updated only where a merge changes something."""
    from tqdm.auto import tqdm

    chunk_counts = Counter(chunks)
    words = [list(chunk) for chunk in chunk_counts]  # each unique chunk once, as token ids
    weights = list(chunk_counts.values())  # how often each unique chunk occurs
    stats, where = _count_pairs(words, weights)
    heap = [(-count, pair) for pair, count in stats.items()]  # entries go stale; checked when popped
    heapq.heapify(heap)
    vocab = [bytes([b]) for b in range(256)]
    index = {token: i for i, token in enumerate(vocab)}
    merges = {}
    with tqdm(total=max(vocab_size - 256, 0), desc="fast BPE", disable=not progress) as bar:
        while len(vocab) < vocab_size and heap:
            negative_count, pair = heapq.heappop(heap)
            if stats.get(pair) != -negative_count:
                continue  # stale entry: this pair's count has changed since it was pushed
            merges[pair] = idx = _new_token(vocab, index, pair)
            for changed, change in _merge_where_needed(words, weights, where, pair, idx).items():
                if change:
                    stats[changed] = stats.get(changed, 0) + change
                    if stats[changed] > 0:
                        heapq.heappush(heap, (-stats[changed], changed))
                    else:
                        del stats[changed]
            bar.update(len(vocab) - 256 - bar.n)
    return merges, vocab


def train(text: str, vocab_size: int, pattern: str = "gpt4", special_tokens: Iterable[str] = (), *,
          trainer: str = "fast", progress: bool = False) -> Tokenizer:
    """Train a byte-level BPE tokenizer; ``vocab_size`` counts the 256 bytes, the merges and the specials.

    Special tokens get the last ids; their strings inside ``text`` are trained on as ordinary text. On a text
    too small to fill the vocabulary, training stops early.
    """
    if not isinstance(text, str):
        raise TypeError(f"train needs a str of training text, got {type(text).__name__}")
    specials = list(dict.fromkeys(special_tokens))
    if not isinstance(vocab_size, int) or vocab_size < 256 + len(specials):
        raise ValueError(f"vocab_size must be at least 256 (one token per byte) + {len(specials)} special "
                         f"tokens = {256 + len(specials)}, got {vocab_size!r}")
    if trainer not in ("fast", "naive"):
        raise ValueError(f"trainer must be 'fast' or 'naive', got {trainer!r}")
    pattern = resolve_pattern(pattern)
    chunks = [chunk.encode("utf-8") for chunk in split(valid_text(text), pattern)]
    learn = train_fast if trainer == "fast" else train_naive
    _, vocab = learn(chunks, vocab_size - len(specials), progress=progress)
    ranks = {token: i for i, token in enumerate(vocab)}
    return Tokenizer(ranks, pattern, {s: len(vocab) + i for i, s in enumerate(specials)})


def apply_merges(ids: list[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """Encode by merges, as in training: join the pair learned first, again and again, until none applies."""
    ids = list(ids)
    while len(ids) >= 2:
        stats = get_stats(ids)
        pair = min(stats, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = merge(ids, pair, merges[pair])
    return ids
