"""Tests for helpers/cleaning.py: each step on known inputs, MinHash against exact Jaccard and datasketch."""

import dataclasses
import math
import random

import pytest

from helpers import cleaning, minhash, miniweb, ngram
from helpers.miniweb import Document

PROSE = [
    "The old mill stood by the river for two hundred years, and the people of the village brought their grain "
    "to it every autumn. When the wheel stopped turning in the dry summer, the miller walked to the hills to "
    "find out where the water had gone, and he came back with a story that nobody in the village believed.",
    "A good loaf needs only flour, water, salt and time. Mix them in the evening, leave the dough covered on "
    "the table through the night, and in the morning fold it gently before it goes into a very hot oven. The "
    "crust should be dark and the crumb should be open.",
    "The committee met on Tuesday to discuss the new library. Most members agreed that the reading room was "
    "too small for the number of students who used it, but they could not agree on where the money for a "
    "larger building would come from, so the decision was left for the next meeting in the spring.",
    "Sailors once found their way across the sea by the stars. On a clear night the pole star showed the "
    "north, and the height of the sun at noon told them how far south they had come. Storms and clouds were "
    "their worst enemies, because a ship with no sky to read could drift for days without knowing it.",
]
ARITHMETIC = ["Worksheet 3\n\nQ: 3+5-2 = ?\nA: 6\n\nQ: 7*2+1 = ?\nA: 15",
              "Q: 3+5-2\nW: 3+5=8, 8-2=6\nA: 6\n\nQ: 4*3-5\nW: 4*3=12, 12-5=7\nA: 7",
              "Q: 9-4+2\nW: <<9-4=5>>, <<5+2=7>>\nA: 7"]
PUZZLES = ["Q: Reverse the word apple.\nA: elppa", "Q: Sort the letters of garden.\nA: adegnr",
           "Q: How many times does the letter k appear in pocket?\nA: 1"]


def docs_of(texts, kind="review"):
    return [Document(i, kind, text, {}) for i, text in enumerate(texts)]


def change_words(text: str, count: int, seed: int) -> str:
    rng, words = random.Random(seed), text.split(" ")
    for i in rng.sample(range(len(words)), count):
        words[i] = rng.choice(["blue", "stone", "quickly", "seven", "garden"])
    return " ".join(words)


# --- HTML ---------------------------------------------------------------------------------------------------

def test_html_to_text_drops_boilerplate_and_keeps_lines():
    page = ("<!DOCTYPE html><html><head><title>Shop</title><style>p {color: red}</style></head><body>"
            "<header>Site name</header><nav><a href='/'>Home</a> <a href='/x'>About</a></nav>"
            "<div class='cookie-banner'>We use cookies. <b>Accept</b></div><main><h1>Fish &amp; Chips</h1>"
            "<p>First   line<br>second line</p><p>Tom said &quot;hi&quot; &lt;3</p>"
            "<script>var x = '<p>no</p>';</script><div id='main-menu'><ul><li>Menu item</li></ul></div></main>"
            "<footer>Copyright 2024 | Privacy</footer></body></html>")
    assert cleaning.html_to_text(page) == 'Fish & Chips\n\nFirst line\nsecond line\n\nTom said "hi" <3'


def test_html_round_trip_of_the_miniweb_skeleton():
    text = "Review of Lamp (product)\nThe lid was very <flimsy> & cheap.\n\n\nRating: 2 stars\n\nThanks"
    page = miniweb.to_html(random.Random(0), text, "Review of Lamp")
    assert cleaning.html_to_text(page) == text
    assert cleaning.html_to_text(page.replace("very", "very  ")) == text  # HTML collapses spaces


def test_strip_html_converts_only_html_and_removes_empty_pages():
    docs = [Document(0, "review", "<HTML><body><p>Hello <i>there</i></p></body></HTML>", {"html": True}),
            Document(1, "review", "<p>not a page</p> plain text", {}),
            Document(2, "spam", "<!doctype html><html><nav>Home</nav><footer>x</footer></html>", {})]
    step = cleaning.strip_html(docs)
    assert [d.text for d in step.kept] == ["Hello there", "<p>not a page</p> plain text"]
    assert step.kept[0] == dataclasses.replace(docs[0], text="Hello there")  # id, kind, truth kept
    assert [d.id for d in step.removed] == [2] and step.reasons == ["no text left"]


# --- exact duplicates ---------------------------------------------------------------------------------------

def test_normalise():
    assert minhash.normalise("  Hello,\n\tWORLD!! it's 3+5=8 ") == "hello world it s 3 5 8"


def test_exact_dedup_keeps_the_first_copy():
    texts = [PROSE[0], PROSE[1], PROSE[0].upper(), "  " + PROSE[1].replace(",", " ,") + "\n", PROSE[2],
             PROSE[0] + "!"]
    step = cleaning.exact_dedup(docs_of(texts))
    assert [d.id for d in step.kept] == [0, 1, 4]
    assert [d.id for d in step.removed] == [2, 3, 5]
    assert step.reasons == ["duplicate of 0", "duplicate of 1", "duplicate of 0"]


# --- MinHash and LSH ----------------------------------------------------------------------------------------

def test_near_dedup_finds_changed_copies_and_keeps_unrelated_pages():
    texts = PROSE + [change_words(PROSE[2], 3, seed=1), change_words(PROSE[0], 2, seed=2), PROSE[1][:120]]
    step = cleaning.near_dedup(docs_of(texts))
    assert [d.id for d in step.removed] == [4, 5]
    assert step.reasons == ["near duplicate of 2", "near duplicate of 0"]
    assert [d.id for d in step.kept] == [0, 1, 2, 3, 6]  # a short excerpt is not a near duplicate


def test_near_dedup_compares_only_with_kept_pages():
    a = [f"w{i}" for i in range(100)]
    b = a[:80] + [f"x{i}" for i in range(20)]  # J(a, b) = 80 / 120 = 0.67
    c = a[:60] + [f"y{i}" for i in range(20)] + b[80:]  # J(b, c) = 0.67, J(a, c) = 60 / 140 = 0.43
    step = cleaning.near_dedup(docs_of([" ".join(a), " ".join(b), " ".join(c)]), threshold=0.55, k=1)
    assert [d.id for d in step.kept] == [0, 2] and step.reasons == ["near duplicate of 0"]


def test_near_dedup_on_miniweb_near_duplicates():
    crawl = miniweb.generate(dataclasses.replace(miniweb.SIZES["smoke"], pages=300,
                                                 mix=(("review", 1), ("listing", 1), ("puzzle", 1), ("qa", 1)),
                                                 junk=(("near_duplicate", 0.1),)))
    step = cleaning.near_dedup(cleaning.strip_html(crawl).kept)
    precision, recall = cleaning.precision_recall(step, lambda d: d.kind == "near_duplicate")
    assert recall >= 0.9 and precision >= 0.9


# --- heuristics ---------------------------------------------------------------------------------------------

def test_quality_signals_by_hand():
    signals = cleaning.quality_signals("The cat and the dog.\nThe cat and the dog.\nÉté ## 3+5")
    assert signals["word_count"] == 13 and signals["alpha_words"] == 11  # "Été" counts, "3+5" does not
    assert signals["duplicate_line_share"] == pytest.approx(1 / 3)
    assert signals["distinct_word_share"] == pytest.approx(5 / 11)
    assert signals["stop_words"] == 6 and signals["symbol_ratio"] == pytest.approx(2 / 13)
    assert signals["non_ascii_letter_share"] == pytest.approx(2 / 33)  # 2 of 33 letters
    assert signals["mean_word_length"] == pytest.approx(33 / 11)
    assert cleaning.quality_signals("")["alpha_words"] == 0


def test_heuristic_filter_removes_junk_and_keeps_good_kinds():
    rng = random.Random(0)
    junk = [miniweb.spam_page(rng) for _ in range(5)] + [miniweb.gibberish_page(rng) for _ in range(5)] + \
        [miniweb.foreign_page(rng) for _ in range(5)]
    good = PROSE + ARITHMETIC + PUZZLES + ["3+5=8, 8-2=6", "Q: 3+5-2 = ? A: 6", "Hi."]
    step = cleaning.heuristic_filter(docs_of(good + junk))
    assert [d.text for d in step.kept] == good
    assert step.reasons[:5] == ["repeated words"] * 5 and step.reasons[-5:] == ["other script"] * 5
    assert set(step.reasons[5:10]) <= {"no stop words", "too few vowels"}


def test_rules_read_known_signals():
    rule = cleaning.Rule("typo", "stop_word_shares", below=0.1)
    with pytest.raises(ValueError, match="stop_word_shares"):
        cleaning.heuristic_filter(docs_of(PROSE), rules=[rule])
    short = cleaning.Rule("short", "word_count", below=5)
    assert [d.text for d in cleaning.heuristic_filter(docs_of(PROSE + ["a b"]), rules=[short]).removed] == ["a b"]


# --- perplexity ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_model():
    crawl = miniweb.generate(dataclasses.replace(miniweb.SIZES["smoke"], seed=7, pages=200, junk=(),
                                                 mix=tuple((k, s) for k, s in miniweb.WebConfig().mix
                                                           if k != "shakespeare")))
    return cleaning.reference_model([miniweb.clean_text(d) for d in crawl] + PROSE, n=4)


def test_bits_per_char_matches_the_ngram_cross_entropy(small_model):
    text = "The Food was   not good. Ωmega"
    chars = [c if c in small_model.counts.index else ngram.UNK for c in cleaning.model_text(text)]
    expected = ngram.cross_entropy(small_model, chars) / math.log(2)
    cache = {}
    assert cleaning.bits_per_char(small_model, text, cache=cache) == pytest.approx(expected)
    assert cleaning.bits_per_char(small_model, text, cache=cache) == pytest.approx(expected)  # from the cache
    assert cleaning.bits_per_char(small_model, text + " more", max_chars=len(chars)) == pytest.approx(expected)


def test_perplexity_filter_keeps_english_and_removes_noise(small_model):
    rng = random.Random(1)
    noise = [miniweb.gibberish_page(rng) for _ in range(5)] + [miniweb.foreign_page(rng) for _ in range(3)]
    threshold = cleaning.perplexity_threshold(small_model, PROSE, quantile=1.0, margin=0.5)
    scores = [cleaning.bits_per_char(small_model, text) for text in PROSE]
    assert threshold == pytest.approx(max(scores) + 0.5)
    step = cleaning.perplexity_filter(docs_of(PROSE + noise), small_model, threshold)
    assert [d.text for d in step.kept] == PROSE and len(step.removed) == 8
    assert all(reason.endswith(f"bits/char > {threshold:.2f}") for reason in step.reasons)


# --- measuring, errors, the whole pipeline ------------------------------------------------------------------

def test_precision_recall_by_hand():
    docs = docs_of(["a", "b", "c", "d", "e"])
    step = cleaning.Step("x", kept=docs[3:], removed=docs[:3])
    precision, recall = cleaning.precision_recall(step, lambda d: d.text in ("a", "b", "d"))
    assert (precision, recall) == (2 / 3, 2 / 3)
    assert math.isnan(cleaning.precision_recall(cleaning.Step("y", docs, []), lambda d: True)[0])


STEPS = [cleaning.strip_html, cleaning.exact_dedup, cleaning.near_dedup, cleaning.heuristic_filter,
         lambda docs: cleaning.perplexity_filter(docs, None, 3.0)]


@pytest.mark.parametrize("step", STEPS)
def test_steps_refuse_an_empty_crawl_and_other_objects(step):
    with pytest.raises(ValueError, match="docs is empty"):
        step([])
    with pytest.raises(TypeError, match=r"docs\[1\] must be a miniweb.Document"):
        step([Document(0, "review", "fine", {}), "not a document"])
    with pytest.raises(TypeError, match="docs must be a list"):
        step("a string")


def test_pipeline_is_deterministic_and_cleans_a_small_crawl(small_model):
    crawl = miniweb.generate(dataclasses.replace(miniweb.SIZES["smoke"], seed=3, pages=200,
                                                 mix=tuple((k, s) for k, s in miniweb.WebConfig().mix
                                                           if k != "shakespeare")))
    threshold = 4.0
    steps = cleaning.pipeline(crawl, small_model, threshold)
    assert [s.name for s in steps] == ["strip_html", "exact_dedup", "near_dedup", "heuristic_filter",
                                       "perplexity_filter"]
    again = cleaning.pipeline(crawl, small_model, threshold)
    assert [[d.id for d in s.removed] for s in steps] == [[d.id for d in s.removed] for s in again]
    for before, after in zip(steps, steps[1:]):
        assert [d.id for d in before.kept] == sorted(d.id for d in after.kept + after.removed)
    final = steps[-1].kept
    assert not any(d.kind in miniweb.JUNK_KINDS for d in final if d.kind != "near_duplicate")
    assert sum(d.kind in miniweb.GOOD_KINDS for d in final) >= 0.9 * sum(d.kind in miniweb.GOOD_KINDS for d in crawl)
    assert not any(cleaning.is_html(d.text) for d in final)
