"""Knowledge a model lacks, and three ways to give it (notebook 11): prompting alone, fine-tuning, retrieval.

The mini-web's fact table (``helpers.world``) holds people that never appear on the web (``World.heldout``): the
base model cannot know them. This module writes what the notebook needs about them and about fresh people:

- ``fact_page``: one encyclopedia page per person (the retrieval corpus), ``passage``: the same facts in the web's
  varied wording and order;
- ``question``: a question and its true answer for a relation (``born_in``, ``year``, ``job``, ``mother``, and
  ``child``: the mother relation asked the other way, never written on the web);
- ``reader_rows``: training rows that teach a model to answer from passages put before the question (1-3 passages
  about fresh, invented people, so no fact of the table leaks in); ``page_rows``: the held-out people's pages as
  plain language-model rows (fine-tuning on new documents);
- ``answer``: the model's greedy answer to a question, closed-book or with passages; ``accuracy`` over questions.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence

import torch.nn as nn

from helpers import miniweb, retrieval, sft
from helpers import tokenizer as tok
from helpers import world as w

RELATIONS = (*w.RELATIONS, "child")  # "child": who is the mother's child (the reverse of "mother")
REVERSE_QUESTION = "Who is {mother}'s child?"


def fact_page(person: w.Person) -> str:
    """The person's facts, one sentence each, in one fixed wording (the mother relation one way only)."""
    return " ".join(miniweb.FACT_SENTENCES[r][0].format(name=person.name, value=getattr(person, r))
                    for r in w.RELATIONS)


def passage(rng: random.Random, person: w.Person) -> str:
    """The person's facts in the web's varied wordings, in a random order."""
    return " ".join(miniweb.fact_sentence(rng, person, r) for r in rng.sample(w.RELATIONS, len(w.RELATIONS)))


def question(person: w.Person, relation: str) -> tuple[str, str]:
    """(question, true answer) about ``person``; for ``child`` the question names the mother."""
    if relation == "child":
        return REVERSE_QUESTION.format(mother=person.mother), person.name
    if relation not in w.RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    return miniweb.FACT_QUESTIONS[relation].format(name=person.name), str(getattr(person, relation))


def fresh_person(rng: random.Random, world: w.World) -> w.Person:
    """An invented person (a new name and mother, the world's cities and jobs), in no fact table."""
    return w.Person(w.make_name(rng), rng.choice(world.cities), rng.randint(1700, 1999), rng.choice(w.JOBS),
                    w.make_name(rng))


def _row(tokenizer: tok.Tokenizer, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    """BOS + prompt + " answer" and a newline; the loss mask covers the answer and its newline only."""
    p, a = tokenizer.encode_ordinary(prompt), tokenizer.encode_ordinary(f" {answer}\n")
    return [tokenizer.special_tokens[tok.BOS], *p, *a], [0] * (1 + len(p)) + [1] * len(a)


def reader_rows(tokenizer: tok.Tokenizer, world: w.World, n: int, seed: int, passages: tuple[int, int] = (1, 3)
                ) -> list[tuple[list[int], list[int]]]:
    """``n`` reading exercises: passages about 1-3 fresh people, a question about one of them (any relation, both
    directions of the mother relation), the answer. Rows for ``sft.finetune`` (loss on the answer only)."""
    rng = random.Random(f"reader-{seed}")
    rows = []
    for _ in range(n):
        people = [fresh_person(rng, world) for _ in range(rng.randint(*passages))]
        q, a = question(rng.choice(people), rng.choice(RELATIONS))
        rows.append(_row(tokenizer, retrieval.rag_prompt(q, [passage(rng, p) for p in people]), a))
    return rows


def page_rows(tokenizer: tok.Tokenizer, people: Sequence[w.Person], copies: int, seed: int
              ) -> list[tuple[list[int], list[int]]]:
    """``copies`` differently worded pages per person (name, then the facts), as language-model rows (loss on
    every token): the documents a fine-tune on new knowledge reads."""
    rng = random.Random(f"pages-{seed}")
    rows = []
    for _ in range(copies):
        for person in people:
            ids = [tokenizer.special_tokens[tok.BOS], *tokenizer.encode_ordinary(f"{person.name}\n"
                                                                                  f"{passage(rng, person)}")]
            rows.append((ids, [0] + [1] * (len(ids) - 1)))
    return rows


def answer(model: nn.Module, tokenizer: tok.Tokenizer, q: str, passages: Sequence[str] = (),
           max_new_tokens: int = 10) -> str:
    """The model's greedy answer to question ``q`` (with ``passages`` before it, if any): its first line."""
    return sft.base_answer(model, tokenizer, retrieval.rag_prompt(q, passages), max_new_tokens).strip() \
        .split("\n")[0].strip()


def accuracy(model: nn.Module, tokenizer: tok.Tokenizer, questions: Sequence[tuple[str, str]],
             passages_for: Callable[[str], Sequence[str]] = lambda q: ()) -> float:
    """Share of (question, answer) pairs answered exactly, each with ``passages_for(question)`` before it."""
    if not questions:
        raise ValueError("accuracy needs at least one (question, answer) pair")
    return sum(answer(model, tokenizer, q, passages_for(q)) == a for q, a in questions) / len(questions)


def changed(person: w.Person, world: w.World, relation: str = "born_in", seed: int = 0) -> w.Person:
    """The same person with one fact changed to another value of its kind (a fact that changes)."""
    rng = random.Random(f"change-{seed}-{person.name}")
    options = {"born_in": world.cities, "job": w.JOBS}
    if relation not in options:
        raise ValueError(f"relation must be one of {sorted(options)}, got {relation!r}")
    value = rng.choice([v for v in options[relation] if v != getattr(person, relation)])
    return dataclasses.replace(person, **{relation: value})
