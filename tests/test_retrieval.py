"""The retriever of notebook 11: BM25 against rank_bm25 and by hand, search, recall@k, the RAG prompt."""

import math
import random

import pytest

from helpers import retrieval

CORPUS = [
    "Mira Solvek was born in Tarrow. Mira Solvek worked as a baker.",
    "The mother of Jon Ardel is Mira Solvek. Jon Ardel was born in the year 1911.",
    "Tarrow is a city. Tarrow has a harbour and a harbour wall.",
    "Puzzles: reverse the word tarrow.",
    "Jon Ardel worked as a sailor. Jon Ardel is from Velm.",
]


def test_bm25_matches_rank_bm25_on_the_same_corpus():
    rank_bm25 = pytest.importorskip("rank_bm25")
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(30)]
    docs = [[rng.choice(vocab[:rng.randint(3, 30)]) for _ in range(rng.randint(1, 25))] for _ in range(40)]
    docs += [retrieval.words(t) for t in CORPUS]
    ours, theirs = retrieval.BM25(docs), rank_bm25.BM25Okapi(docs)
    for query in (["w0"], ["w1", "w29", "w1"], ["mira", "solvek", "born"], ["tarrow", "w3"], ["absent"]):
        assert ours.scores(query) == pytest.approx(list(theirs.get_scores(query)), abs=1e-9)
    for k1, b in ((1.2, 0.5), (2.0, 1.0), (0.5, 0.0)):
        o, t = retrieval.BM25(docs, k1=k1, b=b), rank_bm25.BM25Okapi(docs, k1=k1, b=b)
        assert o.scores(["w2", "tarrow"]) == pytest.approx(list(t.get_scores(["w2", "tarrow"])), abs=1e-9)


def test_bm25_by_hand():
    docs = [["a", "b"], ["a", "a", "c"], ["d"]]
    index = retrieval.BM25(docs, k1=1.5, b=0.75)
    idf_c = math.log(3 - 1 + 0.5) - math.log(1 + 0.5)  # "c" is on one page of three
    norm = 1.5 * (1 - 0.75 + 0.75 * 3 / 2)  # page 1 has 3 words, the mean is 2
    assert index.score(["c"], 1) == pytest.approx(idf_c * 1 * 2.5 / (1 + norm))
    assert index.score(["c"], 0) == 0.0 and index.score(["zzz"], 1) == 0.0
    # "a" is on 2 of 3 pages: its idf would be negative, so it gets epsilon times the mean idf
    raw = {"a": math.log(1.5 / 2.5), "b": idf_c, "c": idf_c, "d": idf_c}
    assert index.idf["a"] == pytest.approx(0.25 * sum(raw.values()) / 4)


def test_search_finds_the_page_and_recall_counts_it():
    r = retrieval.Retriever(CORPUS)
    assert r.search("Who is Jon Ardel's mother?", 1) == [1]
    assert r.search("Where was Mira Solvek born?", 2)[0] == 0
    ranked = [r.search(q, 3) for q in ("What was Jon Ardel's job?", "harbour wall", "Who is Mira Solvek?")]
    assert retrieval.recall_at_k(ranked, [{1, 4}, 2, 3], 1) == pytest.approx(2 / 3)
    assert retrieval.recall_at_k(ranked, [{1, 4}, 2, 3], 3) == pytest.approx(2 / 3)  # page 3 is not about Mira
    assert retrieval.recall_at_k(ranked, [4, 2, {0, 1}], 2) == 1.0


def test_rag_prompt_puts_the_best_page_next_to_the_question():
    prompt = retrieval.rag_prompt("Who is X's mother? ", ["best page.", "second\npage."])
    assert prompt == "Passage: second page. best page.\n\nQ: Who is X's mother?\nA:"
    assert retrieval.rag_prompt("Q?", []) == "Q: Q?\nA:"
    r = retrieval.Retriever(CORPUS)
    assert r.rag_prompt("Where is Jon Ardel from?", 1).startswith("Passage: Jon Ardel worked as a sailor.")


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least one document"):
        retrieval.BM25([])
    with pytest.raises(ValueError, match="k must be"):
        retrieval.BM25([["a"]]).top(["a"], 0)
    with pytest.raises(ValueError, match="page texts"):
        retrieval.Retriever(["ok", 3])
    with pytest.raises(TypeError, match="text must be a str"):
        retrieval.words(None)
    with pytest.raises(ValueError, match="one ranking per query"):
        retrieval.recall_at_k([[0]], [0, 1], 1)
