"""Notebook 11's knowledge helpers: questions both ways, reading rows, page rows, a fact that changes."""

import random

import pytest

from helpers import chat, knowledge, retrieval
from helpers import tokenizer as tok
from helpers import world as w


def _byte_tokenizer():
    specials = [tok.BOS, tok.PAD, chat.END, *chat.ROLE_TOKENS.values()]
    return tok.Tokenizer({bytes([b]): b for b in range(256)}, "gpt4", {s: 256 + i for i, s in enumerate(specials)})


WORLD = w.World(seed=3, people=30, heldout=6, cities=5)


def test_questions_both_ways_and_pages_state_each_fact():
    person = WORLD.people[WORLD.heldout[0]]
    assert knowledge.question(person, "mother") == (f"Who is {person.name}'s mother?", person.mother)
    assert knowledge.question(person, "child") == (f"Who is {person.mother}'s child?", person.name)
    assert knowledge.question(person, "year")[1] == str(person.year)
    page = knowledge.fact_page(person)
    for value in (person.born_in, str(person.year), person.job, person.mother):
        assert value in page
    assert f"{person.mother}'s" not in page  # the mother relation is written one way only
    with pytest.raises(ValueError, match="relation must be one of"):
        knowledge.question(person, "father")


def test_reader_rows_ask_about_fresh_people_with_the_loss_on_the_answers():
    tk = _byte_tokenizer()
    rows = knowledge.reader_rows(tk, WORLD, 20, seed=0, passages=(1, 2), block_size=420)
    assert rows == knowledge.reader_rows(tk, WORLD, 20, seed=0, passages=(1, 2), block_size=420) != \
        knowledge.reader_rows(tk, WORLD, 20, seed=1, passages=(1, 2), block_size=420)
    names = set(WORLD.people)
    for ids, mask in rows:
        assert len(ids) == len(mask) <= 420 and ids[0] == tk.special_tokens[tok.BOS] and mask[0] == 0
        text = tk.decode(ids[1:])
        assert text.startswith("Passage: ") and text.endswith("\n")
        passages, questions = text.split("\n\nQ: ", 1)
        answers = [tk.decode(list(span)) for span in _spans(ids, mask)]
        assert len(answers) == text.count("\nA:") >= 1  # every answer is in the loss, nothing else
        for qa, a in zip(questions[:-1].split("\nQ: "), answers):
            assert (qa + "\n").endswith("\nA:" + a) and a.startswith(" ") and a.endswith("\n")
            assert a.strip() in passages  # answered by copying from the passages
        assert not any(n in text for n in names)  # invented people only: no fact of the table leaks in
    assert max(t.count("\nA:") for t in (tk.decode(ids) for ids, _ in rows)) >= 3
    short = knowledge.reader_rows(tk, WORLD, 20, seed=0, passages=(1, 1), block_size=260)
    assert all(len(ids) <= 260 for ids, _ in short)
    with pytest.raises(ValueError, match="does not fit in block_size"):
        knowledge.reader_rows(tk, WORLD, 5, seed=0, block_size=40)


def _spans(ids, mask):
    """The runs of ids under a loss mask of 1."""
    span = []
    for t, m in zip(ids, mask):
        if m:
            span.append(t)
        elif span:
            yield span
            span = []
    if span:
        yield span


def test_page_rows_and_a_changed_fact():
    tk = _byte_tokenizer()
    people = [WORLD.people[n] for n in WORLD.heldout[:2]]
    rows = knowledge.page_rows(tk, people, copies=3, seed=0)
    assert len(rows) == 6 and all(m == [0] + [1] * (len(ids) - 1) for ids, m in rows)
    assert len({tuple(ids) for ids, _ in rows}) > 2  # the copies are worded differently
    new = knowledge.changed(people[0], WORLD, "born_in")
    assert new.born_in != people[0].born_in and new.born_in in WORLD.cities and new.name == people[0].name
    assert knowledge.question(new, "born_in")[1] == new.born_in


def test_passages_retrieve_their_person():
    pages = [knowledge.fact_page(p) for p in WORLD.people.values()]
    r = retrieval.Retriever(pages)
    people = list(WORLD.people.values())
    hits = [r.search(knowledge.question(p, "born_in")[0], 1)[0] == i for i, p in enumerate(people)]
    assert sum(hits) / len(hits) > 0.9
    text = knowledge.passage(random.Random(0), people[0])
    assert all(str(getattr(people[0], r)) in text for r in w.RELATIONS)


def test_question_rows_drill_each_relation_with_the_loss_on_the_answer():
    tk = _byte_tokenizer()
    people = [WORLD.people[n] for n in WORLD.heldout[:2]]
    rows = knowledge.question_rows(tk, people, ("born_in", "mother"), copies=2)
    assert len(rows) == 8 and rows[0] == rows[1] != rows[2]
    ids, mask = rows[2]
    assert tk.decode(ids[1:]) == f"Q: Who is {people[0].name}'s mother?\nA: {people[0].mother}\n"
    assert tk.decode([t for t, m in zip(ids, mask) if m]) == f" {people[0].mother}\n"


def test_injected_sentences_and_what_each_filter_lets_through():
    person = WORLD.people[WORLD.heldout[0]]
    page = knowledge.fact_page(person)
    assert len(knowledge.sentences(page)) == 4 and " ".join(knowledge.sentences(page)) == page
    kept = {}
    for attack in knowledge.INJECTIONS:
        bad = knowledge.inject(page, attack, person.name, "Zorbat")
        assert bad.startswith(page) and bad.endswith(".") and "Zorbat" in bad
        kept[attack] = ("Zorbat" in knowledge.keyword_filter(bad), "Zorbat" in knowledge.fact_filter(bad))
    # the deny-list stops the instruction only; the allow-list stops both instructions, not a false fact
    assert kept == {"instruction": (False, False), "paraphrase": (True, False), "false fact": (True, True)}
    rng = random.Random(0)
    for _ in range(50):  # neither filter touches an honest page, in any of the web's wordings
        text = knowledge.passage(rng, knowledge.fresh_person(rng, WORLD))
        assert knowledge.keyword_filter(text) == text == knowledge.fact_filter(text)
    with pytest.raises(ValueError, match="attack must be one of"):
        knowledge.inject(page, "sql", person.name, "x")


def test_accuracy_accepts_any_of_several_right_answers(monkeypatch):
    said = {"Who is Ada's child?": "Bo Lin", "Where was Bo Lin born?": "Oslo"}
    monkeypatch.setattr(knowledge, "answer", lambda model, tk, q, passages: said[q])
    assert knowledge.accuracy(None, None, [("Who is Ada's child?", ["Al Tor", "Bo Lin"])]) == 1.0
    pairs = [("Where was Bo Lin born?", "Oslo"), ("Who is Ada's child?", "Al Tor")]
    assert knowledge.accuracy(None, None, pairs) == 0.5
    with pytest.raises(ValueError, match="at least one"):
        knowledge.accuracy(None, None, [])
