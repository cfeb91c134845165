"""A byte-level BPE tokenizer: text -> token ids -> text, with the same ids as OpenAI's ``tiktoken``.

A tokenizer is its ranks (token bytes -> id), a pre-tokenization regex and its special tokens; how the
ranks are learned is ``helpers.bpe``. To encode, the regex cuts the text into chunks (words, numbers,
punctuation, spaces; GPT-2, Radford et al. 2019, and GPT-4 patterns below), and inside each chunk, starting
from single bytes, the adjacent pair of parts whose concatenation has the lowest rank is joined, again and
again, until no joined pair is a token (ties: the leftmost pair). This is tiktoken's rule, so ids agree.

- ``encode_chunk_naive``: that rule as written: rescan every pair after each join, O(n^2) for n bytes.
  ``encode_chunk``: the same ids in O(n log n): a heap of (rank, position) over adjacent pairs and a doubly
  linked list of parts; heap entries that a join made stale are skipped when popped.
- ``Tokenizer``: ``encode`` / ``decode``, special tokens with an allow-list, ``save`` / ``load`` (JSON),
  ``to_tiktoken`` and ``from_tiktoken_file`` (tiktoken's ``base64 rank`` text format). ``pad`` a batch.

Simplified: pure Python (tiktoken's Rust encodes several times faster), with a cache of chunks it has
already encoded; no streaming or batch encoding.
"""

from __future__ import annotations

import base64
import heapq
import json
import operator
from collections.abc import Iterable
from pathlib import Path

import regex

# GPT-2's pattern (tiktoken's r50k_base): contractions, letters, numbers, other symbols, spaces.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
# GPT-4's pattern (cl100k_base): case-insensitive contractions, numbers of at most 3 digits, newlines apart.
GPT4_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
# GPT-4's pattern with every digit its own chunk (as LLaMA 1-2's tokenizer does): 12345 -> 1 2 3 4 5.
GPT4_DIGITS_PATTERN = GPT4_PATTERN.replace(r"\p{N}{1,3}+", r"\p{N}")
PATTERNS = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN, "gpt4-digits": GPT4_DIGITS_PATTERN}

ENDOFTEXT, BOS, EOS, PAD = "<|endoftext|>", "<|bos|>", "<|eos|>", "<|pad|>"
FILE_FORMAT = "helpers.bpe/1"


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


def valid_text(text: str) -> str:
    """``text`` with surrogates repaired: pairs joined, lone ones replaced by U+FFFD (as tiktoken does)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def split(text: str, pattern: str = "gpt4") -> list[str]:
    """Pre-tokenize: the chunks of ``text`` that ``pattern`` finds (together they are the whole text)."""
    return regex.findall(resolve_pattern(pattern), text)


def encode_chunk_naive(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """Ids of one chunk: join the adjacent pair with the lowest-ranked concatenation (leftmost on ties), again
    and again. Every join rescans all pairs: O(n^2) for n bytes. The reference ``encode_chunk`` is tested on."""
    if piece in ranks:
        return [ranks[piece]]
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best, at = None, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best is None or rank < best):
                best, at = rank, i
        if best is None:
            break
        parts[at:at + 2] = [parts[at] + parts[at + 1]]
    return [ranks[part] for part in parts]


def encode_chunk(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """The ids of ``encode_chunk_naive`` in O(n log n): a part is named by the offset where it starts, a
    linked list (``next_start``, ``prev_start``) joins the parts, and a heap holds (rank, start) for pairs."""
    if piece in ranks:
        return [ranks[piece]]
    n = len(piece)
    next_start = list(range(1, n + 1))  # offset where the next part starts (n: none)
    prev_start = list(range(-1, n - 1))  # offset where the previous part starts (-1: none)
    alive = [True] * n  # False once the part starting here was joined to its left neighbour

    def pair_rank(start: int) -> int | None:
        middle = next_start[start]
        return None if middle >= n else ranks.get(piece[start:next_start[middle]])

    heap = [(rank, i) for i in range(n - 1) if (rank := ranks.get(piece[i:i + 2])) is not None]
    heapq.heapify(heap)  # lowest rank first; on equal ranks the smallest offset, i.e. the leftmost pair
    while heap:
        rank, start = heapq.heappop(heap)
        if not alive[start] or pair_rank(start) != rank:
            continue  # stale: a join since then changed this part or its right neighbour
        right = next_start[start]
        alive[right] = False
        next_start[start] = next_start[right]
        if next_start[start] < n:
            prev_start[next_start[start]] = start
        for left in (prev_start[start], start):  # the two pairs that now contain the joined part
            if left >= 0 and (new_rank := pair_rank(left)) is not None:
                heapq.heappush(heap, (new_rank, left))
    ids, start = [], 0
    while start < n:
        ids.append(ranks[piece[start:next_start[start]]])
        start = next_start[start]
    return ids


def as_ids(ids, name: str = "ids") -> list[int]:
    """``ids`` as a list of ints: a list, tuple or other iterable of ints, or a 1-D torch tensor / numpy array."""
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of integer token ids, got {type(ids).__name__}; "
                        "to turn text into ids, use encode")
    ndim = getattr(ids, "ndim", None)
    if ndim is not None and hasattr(ids, "tolist"):  # a torch tensor or a numpy array
        if ndim != 1:
            hint = (f"; for one id, pass [{name}.item()]" if ndim == 0
                    else " (decode one sequence at a time, e.g. ids[0])")
            raise ValueError(f"{name} must be 1-D, one sequence of token ids, got shape {tuple(ids.shape)}{hint}")
        ids = ids.tolist()
    elif not isinstance(ids, Iterable):
        raise TypeError(f"{name} must be a sequence of integer token ids, got {type(ids).__name__}; for one id "
                        f"{ids!r}, pass [{ids!r}]")
    out = []
    for position, i in enumerate(ids):
        try:
            if isinstance(i, bool):
                raise TypeError
            out.append(operator.index(i))
        except TypeError:
            raise TypeError(f"{name} must hold integer token ids, got {i!r} ({type(i).__name__}) at position "
                            f"{position}") from None
    return out


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


def _special_set(value, name: str, known: Iterable[str]) -> set[str]:
    """``allowed_special`` / ``disallowed_special`` as a set of names: "all", one name, or a collection."""
    if value == "all":
        return set(known)
    if isinstance(value, str):
        return {value}  # one token named on its own, not a set of its characters
    if not isinstance(value, Iterable) or not all(isinstance(s, str) for s in value):
        raise TypeError(f"{name} must be 'all', a special token's string, or a collection of them, got {value!r}")
    return set(value)


def _check_text(text) -> None:
    if not isinstance(text, str):
        hint = ("decode the bytes first" if isinstance(text, (bytes, bytearray))
                else "encode each text on its own" if isinstance(text, (list, tuple)) else "pass a str")
        raise TypeError(f"text must be a str, got {type(text).__name__}; {hint}")


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

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text``, with special-token strings treated as ordinary text."""
        _check_text(text)
        ids = []
        for chunk in self._regex.findall(valid_text(text)):
            if chunk not in self._cache:
                if len(self._cache) > 100_000:
                    self._cache.clear()
                self._cache[chunk] = encode_chunk(chunk.encode("utf-8"), self.ranks)
            ids.extend(self._cache[chunk])
        return ids

    def encode(self, text: str, allowed_special: Iterable[str] | str = (),
               disallowed_special: Iterable[str] | str = "all") -> list[int]:
        """Token ids of ``text``. Special tokens are recognised only if listed in ``allowed_special``
        (or "all"); any other special token found in the text raises a ValueError, unless it is left out
        of ``disallowed_special`` (default "all": every special token not allowed)."""
        _check_text(text)
        allowed = _special_set(allowed_special, "allowed_special", self.special_tokens)
        unknown = allowed - self.special_tokens.keys()
        if unknown:
            raise ValueError(f"allowed_special names tokens this tokenizer does not have: {sorted(unknown)}")
        disallowed = _special_set(disallowed_special, "disallowed_special", self.special_tokens)
        if disallowed_special == "all":
            disallowed -= allowed
        if disallowed:
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
        """The exact bytes behind ``ids`` (may be invalid UTF-8 when a character is cut between tokens).
        ``ids``: a list of ints, or a 1-D tensor or numpy array of them."""
        out = []
        for i in as_ids(ids):
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
