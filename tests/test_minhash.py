"""Tests for helpers/minhash.py: shingles and Jaccard by hand, exact modular arithmetic, MinHash against exact
Jaccard and against datasketch, the LSH S-curve and its candidates."""

import hashlib
import math
import random

import numpy as np
import pytest
from test_cleaning import PROSE, change_words

from helpers import minhash


def test_shingles_and_jaccard_by_hand():
    assert minhash.shingles("The cat sat on the mat.", k=3) == {"the cat sat", "cat sat on", "sat on the",
                                                                 "on the mat"}
    assert minhash.shingles("Two words", k=5) == {"two words"} and minhash.shingles("?!", k=5) == set()
    assert minhash.jaccard({1, 2, 3}, {2, 3, 4}) == 0.5
    assert minhash.jaccard({"a"}, {"b"}) == 0.0 and minhash.jaccard(set(), set()) == 1.0


def test_mulmod_matches_python_integers():
    p, rng = minhash.MERSENNE, random.Random(0)
    a = [rng.randrange(p) for _ in range(3000)] + [p - 1, p - 1, 0, 1, 1 << 60]
    x = [rng.randrange(p) for _ in range(3000)] + [p - 1, 1, p - 1, p - 1, 1 << 60]
    got = minhash.mulmod(np.array(a, dtype=np.uint64), np.array(x, dtype=np.uint64))
    assert [int(g) for g in got] == [ai * xi % p for ai, xi in zip(a, x)]


def test_minhash_signature_is_deterministic_and_agrees_with_the_batched_version():
    sets = [minhash.shingles(text) for text in PROSE] + [set()]
    one = minhash.minhash_signature(sets[0], num_perm=64, seed=3)
    assert one.shape == (64,) and one.dtype == np.uint64 and (one < minhash.MERSENNE).all()
    assert np.array_equal(one, minhash.minhash_signature(set(sorted(sets[0], reverse=True)), 64, 3))
    assert not np.array_equal(one, minhash.minhash_signature(sets[0], 64, 4))
    batched = minhash.minhash_signatures(sets, num_perm=64, seed=3, batch=2)
    assert np.array_equal(batched, np.stack([minhash.minhash_signature(s, 64, 3) for s in sets]))
    assert (batched[-1] == minhash.MERSENNE).all()  # the empty set


def test_minhash_of_one_shingle_is_the_universal_hash_by_hand():
    p = minhash.MERSENNE
    h = int.from_bytes(hashlib.sha1(b"the cat sat").digest()[:8], "little") % p
    assert minhash.stable_hash("the cat sat") == h
    rng = np.random.default_rng(5)  # the draws minhash_signatures makes for seed 5
    a, b = rng.integers(1, p, 16, dtype=np.uint64), rng.integers(0, p, 16, dtype=np.uint64)
    expected = [(int(ai) * h + int(bi)) % p for ai, bi in zip(a, b)]
    assert [int(v) for v in minhash.minhash_signature({"the cat sat"}, num_perm=16, seed=5)] == expected


@pytest.mark.parametrize("overlap", [0, 20, 50, 80, 100])
def test_minhash_estimates_exact_jaccard(overlap):
    a = {f"shared {i}" for i in range(overlap)} | {f"left {i}" for i in range(100 - overlap)}
    b = {f"shared {i}" for i in range(overlap)} | {f"right {i}" for i in range(100 - overlap)}
    exact = minhash.jaccard(a, b)
    estimate = minhash.estimate_jaccard(minhash.minhash_signature(a, 256), minhash.minhash_signature(b, 256))
    assert abs(estimate - exact) <= 4 * math.sqrt(max(exact * (1 - exact), 0.01) / 256)


def test_minhash_agrees_with_datasketch():
    datasketch = pytest.importorskip("datasketch")
    texts = PROSE + [change_words(PROSE[0], n, seed=n) for n in (2, 6, 12)] + [PROSE[1] + " " + PROSE[2]]
    sets = [minhash.shingles(text, k=3) for text in texts]
    ours = minhash.minhash_signatures(sets, num_perm=256)
    theirs = []
    for shingle_set in sets:
        sketch = datasketch.MinHash(num_perm=256, seed=1)
        sketch.update_batch([s.encode() for s in shingle_set])
        theirs.append(sketch)
    gaps = []
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            exact = minhash.jaccard(sets[i], sets[j])
            mine, reference = minhash.estimate_jaccard(ours[i], ours[j]), theirs[i].jaccard(theirs[j])
            assert abs(mine - exact) < 0.12 and abs(reference - exact) < 0.12
            gaps.append(abs(mine - reference))
    assert max(gaps) < 0.15 and np.mean(gaps) < 0.04


def test_lsh_probability_and_band_choice():
    assert minhash.lsh_probability(0.5, bands=2, rows=2) == pytest.approx(1 - 0.75 ** 2)
    assert minhash.lsh_probability(1.0, 8, 4) == 1.0 and minhash.lsh_probability(0.0, 8, 4) == 0.0
    for threshold in (0.5, 0.7, 0.9):
        bands, rows = minhash.lsh_bands(threshold, 128)
        assert bands * rows <= 128 and minhash.lsh_probability(threshold, bands, rows) >= 0.99
        assert minhash.lsh_probability(threshold, 128 // (rows + 1), rows + 1) < 0.99  # rows is the most
    assert minhash.lsh_bands(0.5, 128) == (42, 3)


def test_lsh_candidates_by_hand():
    signatures = np.array([[1, 2, 3, 4], [1, 2, 9, 9], [7, 7, 3, 4], [5, 6, 7, 8]], dtype=np.uint64)
    assert minhash.lsh_candidates(signatures, bands=2, rows=2) == {(0, 1), (0, 2)}
    assert minhash.lsh_candidates(signatures, bands=1, rows=4) == set()
    with pytest.raises(ValueError, match="bands"):
        minhash.lsh_candidates(signatures, bands=3, rows=2)
