"""Byte-level byte-pair encoding (BPE): the tokenizer of GPT-2, GPT-4 and most LLMs since.

Training (Sennrich et al. 2016; on bytes, as in GPT-2, Radford et al. 2019): the vocabulary starts as the
256 byte values; count every adjacent pair of tokens, make the most frequent pair a new token, replace it
everywhere, repeat until the vocabulary has ``vocab_size`` tokens. A regex first cuts the text into chunks
(words, numbers, punctuation, spaces: "pre-tokenization") and merges never cross a chunk's edge.

- ``get_stats`` and ``merge``: the two pure functions the algorithm is made of.
- ``train_naive``: recounts every pair after each merge (clear, slow).
  ``train_fast``: the same merges from counts updated incrementally, over unique chunks with their counts,
  an index pair -> chunks that contain it, and a heap of pair counts (fast).
- ``Tokenizer``: ``encode`` / ``decode``, special tokens with an allow-list, ``save`` / ``load`` (JSON),
  ``to_tiktoken`` and ``from_tiktoken_file`` (tiktoken's ``base64 rank`` text format).

Encoding works as tiktoken's does, so that the ids agree exactly: inside a chunk, repeatedly join the
adjacent pair of parts whose concatenation has the lowest rank (rank = token id). A tokenizer is therefore
just its ranks (bytes -> id), its regex and its special tokens.

Simplified: pure Python (tiktoken's Rust encodes 2-10x faster); ties between equally frequent pairs go to
the pair with the smallest ids, so training is deterministic but may differ from other libraries on ties;
a merge whose bytes already are a token reuses that token (rare; it keeps the vocabulary free of
duplicates); long pieces are merged in quadratic time, as in early tiktoken.
"""

from __future__ import annotations

import base64
import heapq
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import regex

# GPT-2's pattern (tiktoken's r50k_base): contractions, letters, numbers, other symbols, spaces.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
# GPT-4's pattern (cl100k_base): case-insensitive contractions, numbers of at most 3 digits, newlines apart.
GPT4_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
# GPT-4's pattern with every digit its own chunk (as in LLaMA and others): 12345 -> 1 2 3 4 5.
GPT4_DIGITS_PATTERN = GPT4_PATTERN.replace(r"\p{N}{1,3}+", r"\p{N}")
PATTERNS = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN, "gpt4-digits": GPT4_DIGITS_PATTERN}

ENDOFTEXT, BOS, EOS, PAD = "<|endoftext|>", "<|bos|>", "<|eos|>", "<|pad|>"
FILE_FORMAT = "helpers.bpe/1"


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


def resolve_pattern(pattern: str) -> str:
    """A name from ``PATTERNS`` ("gpt2", "gpt4", "gpt4-digits") or a regex, returned as a regex."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a name ({', '.join(PATTERNS)}) or a regex string, got {type(pattern)}")
    pattern = PATTERNS.get(pattern, pattern)
    try:
        regex.compile(pattern)
    except regex.error as err:
        raise ValueError(f"pattern is neither a known name ({', '.join(PATTERNS)}) nor a valid regex: {err}") from err
    return pattern


def split(text: str, pattern: str = "gpt4") -> list[str]:
    """Pre-tokenize: the chunks of ``text`` that ``pattern`` finds (together they are the whole text)."""
    return regex.findall(resolve_pattern(pattern), text)


def _new_token(vocab: list[bytes], index: dict[bytes, int], pair: tuple[int, int]) -> int:
    """The id for merging ``pair``: a new one, or the existing token with the same bytes."""
    token = vocab[pair[0]] + vocab[pair[1]]
    if token not in index:
        index[token] = len(vocab)
        vocab.append(token)
    return index[token]


def train_naive(chunks: Iterable[bytes], vocab_size: int, *, progress: bool = False
                ) -> tuple[dict[tuple[int, int], int], list[bytes]]:
    """Learn merges by recounting all pairs in all chunks after every merge. Returns (merges, vocab)."""
    from tqdm.auto import tqdm

    ids = [list(chunk) for chunk in chunks]
    vocab = [bytes([b]) for b in range(256)]  # id -> bytes
    index = {token: i for i, token in enumerate(vocab)}  # bytes -> id
    merges = {}  # (int, int) -> int, in the order they were learned
    with tqdm(total=max(vocab_size - 256, 0), desc="naive BPE", disable=not progress) as bar:
        while len(vocab) < vocab_size:
            stats = {}
            for chunk_ids in ids:
                get_stats(chunk_ids, stats)
            if not stats:  # every chunk is a single token: nothing left to merge
                break
            pair = best_pair(stats)
            merges[pair] = idx = _new_token(vocab, index, pair)
            ids = [merge(chunk_ids, pair, idx) for chunk_ids in ids]
            bar.update(len(vocab) - 256 - bar.n)
    return merges, vocab


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


def train_fast(chunks: Iterable[bytes], vocab_size: int, *, progress: bool = False
               ) -> tuple[dict[tuple[int, int], int], list[bytes]]:
    """The same merges as ``train_naive``, with counts updated only where a merge changes something."""
    from tqdm.auto import tqdm

    chunk_counts = Counter(chunks)
    words = [list(chunk) for chunk in chunk_counts]  # each unique chunk once, as token ids
    weights = list(chunk_counts.values())  # how often each unique chunk occurs
    stats, where = {}, {}  # (int, int) -> count; (int, int) -> set of indices into words
    for i, word in enumerate(words):
        for pair in zip(word, word[1:]):
            stats[pair] = stats.get(pair, 0) + weights[i]
            where.setdefault(pair, set()).add(i)
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


def _valid(text: str) -> str:
    """``text`` with surrogates repaired: pairs joined, lone ones replaced by U+FFFD (as tiktoken does)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


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
    chunks = [chunk.encode("utf-8") for chunk in split(_valid(text), pattern)]
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


@dataclass(frozen=True)
class Step:
    pair: tuple[bytes, bytes] | None  # the two tokens joined at this step (None for the start)
    count: int  # how often that pair occurred
    pieces: list[bytes]  # the whole text as tokens after this step


def train_steps(text: str, num_merges: int, pattern: str = "gpt4") -> list[Step]:
    """Every state of naive training on a small text, from raw bytes to ``num_merges`` merges."""
    chunks = [list(chunk.encode("utf-8")) for chunk in split(_valid(text), pattern)]
    vocab = [bytes([b]) for b in range(256)]
    index = {token: i for i, token in enumerate(vocab)}
    steps = [Step(None, 0, [vocab[i] for chunk in chunks for i in chunk])]
    for _ in range(num_merges):
        stats = {}
        for chunk in chunks:
            get_stats(chunk, stats)
        if not stats:
            break
        pair = best_pair(stats)
        idx = _new_token(vocab, index, pair)
        chunks = [merge(chunk, pair, idx) for chunk in chunks]
        steps.append(Step((vocab[pair[0]], vocab[pair[1]]), stats[pair], [vocab[i] for c in chunks for i in c]))
    return steps


def pad(sequences: list[list[int]], pad_id: int, length: int | None = None
        ) -> tuple[list[list[int]], list[list[int]]]:
    """Right-pad sequences to one length; returns (padded ids, mask with 1 for real tokens, 0 for padding)."""
    length = max((len(s) for s in sequences), default=0) if length is None else length
    too_long = [len(s) for s in sequences if len(s) > length]
    if too_long:
        raise ValueError(f"a sequence has {max(too_long)} tokens, more than length={length}; truncate it first")
    padded = [list(s) + [pad_id] * (length - len(s)) for s in sequences]
    mask = [[1] * len(s) + [0] * (length - len(s)) for s in sequences]
    return padded, mask


class Tokenizer:
    """Ranks (token bytes -> id), a pre-tokenization regex, and special tokens (str -> id)."""

    def __init__(self, ranks: dict[bytes, int], pattern: str = "gpt4", special_tokens: dict[str, int] | None = None):
        special_tokens = dict(special_tokens or {})
        if len(set(ranks.values())) != len(ranks):
            raise ValueError("two tokens share one id: ranks must map distinct bytes to distinct ids")
        missing = [b for b in range(256) if bytes([b]) not in ranks]
        if missing:
            raise ValueError(f"the vocabulary lacks {len(missing)} single bytes (e.g. {bytes(missing[:5])!r}); "
                             "byte-level BPE needs all 256 so that any text can be encoded")
        clash = set(special_tokens.values()) & set(ranks.values())
        if clash or len(set(special_tokens.values())) != len(special_tokens):
            raise ValueError(f"special token ids must be distinct and unused by ordinary ones; clash: {sorted(clash)}")
        self.pattern = resolve_pattern(pattern)
        self.ranks = dict(ranks)  # bytes -> int
        self.vocab = {i: token for token, i in self.ranks.items()}  # int -> bytes
        self.special_tokens = special_tokens  # str -> int
        self.inverse_special = {i: s for s, i in special_tokens.items()}  # int -> str
        self._regex = regex.compile(self.pattern)
        self._cache: dict[str, list[int]] = {}  # chunk -> ids, so repeated words are merged once

    @property
    def vocab_size(self) -> int:
        """One more than the largest id: the size of an embedding table for this tokenizer."""
        return max([*self.vocab, *self.inverse_special]) + 1

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, special_tokens={sorted(self.special_tokens)})"

    def _bpe(self, piece: bytes) -> list[int]:
        """Merge the bytes of one chunk: always join the adjacent pair whose result has the lowest rank."""
        if piece in self.ranks:
            return [self.ranks[piece]]
        parts = [piece[i:i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                rank = self.ranks.get(parts[i] + parts[i + 1])
                if rank is not None and (best is None or rank < best):
                    best, at = rank, i
            if best is None:
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        return [self.ranks[part] for part in parts]

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text``, with special-token strings treated as ordinary text."""
        if not isinstance(text, str):
            raise TypeError(f"encode needs a str, got {type(text).__name__}; for bytes, decode them first")
        ids = []
        for chunk in self._regex.findall(_valid(text)):
            if chunk not in self._cache:
                if len(self._cache) > 100_000:
                    self._cache.clear()
                self._cache[chunk] = self._bpe(chunk.encode("utf-8"))
            ids.extend(self._cache[chunk])
        return ids

    def encode(self, text: str, allowed_special: Iterable[str] | str = (),
               disallowed_special: Iterable[str] | str = "all") -> list[int]:
        """Token ids of ``text``. Special tokens are recognised only if listed in ``allowed_special``
        (or "all"); any other special token found in the text raises a ValueError, unless it is left out
        of ``disallowed_special`` (default "all": every special token not allowed)."""
        if isinstance(allowed_special, str) and allowed_special != "all":
            allowed_special = {allowed_special}  # one token named on its own, not a set of its characters
        if isinstance(disallowed_special, str) and disallowed_special != "all":
            disallowed_special = {disallowed_special}
        allowed = set(self.special_tokens) if allowed_special == "all" else set(allowed_special)
        unknown = allowed - self.special_tokens.keys()
        if unknown:
            raise ValueError(f"allowed_special names tokens this tokenizer does not have: {sorted(unknown)}")
        disallowed = set(self.special_tokens) - allowed if disallowed_special == "all" else set(disallowed_special)
        if disallowed and isinstance(text, str):
            found = regex.search("|".join(map(regex.escape, disallowed)), text)
            if found:
                raise ValueError(f"the text contains the special token {found.group()!r} at position {found.start()}"
                                 f". To encode it as the special token, pass allowed_special={{{found.group()!r}}};"
                                 " to encode it as plain text, pass disallowed_special=().")
        if not allowed:
            return self.encode_ordinary(text)
        ids = []
        specials = "|".join(regex.escape(s) for s in sorted(allowed, key=len, reverse=True))
        for i, part in enumerate(regex.split(f"({specials})", text)):
            ids.extend([self.special_tokens[part]] if i % 2 else self.encode_ordinary(part))
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The exact bytes behind ``ids`` (may be invalid UTF-8 when a character is cut between tokens)."""
        out = []
        for i in ids:
            if i in self.vocab:
                out.append(self.vocab[i])
            elif i in self.inverse_special:
                out.append(self.inverse_special[i].encode("utf-8"))
            else:
                raise ValueError(f"token id {i!r} is not in this tokenizer's vocabulary (size {self.vocab_size})")
        return b"".join(out)

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Text from ids; bytes that are not valid UTF-8 become U+FFFD (``errors="replace"``), as in tiktoken."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def save(self, path: str | Path) -> Path:
        """Write the tokenizer as JSON: pattern, special tokens, and each token's bytes in base64 by id."""
        path = Path(path)
        state = {"format": FILE_FORMAT, "pattern": self.pattern, "special_tokens": self.special_tokens,
                 "tokens": {str(i): base64.b64encode(token).decode("ascii") for i, token in sorted(self.vocab.items())}}
        path.write_text(json.dumps(state, indent=1, ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read a file written by ``save``; a damaged or foreign file raises a ValueError that says why."""
        path = Path(path)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(state, dict) or state.get("format") != FILE_FORMAT:
                raise ValueError(f"it is not a {FILE_FORMAT} tokenizer file (no matching 'format' field)")
            ranks = {base64.b64decode(token, validate=True): int(i) for i, token in state["tokens"].items()}
            if len(ranks) != len(state["tokens"]):
                raise ValueError("two ids have the same token bytes")
            specials = {str(s): int(i) for s, i in state["special_tokens"].items()}
            return cls(ranks, state["pattern"], specials)
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not a valid tokenizer file: {err!s} ({type(err).__name__})") from err

    def to_tiktoken(self, name: str = "course_bpe"):
        """The same tokenizer as a ``tiktoken.Encoding``: identical ids, tiktoken's speed."""
        import tiktoken

        return tiktoken.Encoding(name=name, pat_str=self.pattern, mergeable_ranks=self.ranks,
                                 special_tokens=self.special_tokens)

    @classmethod
    def from_tiktoken_file(cls, path: str | Path, pattern: str = "gpt2",
                           special_tokens: dict[str, int] | None = None) -> Tokenizer:
        """Read ranks in tiktoken's format (one ``base64-token rank`` per line), e.g. GPT-2's r50k_base."""
        return cls(load_tiktoken_ranks(path), pattern, special_tokens)


def load_tiktoken_ranks(path: str | Path) -> dict[bytes, int]:
    """Ranks from a tiktoken file; a malformed line raises a ValueError naming the file and the line."""
    ranks = {}
    for number, line in enumerate(Path(path).read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError as err:
            raise ValueError(f"{path}, line {number}: expected '<base64 token> <rank>', got {line[:60]!r}") from err
    return ranks
