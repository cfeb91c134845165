"""Near duplicates by MinHash and locality-sensitive hashing (Broder, 1997; Indyk & Motwani, 1998).

A page becomes a set of shingles (its word k-grams). Two sets are compared by their Jaccard similarity
J(A, B) = |A n B| / |A u B|. For a random hash function h, P[min h(A) = min h(B)] = J(A, B), so the share of
equal entries of two signatures of ``num_perm`` minima estimates J without comparing the sets. LSH cuts each
signature into ``bands`` bands of ``rows`` rows; two pages become candidates when some band is equal, which
happens with probability 1 - (1 - J^rows)^bands: an S-curve that rises steeply around (1 / bands)^(1 / rows).
Only candidates are compared, so a crawl of n pages costs far less than n^2 / 2 comparisons.

Simplified: the MinHash "permutations" are universal hashes (a h + b) mod (2^61 - 1) of the first 8 bytes of a
sha1 of each shingle (numpy, uint64, exact); one pass in memory (no sharding). ``helpers.cleaning.near_dedup``
uses these to remove near duplicates from a crawl.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

MERSENNE = (1 << 61) - 1  # the prime p of the universal hashes (a * h + b) mod p


def normalise(text: str) -> str:
    """Lower case, punctuation turned into spaces, whitespace collapsed: 'Hi,  there!' -> 'hi there'."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def shingles(text: str, k: int = 5) -> set[str]:
    """The set of word k-grams of the normalised text (a text shorter than k words is one shingle)."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    words = normalise(text).split()
    if len(words) < k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: set, b: set) -> float:
    """|A n B| / |A u B| (1.0 for two empty sets)."""
    return len(a & b) / len(a | b) if a or b else 1.0


def stable_hash(shingle: str) -> int:
    """The first 8 bytes of sha1, reduced mod p: the same in every process (Python's hash() is salted)."""
    return int.from_bytes(hashlib.sha1(shingle.encode()).digest()[:8], "little") % MERSENNE


def mulmod(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(a * x) mod p exactly in uint64, for a, x < p = 2^61 - 1 (the product itself needs 122 bits).

    Split a = a1 2^32 + a0 and x = x1 2^32 + x0 (a1, x1 < 2^29), then use 2^61 = 1 (mod p):
    a x = a1 x1 2^64 + (a1 x0 + a0 x1) 2^32 + a0 x0, with 2^64 = 8 and m 2^32 = (m >> 29) + (m mod 2^29) 2^32.
    Each term stays below 2^62, so their sum fits in 64 bits before the last reduction."""
    low = np.uint64(0xFFFFFFFF)
    a1, a0, x1, x0 = a >> np.uint64(32), a & low, x >> np.uint64(32), x & low
    middle = _fold(a1 * x0 + a0 * x1)  # < 2^61 + 2
    middle = (middle >> np.uint64(29)) + ((middle & np.uint64((1 << 29) - 1)) << np.uint64(32))
    return _mod(_fold(a0 * x0) + middle + (a1 * np.uint64(8)) * x1)


def _fold(v: np.ndarray) -> np.ndarray:
    """A number below 2^61 + 8 that is v mod p, for any v < 2^64 (2^61 = 1 mod p)."""
    return (v & np.uint64(MERSENNE)) + (v >> np.uint64(61))


def _mod(v: np.ndarray) -> np.ndarray:
    """v mod p for v < 2^64."""
    v = _fold(v)
    return np.where(v >= np.uint64(MERSENNE), v - np.uint64(MERSENNE), v)


def minhash_signatures(shingle_sets: Sequence[set[str]], num_perm: int = 128, seed: int = 0,
                       batch: int = 128) -> np.ndarray:
    """(N, num_perm) uint64: entry [d, i] is min over the shingles s of set d of (a_i h(s) + b_i) mod p, the
    (a_i, b_i) drawn from ``seed``. An empty set gets p everywhere (two empty pages look identical).

    ``batch`` sets at a time: one (num_perm, their shingles) array, then a minimum over each set's columns."""
    if not isinstance(num_perm, int) or num_perm < 1:
        raise ValueError(f"num_perm must be a positive integer, got {num_perm!r}")
    rng = np.random.default_rng(seed)
    a = rng.integers(1, MERSENNE, num_perm, dtype=np.uint64)[:, None]  # (num_perm, 1)
    b = rng.integers(0, MERSENNE, num_perm, dtype=np.uint64)[:, None]
    signatures = np.full((len(shingle_sets), num_perm), MERSENNE, dtype=np.uint64)  # (N, num_perm)
    full = [d for d, s in enumerate(shingle_sets) if s]  # np.minimum.reduceat needs non-empty segments
    for start in range(0, len(full), batch):
        rows = full[start:start + batch]
        h = np.array([stable_hash(s) for d in rows for s in shingle_sets[d]], dtype=np.uint64)  # (S,)
        values = _mod(mulmod(a, h[None, :]) + b)  # (num_perm, S)
        offsets = np.cumsum([0] + [len(shingle_sets[d]) for d in rows[:-1]])  # where each set starts
        signatures[rows] = np.minimum.reduceat(values, offsets, axis=1).T  # (len(rows), num_perm)
    return signatures


def minhash_signature(shingle_set: set[str], num_perm: int = 128, seed: int = 0) -> np.ndarray:
    """(num_perm,) uint64: the MinHash signature of one set (see ``minhash_signatures``)."""
    return minhash_signatures([shingle_set], num_perm, seed)[0]


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The share of positions where two MinHash signatures agree."""
    if sig_a.shape != sig_b.shape:
        raise ValueError(f"signatures must have the same shape, got {sig_a.shape} and {sig_b.shape}")
    return float(np.mean(sig_a == sig_b))


def lsh_probability(similarity: float, bands: int, rows: int) -> float:
    """P[two pages of Jaccard similarity s become candidates] = 1 - (1 - s^rows)^bands: the S-curve."""
    return 1.0 - (1.0 - similarity ** rows) ** bands


def lsh_candidates(signatures: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    """Pairs (i, j), i < j, of rows of ``signatures`` (N, num_perm) that agree on all ``rows`` of some band."""
    signatures = np.asarray(signatures)
    if signatures.ndim != 2 or bands < 1 or rows < 1 or bands * rows > signatures.shape[1]:
        raise ValueError(f"need signatures of shape (N, num_perm) with bands * rows <= num_perm, got shape "
                         f"{signatures.shape}, bands={bands}, rows={rows}")
    pairs = set()
    for band in range(bands):
        buckets: dict[bytes, list[int]] = {}  # the band's values -> rows that have them
        for i, row in enumerate(signatures[:, band * rows:(band + 1) * rows]):
            buckets.setdefault(row.tobytes(), []).append(i)
        for members in buckets.values():
            pairs.update((i, j) for n, i in enumerate(members) for j in members[n + 1:])
    return pairs


def lsh_bands(threshold: float, num_perm: int = 128, recall: float = 0.99) -> tuple[int, int]:
    """(bands, rows) with the most rows per band (fewest chance candidates) that still makes a pair at the
    ``threshold`` a candidate with probability >= ``recall``; bands = num_perm // rows.

    E.g. 0.5 -> (42, 3): the S-curve's middle (1/42)^(1/3) ~ 0.29 sits below the threshold, so the curve
    has reached 0.996 there; 0.7 -> (32, 4), middle 0.42."""
    if not 0 < threshold <= 1 or not 0 < recall < 1:
        raise ValueError(f"need 0 < threshold <= 1 and 0 < recall < 1, got {threshold!r}, {recall!r}")
    rows = max((r for r in range(1, num_perm + 1) if lsh_probability(threshold, num_perm // r, r) >= recall),
               default=1)
    return num_perm // rows, rows
