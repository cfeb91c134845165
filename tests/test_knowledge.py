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


def test_reader_rows_ask_about_fresh_people_with_the_loss_on_the_answer():
    tk = _byte_tokenizer()
    rows = knowledge.reader_rows(tk, WORLD, 20, seed=0)
    assert rows == knowledge.reader_rows(tk, WORLD, 20, seed=0) != knowledge.reader_rows(tk, WORLD, 20, seed=1)
    names = set(WORLD.people)
    for ids, mask in rows:
        assert len(ids) == len(mask) and ids[0] == tk.special_tokens[tok.BOS]
        text = tk.decode(ids[1:])
        prompt, answer = tk.decode([t for t, m in zip(ids, mask) if not m][1:]), tk.decode([t for t, m in
                                                                                             zip(ids, mask) if m])
        assert text == prompt + answer and prompt.startswith("Passage: ") and prompt.endswith("\nA:")
        assert answer.startswith(" ") and answer.endswith("\n") and answer.strip() in prompt.split("\n\nQ:")[0]
        assert not any(n in text for n in names)  # invented people only: no fact of the table leaks in


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
