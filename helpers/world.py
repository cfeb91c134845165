"""The hidden truth behind the mini-web: a sentiment lexicon, arithmetic, string puzzles and a fact table.

``helpers.miniweb`` renders this truth into web pages for pretraining and ``helpers.tasks`` asks questions
about it, so every answer the course grades is known exactly:
- a review's sentiment is the sign of a sum of word polarities (an intensifier doubles a word, "not" flips it);
- an arithmetic chain is evaluated left to right, one small step at a time (each step a lookup a small model
  can learn; the number of steps carries the difficulty);
- a ``World`` holds fictional cities and people (born in, year, job, mother); the mother relation is written
  one way only on the web, and some people are held out of the web altogether (new knowledge for notebook 11).

Simplified: templated English from small word lists; names are random syllables.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

POSITIVE = ("good", "great", "lovely", "excellent", "fresh", "friendly", "tasty", "bright", "clean", "quick",
            "sturdy", "charming", "superb", "pleasant", "reliable", "comfortable")
NEGATIVE = ("bad", "awful", "bland", "rude", "broken", "dull", "slow", "dirty", "cheap", "noisy", "stale",
            "flimsy", "boring", "terrible", "greasy", "cramped")
INTENSIFIERS = ("very", "really", "truly", "extremely")
CATEGORIES = {"restaurant": ("food", "service", "soup", "bread", "table", "waiter", "dessert", "room"),
              "film": ("plot", "acting", "ending", "music", "script", "story", "hero", "camera"),
              "product": ("battery", "screen", "handle", "box", "price", "lid", "switch", "cable")}
JOBS = ("baker", "painter", "farmer", "doctor", "sailor", "teacher", "weaver", "miner", "poet", "judge", "potter",
        "tailor")
SYLLABLES = ("ka", "lo", "mi", "ren", "dar", "vel", "tis", "bo", "nu", "sha", "or", "el", "quin", "fa", "ger",
             "ho", "ju", "ly", "mo", "pra", "sel", "tor", "ur", "wen", "zi", "ba", "co", "dre", "fin", "gal")
WORDS = ("lamp", "river", "garden", "stone", "candle", "window", "forest", "basket", "mirror", "ladder", "pepper",
         "island", "button", "pocket", "silver", "winter", "harbor", "violin", "cactus", "meadow", "rocket",
         "tunnel", "walnut", "zebra", "anchor", "bridge", "castle", "dragon", "feather", "glove")
PUZZLES = ("reverse", "upper", "count", "sort")


def make_name(rng: random.Random, parts: int = 2) -> str:
    """A fictional name such as 'Kalo Rendar': ``parts`` capitalised words of 2-3 syllables."""
    return " ".join("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
                    for _ in range(parts))


# --- reviews ------------------------------------------------------------------------------------------------

def review(rng: random.Random, category: str | None = None, sentences: tuple[int, int] = (2, 4)) -> tuple[str, int]:
    """A review and its true sentiment (+1 or -1). Each sentence is 'The <aspect> was [very|not] <adjective>.';
    the sentiment is the sign of the summed polarities (ties are redrawn)."""
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"category must be one of {sorted(CATEGORIES)}, got {category!r}")
    category = category or rng.choice(sorted(CATEGORIES))
    while True:
        parts, score = [], 0
        for aspect in rng.sample(CATEGORIES[category], rng.randint(*sentences)):
            positive = rng.random() < 0.5
            adjective = rng.choice(POSITIVE if positive else NEGATIVE)
            modifier = rng.choices(["", "not", rng.choice(INTENSIFIERS)], weights=[5, 2, 3])[0]
            score += sentiment_of(adjective, modifier)
            parts.append(f"The {aspect} was {modifier + ' ' if modifier else ''}{adjective}.")
        if score != 0:
            return " ".join(parts), 1 if score > 0 else -1


def sentiment_of(adjective: str, modifier: str = "") -> int:
    """The hidden polarity of one '[modifier] adjective': +-1, doubled by an intensifier, flipped by 'not'."""
    if adjective not in POSITIVE and adjective not in NEGATIVE:
        raise ValueError(f"adjective {adjective!r} is not in the lexicon")
    sign = 1 if adjective in POSITIVE else -1
    return sign * (-1 if modifier == "not" else 1) * (2 if modifier in INTENSIFIERS else 1)


def review_score(text: str) -> int:
    """The hidden score of any text: the summed polarity of its sentences 'The <noun> was [modifier] <adjective>.'
    whose adjective is in the lexicon (other sentences count 0). ``review`` returns the sign of this score;
    notebook 06 uses it to find close calls, and a reward can use it to judge generated reviews."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    total = 0
    for modifier, adjective in re.findall(r"\bThe \w+ was (?:(\w+) )?(\w+)\.", text):
        if adjective in POSITIVE or adjective in NEGATIVE:
            total += sentiment_of(adjective, modifier)  # a word that is neither "not" nor an intensifier counts 1
    return total


# --- arithmetic ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Chain:
    expression: str  # e.g. "3+5-2"
    steps: tuple[tuple[str, int], ...]  # (("3+5", 8), ("8-2", 6)): one operation each, left to right
    answer: int


def chain(rng: random.Random, operands: int, high: int = 9, ops: str = "+-") -> Chain:
    """A left-to-right chain of ``operands`` numbers in [0, high] joined by operators drawn from ``ops``."""
    if isinstance(operands, bool) or not isinstance(operands, int) or operands < 2:
        raise ValueError(f"operands must be an integer >= 2, got {operands!r}")
    if not ops or set(ops) - set("+-*"):
        raise ValueError(f"ops must be a non-empty string of '+', '-', '*', got {ops!r}")
    numbers = [rng.randint(0, high) for _ in range(operands)]
    value, text, steps = numbers[0], str(numbers[0]), []
    for number in numbers[1:]:
        op = rng.choice(ops)
        step = f"{value}{op}{number}"
        value = value + number if op == "+" else value - number if op == "-" else value * number
        steps.append((step, value))
        text += f"{op}{number}"
    return Chain(text, tuple(steps), value)


def calculator_chain(rng: random.Random, extra: int = 1) -> Chain:
    """A two-digit product followed by ``extra`` additions or subtractions: hard in one step for a small model,
    easy with a calculator call per step. Left to right equals the usual precedence here (the product is first)."""
    a, b = rng.randint(11, 99), rng.randint(11, 99)
    value, text, steps = a * b, f"{a}*{b}", [(f"{a}*{b}", a * b)]
    for _ in range(extra):
        op, number = rng.choice("+-"), rng.randint(2, 99)
        steps.append((f"{value}{op}{number}", value + number if op == "+" else value - number))
        value, text = steps[-1][1], text + f"{op}{number}"
    return Chain(text, tuple(steps), value)


# --- string puzzles -----------------------------------------------------------------------------------------

def solve_puzzle(kind: str, word: str, letter: str = "") -> str:
    """The exact answer of a string puzzle."""
    if kind == "reverse":
        return word[::-1]
    if kind == "upper":
        return word.upper()
    if kind == "count":
        return str(word.count(letter))
    if kind == "sort":
        return "".join(sorted(word))
    raise ValueError(f"puzzle kind must be one of {PUZZLES}, got {kind!r}")


def puzzle(rng: random.Random, kind: str | None = None) -> dict:
    """A random puzzle: {'kind', 'word', 'letter', 'answer'}."""
    kind = kind or rng.choice(PUZZLES)
    word = rng.choice(WORDS)
    letter = rng.choice(word) if kind == "count" else ""
    return {"kind": kind, "word": word, "letter": letter, "answer": solve_puzzle(kind, word, letter)}


# --- the fact table -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    name: str
    born_in: str  # a city
    year: int  # year of birth
    job: str
    mother: str  # another person; the web writes only "<name>'s mother is <mother>", never the reverse


RELATIONS = ("born_in", "year", "job", "mother")


class World:
    """Fictional cities and people, and which people are held out of the web."""

    def __init__(self, seed: int = 0, people: int = 120, heldout: int = 20, cities: int = 16):
        if isinstance(people, bool) or not isinstance(people, int) or people < 2:
            raise ValueError(f"people must be an integer >= 2 (everyone has a mother among them), got {people!r}")
        if not 0 <= heldout < people - 1:
            raise ValueError(f"heldout must be in [0, people - 1), got heldout={heldout!r}, people={people!r}")
        rng = random.Random(f"world-{seed}")
        self.cities = _distinct(rng, cities, lambda: make_name(rng, 1))
        names = _distinct(rng, people, lambda: make_name(rng), exclude=set(self.cities))
        self.heldout = sorted(rng.sample(names, heldout))  # never on the web, not even as someone's mother
        held = set(self.heldout)
        self.public = [n for n in names if n not in held]
        self.people: dict[str, Person] = {}  # name -> Person
        for name in names:
            mother = rng.choice([n for n in (names if name in held else self.public) if n != name])
            self.people[name] = Person(name, rng.choice(self.cities), rng.randint(1700, 1999), rng.choice(JOBS),
                                       mother)

    def children(self, mother: str) -> list[str]:
        """The people whose mother is ``mother`` (the reverse direction, never written on the web)."""
        return sorted(p.name for p in self.people.values() if p.mother == mother)


def _distinct(rng: random.Random, n: int, make, exclude: set | None = None) -> list[str]:
    seen, out = set(exclude or ()), []
    for _ in range(n * 100):
        name = make()
        if name not in seen:
            seen.add(name)
            out.append(name)
            if len(out) == n:
                return out
    raise ValueError(f"could not draw {n} distinct names; ask for fewer")
