"""Task families on the mini-web's hidden truth: questions with exact answers and exact graders.

Each family draws fresh instances from ``helpers.world`` (a review and its true sentiment, an arithmetic chain,
a fact about a person, a passage and a question about it, a string puzzle) and writes them with one of several
instruction phrasings, the way FLAN and T0 phrase one task many ways. The last phrasing of every family is held
out (never used for training), and so is one whole family, ``HELDOUT_FAMILY``: notebook 08 measures whether
instruction tuning carries over to them.

Graders are exact: the first line of an output, stripped of spaces and a final full stop, must equal the
answer (case-insensitive, except for the upper-case puzzle).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from helpers import world as w
from helpers.miniweb import FACT_QUESTIONS, PUZZLE_TEXT, comprehension_page

PHRASINGS = {  # family -> instruction templates; the last one of each is held out
    "sentiment": ("Is this review positive or negative?\n{review}",
                  "Review: {review}\nWhat is the sentiment of this review, positive or negative?",
                  "Classify the review as positive or negative.\n{review}",
                  "{review}\nDid the writer like it? Answer positive or negative."),
    "arithmetic": ("What is {expression}?", "Compute {expression}.", "Calculate {expression}.",
                   "Work out the value of {expression}."),
    "facts": ("{question}", "Answer the question.\n{question}", "Question: {question}",
              "Tell me: {question}"),
    "comprehension": ("{passage}\n{question}", "Read the passage and answer.\n{passage}\n{question}",
                      "Passage: {passage}\nQuestion: {question}",
                      "Use the text to answer.\nText: {passage}\nQuestion: {question}"),
    "reverse": (PUZZLE_TEXT["reverse"], "Write {word} backwards.", "Spell {word} in reverse order.",
                "What is {word} read from right to left?"),
    "upper": (PUZZLE_TEXT["upper"], "Turn {word} into upper case.", "Capitalise every letter of {word}.",
              "Shout the word {word}."),
    "count": (PUZZLE_TEXT["count"], "Count the letter {letter} in {word}.",
              "How often does {letter} occur in the word {word}?", "Number of {letter}'s in {word}?"),
    "sort": (PUZZLE_TEXT["sort"], "Put the letters of {word} in alphabetical order.",
             "Arrange the letters of {word} from a to z.", "Alphabetise the letters in {word}."),
}
FAMILIES = tuple(PHRASINGS)
HELDOUT_FAMILY = "sort"  # never used for instruction tuning
SPLITS = ("train", "heldout", "all")  # which phrasings: all but the last, the last one, or every one


@dataclass(frozen=True)
class Example:
    family: str
    prompt: str  # the instruction, filled in
    answer: str  # the exact answer
    phrasing: int  # index into PHRASINGS[family]
    truth: dict = field(default_factory=dict)  # what the instance was drawn from


def _instance(family: str, rng: random.Random, world: w.World) -> tuple[dict, str]:
    """(fields for the template, answer) of one fresh instance of ``family``."""
    if family == "sentiment":
        review, sentiment = w.review(rng)
        return {"review": review, "sentiment": sentiment}, "positive" if sentiment > 0 else "negative"
    if family == "arithmetic":
        problem = w.chain(rng, rng.randint(2, 4))
        return {"expression": problem.expression}, str(problem.answer)
    if family == "facts":
        person, relation = world.people[rng.choice(world.public)], rng.choice(w.RELATIONS)
        question = FACT_QUESTIONS[relation].format(name=person.name)
        return {"question": question, "person": person.name, "relation": relation}, str(getattr(person, relation))
    if family == "comprehension":
        text, truth = comprehension_page(rng, world)
        passage = text.split("\n\n")[0].removeprefix("Passage: ")
        relation = truth["relations"][0]
        question = FACT_QUESTIONS[relation].format(name=truth["person"]["name"])
        return {"passage": passage, "question": question, "relation": relation}, str(truth["person"][relation])
    puzzle = w.puzzle(rng, family)
    return {"word": puzzle["word"], "letter": puzzle["letter"]}, puzzle["answer"]


def phrasings_of(split: str, count: int) -> list[int]:
    """Indices of the phrasings ``split`` uses among ``count``: all but the last, the last, or all."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return {"train": list(range(count - 1)), "heldout": [count - 1], "all": list(range(count))}[split]


def make_examples(family: str, n: int, *, seed: int = 0, split: str = "train",
                  world: w.World | None = None) -> list[Example]:
    """``n`` fresh examples of ``family``, each written with a random phrasing of ``split``."""
    if family not in PHRASINGS:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    world = world or w.World()
    choices = phrasings_of(split, len(PHRASINGS[family]))
    rng, examples = random.Random(f"tasks-{family}-{seed}"), []
    for _ in range(n):
        fields, answer = _instance(family, rng, world)
        phrasing = rng.choice(list(choices))
        prompt = PHRASINGS[family][phrasing].format(**fields)
        examples.append(Example(family, prompt, answer, phrasing, fields))
    return examples


def normalise_answer(output: str) -> str:
    """The answer part of a model's output: its first line, without surrounding spaces or a final full stop."""
    if not isinstance(output, str):
        raise TypeError(f"output must be a str, got {type(output).__name__}")
    return output.strip().split("\n")[0].strip().removesuffix(".").strip()


def grade(example: Example, output: str) -> bool:
    """True when ``output`` answers ``example`` exactly (case matters only for the upper-case puzzle)."""
    got, want = normalise_answer(output), example.answer
    return got == want if example.family == "upper" else got.lower() == want.lower()
