import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import has_data
from helpers import bpe, data


@pytest.fixture(scope="module")
def shakespeare():
    if not has_data("tinyshakespeare"):
        pytest.skip("tinyshakespeare.txt is not available offline")
    return data.load_text()


def test_get_stats_and_merge_known_answers():
    assert bpe.get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert bpe.get_stats([5]) == {} and bpe.get_stats([1, 1, 1], {(1, 1): 3}, weight=2) == {(1, 1): 7}
    assert bpe.merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert bpe.merge([7, 7, 7], (7, 7), 9) == [9, 7]  # left to right, no overlaps
    assert bpe.merge([], (1, 2), 3) == []


@pytest.mark.parametrize("trainer", [bpe.train_naive, bpe.train_fast])
def test_wikipedia_example(trainer):
    # "aaabdaaabac": Z=aa, then Y=ab, then X=ZY, which leaves "XdXac" (ties go to the smallest pair).
    merges, vocab = trainer([b"aaabdaaabac"], 259)
    assert merges == {(97, 97): 256, (97, 98): 257, (256, 257): 258}
    assert vocab[256:] == [b"aa", b"ab", b"aaab"]
    tok = bpe.train("aaabdaaabac", 259)
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert bpe.apply_merges(list(b"aaabdaaabac"), merges) == [258, 100, 258, 97, 99]


def test_naive_merges_yields_each_step_until_nothing_is_left():
    steps = list(bpe.naive_merges([b"aaabdaaabac"]))
    assert [(s.pair, s.idx, s.count) for s in steps[:3]] == [((97, 97), 256, 4), ((97, 98), 257, 2),
                                                              ((256, 257), 258, 2)]
    assert steps[2].ids == [[258, 100, 258, 97, 99]]
    assert steps[-1].ids == [[steps[-1].idx]]  # the whole text is one token: no pair left
    assert list(bpe.naive_merges([b"a", b"b"])) == []


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4", "gpt4-digits"])
def test_naive_and_fast_trainers_learn_identical_merges(shakespeare, pattern):
    chunks = [c.encode() for c in bpe.split(shakespeare[:8_000] + " 12345 67 8901", pattern)]
    naive, fast = bpe.train_naive(chunks, 330), bpe.train_fast(chunks, 330)
    assert list(naive[0].items()) == list(fast[0].items()) and naive[1] == fast[1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=30), st.integers(256, 300))
def test_naive_equals_fast_on_random_chunks(chunks, vocab_size):
    chunks = [bytes(b % 4 + 97 for b in c) for c in chunks]  # a small alphabet: many repeats and ties
    naive, fast = bpe.train_naive(chunks, vocab_size), bpe.train_fast(chunks, vocab_size)
    assert list(naive[0].items()) == list(fast[0].items())


def test_training_stops_when_nothing_is_left_to_merge():
    tok = bpe.train("abab", 300)
    assert tok.vocab_size == 258 and tok.encode("abab") == [257]  # "ab", then "abab": no pair left
    assert bpe.train_naive([b"abab"], 256) == ({}, [bytes([b]) for b in range(256)])


def test_train_steps_show_each_merge():
    steps = bpe.train_steps("aaabdaaabac", 3)
    assert [s.pair for s in steps] == [None, (b"a", b"a"), (b"a", b"b"), (b"aa", b"ab")]
    assert [s.count for s in steps] == [0, 4, 2, 2]
    assert b"".join(steps[-1].pieces) == b"aaabdaaabac" and len(steps[-1].pieces) == 5


def test_train_steps_and_train_naive_make_the_same_merges(shakespeare):
    text = shakespeare[:3_000]
    merges, vocab = bpe.train_naive([c.encode() for c in bpe.split(text)], 256 + 40)
    steps = bpe.train_steps(text, 40)
    assert [s.pair for s in steps[1:]] == [(vocab[a], vocab[b]) for a, b in merges]
    assert steps[-1].pieces == [vocab[i] for c in bpe.split(text) for i in bpe.apply_merges(list(c.encode()), merges)]


def test_replaying_merges_equals_lowest_rank_first(shakespeare):
    text = shakespeare[:30_000]
    merges, _ = bpe.train_fast([c.encode() for c in bpe.split(text)], 700)
    tok = bpe.train(text, 700)
    distinct = set(bpe.split(shakespeare[:60_000]))  # also chunks never seen in training
    assert all(bpe.apply_merges(list(c.encode()), merges) == tok.encode(c) for c in distinct)


@pytest.mark.parametrize("call, message", [
    (lambda: bpe.train("abc", 255), "at least 256"),
    (lambda: bpe.train("abc", 257, special_tokens=["<a>", "<b>"]), "258"),
    (lambda: bpe.train(b"abc", 300), "needs a str"),
    (lambda: bpe.train("abc", 300, pattern="(unclosed"), "valid regex"),
    (lambda: bpe.train("abc", 300, pattern=None), "pattern must be a name"),
    (lambda: bpe.train("abc", 300, trainer="magic"), "trainer"),
])
def test_bad_input_gives_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_merges_of_a_longer_run_start_with_those_of_a_shorter_one(shakespeare):
    chunks = [c.encode() for c in bpe.split(shakespeare[:20_000])]
    short, long = bpe.train_fast(chunks, 300)[0], bpe.train_fast(chunks, 500)[0]
    assert list(itertools.islice(long.items(), len(short))) == list(short.items())
