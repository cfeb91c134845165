import math
import random
from collections import Counter

import numpy as np
import pytest
import torch

from helpers import checks, ngram

SMOOTHED = ["add-k", "interpolation", "kneser-ney"]


def random_text(length=400, alphabet="abcde ", seed=0):
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


# Counting, worked by hand

def test_ngram_counts_by_hand():
    assert ngram.ngram_counts("abcab", 1) == Counter({("a",): 2, ("b",): 2, ("c",): 1})
    assert ngram.ngram_counts("abcab", 2) == Counter({("a", "b"): 2, ("b", "c"): 1, ("c", "a"): 1})
    assert ngram.ngram_counts(["to", "be", "or", "not", "to", "be"], 3)[("to", "be", "or")] == 1
    assert ngram.ngram_counts("ab", 3) == Counter()  # shorter than n: no n-grams at all


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_ngram_counts_rejects_bad_orders(n):
    with pytest.raises(ValueError, match="positive integer"):
        ngram.ngram_counts("abc", n)


def test_bigram_counts_match_a_loop():
    ids = [random.Random(1).randrange(7) for _ in range(300)]
    table = ngram.bigram_counts(ids, 7)
    loop = torch.zeros(7, 7, dtype=torch.long)
    for a, b in zip(ids, ids[1:]):
        loop[a, b] += 1
    assert torch.equal(table, loop) and table.sum() == len(ids) - 1
    with pytest.raises(ValueError, match="0..6"):
        ngram.bigram_counts([0, 7], 7)


def test_count_tables_by_hand():
    counts = ngram.count("abcab", 2)
    assert counts.vocab == ("a", "b", "c")
    assert counts.raw[0][()] == ({"a": 2, "b": 2, "c": 1}, 5)
    assert counts.raw[1][("a",)] == ({"b": 2}, 2)
    # continuation counts: b follows only a, c only b, a only c -> each has one distinct left neighbour
    assert counts.cont[0][()] == ({"b": 1, "c": 1, "a": 1}, 3)


def test_kneser_ney_by_hand():
    # text a b a c, V = 3, D = 0.5. Continuation unigrams: a, b, c each once (total 3, 3 distinct), so
    # p_cont(w) = 0.5/3 + 0.5 * 3/3 * 1/3 = 1/3. After "a": b once, c once (total 2, 2 distinct):
    # p(b|a) = 0.5/2 + 0.5 * 2/2 * 1/3 = 5/12, p(a|a) = 1/6, p(c|a) = 5/12.
    model = ngram.CountLM(ngram.count("abac", 2), 2, "kneser-ney", discount=0.5)
    assert model.prob("a", "b") == pytest.approx(5 / 12)
    assert model.prob("a", "a") == pytest.approx(1 / 6)
    assert model.distribution("a") == pytest.approx([1 / 6, 5 / 12, 5 / 12])
    assert model.distribution("c") == pytest.approx([1 / 3] * 3)  # "c" never had a follower: back off


def test_add_k_and_interpolation_by_hand():
    counts = ngram.count("abac", 2)  # after "a": b once, c once; unigrams a 2, b 1, c 1
    assert ngram.CountLM(counts, 2, "add-k", k=1).prob("a", "b") == pytest.approx((1 + 1) / (2 + 3))
    assert ngram.CountLM(counts, 2, "mle").prob("a", "b") == pytest.approx(0.5)
    inter = ngram.CountLM(counts, 2, "interpolation", lam=0.5)
    p_unigram = 0.5 * 1 / 4 + 0.5 * 1 / 3
    assert inter.prob("a", "b") == pytest.approx(0.5 * 0.5 + 0.5 * p_unigram)


# Normalization: every smoothed distribution sums to 1 and agrees with prob()

@pytest.mark.parametrize("smoothing", SMOOTHED + ["mle"])
@pytest.mark.parametrize("n", [1, 2, 4])
def test_distributions_sum_to_one_and_match_prob(smoothing, n):
    text = random_text()
    model = ngram.CountLM(ngram.count(text, 4), n, smoothing, k=0.5)
    contexts = ["", "a", "ab", "eee", "b cd", "xyzw", text[-3:]]
    if smoothing == "mle":
        contexts = [text[-n + 1:] if n > 1 else ""]  # mle is only a distribution for seen contexts
    for context in contexts:
        p = model.distribution(context)
        assert p.sum() == pytest.approx(1.0) and (smoothing == "mle" or (p > 0).all())
        assert p == pytest.approx([model.prob(context, t) for t in model.counts.vocab])


def test_word_model_sums_to_one_over_a_large_vocabulary():
    tokens = ngram.words("the cat sat on the mat . the dog sat on the log . a cat ran .")
    model = ngram.CountLM(ngram.count(tokens, 3), 3)
    for context in [[], ["the"], ["sat", "on"], ["on", "zebra"]]:
        assert model.distribution(context).sum() == pytest.approx(1.0)


# Bad input: clear errors, never NaN

def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match="empty"):
        ngram.count("", 2)
    with pytest.raises(ValueError, match="text length 3"):
        ngram.count("abc", 4)  # n larger than the text
    counts = ngram.count("abcab", 2)
    with pytest.raises(ValueError, match="counted order 2"):
        ngram.CountLM(counts, 3)
    with pytest.raises(ValueError, match="smoothing must be one of"):
        ngram.CountLM(counts, 2, "laplace")
    with pytest.raises(ValueError, match="k > 0"):
        ngram.CountLM(counts, 2, "add-k", k=0)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        ngram.CountLM(counts, 2).prob("a", "z")  # an unknown token
    with pytest.raises(ValueError, match="empty text"):
        ngram.cross_entropy(ngram.CountLM(counts, 2), "")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        ngram.count("abz", 2, vocab="ab")


def test_zero_counts_give_infinity_not_nan():
    counts = ngram.count("abab", 2)
    mle = ngram.CountLM(counts, 2, "mle")
    assert mle.prob("a", "a") == 0.0 and mle.prob("zz", "a") == 0.0  # unseen pair, unseen context
    assert ngram.cross_entropy(mle, "aab") == math.inf
    assert ngram.perplexity(math.inf) == math.inf
    assert math.isfinite(ngram.cross_entropy(ngram.CountLM(counts, 2, "add-k"), "aab"))
    with pytest.raises(ValueError, match="never seen"):
        ngram.sample(ngram.CountLM(ngram.count("abc", 2), 2, "mle"), "c", 3)


def test_add_k_table_edge_cases():
    counts = torch.tensor([[2, 0, 0], [0, 0, 0]])
    probs = ngram.add_k(counts, 1.0)
    assert torch.allclose(probs, torch.tensor([[0.6, 0.2, 0.2], [1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64))
    with pytest.raises(ValueError, match="no counts"):
        ngram.add_k(counts, 0.0)  # the empty row has no distribution without smoothing
    with pytest.raises(ValueError, match="k must be"):
        ngram.add_k(counts, -1.0)


def test_perplexity_from_probs():
    assert ngram.perplexity_from_probs([0.25, 0.25]) == pytest.approx(4.0)
    assert ngram.perplexity_from_probs([0.5, 0.0]) == math.inf
    with pytest.raises(ValueError):
        ngram.perplexity_from_probs([])


# Evaluation and learning

def test_smoothing_beats_mle_on_held_out_text():
    text = random_text(3000, "aab cd")
    train_text, heldout = text[:2700], text[2700:]
    counts = ngram.count(train_text, 4)
    mle = ngram.cross_entropy(ngram.CountLM(counts, 4, "mle"), heldout)
    kn = ngram.cross_entropy(ngram.CountLM(counts, 4, "kneser-ney"), heldout)
    assert math.isfinite(kn) and kn < mle


def test_bigram_learns_a_markov_chain():
    rng = np.random.default_rng(0)
    true = np.array([[0.1, 0.9], [0.6, 0.4]])  # p(next | current) over tokens 0, 1
    ids = [0]
    for _ in range(20_000):
        ids.append(int(rng.choice(2, p=true[ids[-1]])))
    model = ngram.CountLM(ngram.count(ids, 2), 2, "add-k", k=1)
    assert np.allclose([model.distribution([0]), model.distribution([1])], true, atol=0.02)


def test_unseen_share_by_hand():
    assert ngram.unseen_share("abab", "abba", 2) == pytest.approx(1 / 3)  # of ab, bb, ba only bb is new
    assert ngram.unseen_share("abab", "abab", 3) == 0.0
    with pytest.raises(ValueError, match="no 3-grams"):
        ngram.unseen_share("abab", "ab", 3)


def test_seen_contexts_by_hand():
    counts = ngram.count("abcab", 3)  # contexts followed by something: "a", "b", "c", "ab", "bc", "ca"
    assert ngram.seen_contexts(counts, "abba", 3) == [True, True, True, False]  # "", "a", "ab", "bb"
    assert ngram.seen_contexts(counts, "cbb", 3) == [True, True, False]  # "cb" never occurred
    assert ngram.seen_contexts(ngram.count("abcd", 2), "dd", 2) == [True, False]  # "d" only ends the text
    with pytest.raises(ValueError, match="counted order 3"):
        ngram.seen_contexts(counts, "ab", 4)


def test_unseen_contexts_are_where_a_model_falls_back():
    counts = ngram.count(random_text(300, "abcd"), 4)
    heldout = random_text(200, "abcd", seed=1)
    top, shorter = (ngram.CountLM(counts, n, "interpolation").log_probs(heldout) for n in (4, 3))
    seen = ngram.seen_contexts(counts, heldout, 4)
    assert 0 < seen.count(False) < len(seen)
    assert all(a == pytest.approx(b) for a, b, s in zip(top, shorter, seen) if not s)
    full = [t >= 3 and s for t, s in enumerate(seen)]  # a seen context of all n - 1 = 3 tokens
    assert all(a != pytest.approx(b) for a, b, f in zip(top, shorter, full) if f) and any(full)


# Words, sampling, suggestions

def test_words_and_vocabulary():
    assert ngram.words("Don't stop, ROMEO!") == ["don't", "stop", ",", "romeo", "!"]
    vocab = ngram.build_vocab(["a", "b", "a", "c", "a", "b"], min_count=2)
    assert vocab == ["a", "b", ngram.UNK]
    assert ngram.map_unknown(["a", "z"], vocab) == ["a", ngram.UNK]
    with pytest.raises(ValueError, match="unknown-token"):
        ngram.map_unknown(["a"], ["a", "b"])


def test_sample_is_seeded_and_stays_in_the_vocabulary():
    model = ngram.CountLM(ngram.count(random_text(), 3), 3)
    first = ngram.sample(model, "ab", 50, seed=3)
    assert first == ngram.sample(model, "ab", 50, seed=3) and len(first) == 50
    assert set(first) <= set(model.counts.vocab)


def test_suggest_completes_the_last_word():
    tokens = ngram.words("to be or not to be . to go . to be or to bed .")
    model = ngram.CountLM(ngram.count(tokens, 2), 2, "kneser-ney")
    after_to = ngram.suggest(model, "we want to ", k=3)
    assert after_to[0][0] == "be" and [p for _, p in after_to] == sorted([p for _, p in after_to], reverse=True)
    assert {w for w, _ in ngram.suggest(model, "we want to b", k=5)} == {"be", "bed"}
    assert ngram.suggest(model, "to zq", k=5) == []


# The notebook's exercises: a learner's plain solution passes the check, a typical mistake does not

def loop_bigram_counts(ids, vocab_size):
    table = torch.zeros(vocab_size, vocab_size, dtype=torch.long)
    for a, b in zip(ids, ids[1:]):
        table[a, b] += 1
    return table


def loop_add_k(counts, k):
    counts = counts.double() + k
    return counts / counts.sum(-1, keepdim=True)


def loop_perplexity(probs):
    return math.inf if min(probs) == 0 else math.exp(-sum(math.log(p) for p in probs) / len(probs))


@pytest.mark.parametrize("name, right, wrong, reference, cases", [
    ("bigram counts", loop_bigram_counts, lambda ids, v: loop_bigram_counts(ids, v).T, ngram.bigram_counts,
     [([0, 1, 0, 1, 1], 2), ([2, 0, 2, 2, 1, 0], 3)]),
    ("add-k", loop_add_k, lambda c, k: (c + k) / (c.sum(-1, keepdim=True) + k), ngram.add_k,
     [(torch.tensor([[2, 0, 1], [0, 0, 0]]), 1.0), (torch.tensor([[3, 1]]), 0.5)]),
    ("perplexity", loop_perplexity, lambda probs: -sum(map(math.log, probs)) / len(probs),
     ngram.perplexity_from_probs, [[0.5, 0.25], [0.1] * 10, [1.0]]),
])
def test_exercise_checks(name, right, wrong, reference, cases):
    assert checks.exercise(name, right, reference, cases).passed
    assert checks.exercise(name, wrong, reference, cases).status in (checks.WRONG, checks.ERROR)


@pytest.mark.parametrize("smoothing, expected", [("mle", 7), ("add-k", 7), ("interpolation", 5 + 7 + 7),
                                                 ("kneser-ney", None)])
def test_num_entries_counts_the_tables_a_model_reads(smoothing, expected):
    tokens = list("abracadabra")  # 5 distinct unigrams, 7 distinct bigrams, 7 distinct trigrams
    counts = ngram.count(tokens, 3)
    model = ngram.CountLM(counts, 3, smoothing)
    if expected is None:  # Kneser-Ney reads continuation counts below the top order
        expected = sum(len(f) for table in counts.cont[:2] for f, _ in table.values()) + 7
    assert model.num_entries() == expected
    assert ngram.CountLM(counts, 1, smoothing).num_entries() == 5
