"""The mini-web: a seeded generator of a small, noisy "internet" on which the course model is pretrained.

Because we write the web ourselves (from the hidden truth of ``helpers.world``), every later measurement is
exact, and every page carries its kind and its truth in metadata. ``generate(config)`` returns the raw crawl:
good pages of the kinds below, a share of them served as HTML with boilerplate, plus the junk a real crawl
carries (exact and near duplicates, keyword spam, gibberish, other scripts) for notebook 05 to clean.

Good kinds (``GOOD_KINDS``):
- shakespeare: passages from the first 90% of Tiny Shakespeare (the last 10% stays held out);
- arithmetic: worksheets with direct answers, worked step-by-step solutions, or calculator calls ``<<a*b=c>>``
  (GSM8K's annotation style), which notebook 07 compares;
- review: a review with a star rating; listing: one repeated ``review => label`` format with one pair of label
  words per page (bursty, repeated-format data of this kind is what lets in-context learning emerge in small
  transformers: Chan et al., 2022); notebook 06 builds on these;
- encyclopedia and qa: pages and question lists about the public people of the fact table;
- comprehension: a passage about a fresh person, then questions answered by copying from the passage;
- puzzle: string puzzles (reverse, upper-case, count a letter, sort letters).

Simplified: one HTML skeleton; near duplicates change a few words; spam, gibberish and other scripts are drawn
from small fixed lists.
"""

from __future__ import annotations

import html
import random
import re
from dataclasses import dataclass, field

from helpers import world as w

GOOD_KINDS = ("shakespeare", "arithmetic", "review", "listing", "encyclopedia", "qa", "comprehension", "puzzle")
JUNK_KINDS = ("duplicate", "near_duplicate", "spam", "gibberish", "foreign")
# Label words of listing pages: (positive, negative). HELDOUT_LABEL_PAIRS never appear on the web.
LABEL_PAIRS = (("positive", "negative"), ("good", "bad"), ("yes", "no"), ("great", "awful"), ("happy", "sad"),
               ("love", "hate"), ("like", "dislike"), ("pos", "neg"))
HELDOUT_LABEL_PAIRS = (("sun", "rain"), ("blue", "red"))
LISTING_FORMATS = ("{review} => {label}", "Review: {review}\nSentiment: {label}", "Input: {review}\nOutput: {label}")
ARITHMETIC_MODES = ("direct", "worked", "calculator")


@dataclass(frozen=True)
class Document:
    id: int  # unique within a crawl, in crawl order
    kind: str  # one of GOOD_KINDS or JUNK_KINDS
    text: str  # the page as crawled (an HTML page when truth["html"] is True)
    truth: dict = field(default_factory=dict)  # plain values: what the page says, for exact measurement


@dataclass(frozen=True)
class WebConfig:
    seed: int = 0  # one seed for the world and every page
    pages: int = 400  # good pages, before junk is added
    mix: tuple[tuple[str, float], ...] = (  # relative share of each good kind
        ("shakespeare", 0.08), ("arithmetic", 0.26), ("review", 0.10), ("listing", 0.16), ("encyclopedia", 0.12),
        ("qa", 0.10), ("comprehension", 0.10), ("puzzle", 0.08))
    html_share: float = 0.3  # share of good pages served as HTML with boilerplate
    junk: tuple[tuple[str, float], ...] = (  # junk pages per good page, by kind
        ("duplicate", 0.05), ("near_duplicate", 0.05), ("spam", 0.03), ("gibberish", 0.03), ("foreign", 0.03))
    people: int = 120  # people in the fact table
    heldout_people: int = 20  # of whom this many never appear on the web (new knowledge for notebook 11)
    cities: int = 16  # cities people are born in

    def __post_init__(self):
        for name in ("pages", "people", "cities"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"WebConfig.{name} must be a positive integer, got {value!r}")
        unknown = ({k for k, _ in self.mix} - set(GOOD_KINDS)) | ({k for k, _ in self.junk} - set(JUNK_KINDS))
        if unknown:
            raise ValueError(f"WebConfig.mix and .junk name unknown kinds {sorted(unknown)}; expected kinds of "
                             f"{GOOD_KINDS} and {JUNK_KINDS}")
        if not 0 <= self.html_share <= 1:
            raise ValueError(f"WebConfig.html_share must be in [0, 1], got {self.html_share!r}")

    def world(self) -> w.World:
        return w.World(self.seed, self.people, self.heldout_people, self.cities)


SIZES = {"smoke": WebConfig(pages=160, people=40, heldout_people=8, cities=8),
         "cpu": WebConfig(pages=6000, people=240, heldout_people=40),
         "gpu": WebConfig(pages=60000, people=2000, heldout_people=200, cities=60,
                          mix=(("shakespeare", 0.015),) + WebConfig.mix[1:])}


# --- good pages: each returns (text, truth) -----------------------------------------------------------------

def shakespeare_page(rng: random.Random, text: str, taken: list | None = None) -> tuple[str, dict]:
    """A passage of whole lines from the first 90% of ``text`` (Tiny Shakespeare). ``taken``: a list of the
    (start, end) spans already used, which this passage avoids when it can (overlapping passages are near
    duplicates) and to which it adds its own."""
    if not isinstance(text, str) or len(text) < 2500:
        raise ValueError(f"shakespeare must be a text of at least 2,500 characters, got {len(text or '')!r}")
    limit = int(len(text) * 0.9)
    for _ in range(100):
        cut = text.rfind("\n\n", 0, rng.randrange(limit - 2000))
        start = cut + 2 if cut >= 0 else 0
        stop = min(limit, start + rng.randint(300, 900))
        end = text.rfind("\n", start, stop)
        end = stop if end <= start else end
        if taken is None or all(end <= a or start >= b for a, b in taken):
            break
    if taken is not None:
        taken.append((start, end))
    return text[start:end].strip(), {"start": start}


def problem_text(problem: w.Chain, mode: str) -> str:
    """One worksheet problem: 'Q: 3+5-2' then the answer, with worked steps or calculator calls before it."""
    if mode == "direct":
        return f"Q: {problem.expression}\nA: {problem.answer}"
    if mode == "worked":
        return f"Q: {problem.expression}\nW: " + ", ".join(f"{s}={v}" for s, v in problem.steps) + \
            f"\nA: {problem.answer}"
    if mode == "calculator":
        return f"Q: {problem.expression}\nW: " + ", ".join(f"<<{s}={v}>>" for s, v in problem.steps) + \
            f"\nA: {problem.answer}"
    raise ValueError(f"mode must be one of {ARITHMETIC_MODES}, got {mode!r}")


def arithmetic_page(rng: random.Random) -> tuple[str, dict]:
    mode = rng.choices(ARITHMETIC_MODES, weights=[4, 4, 2])[0]
    if mode == "calculator":
        problems = [w.calculator_chain(rng, rng.randint(1, 2)) for _ in range(rng.randint(3, 6))]
    else:
        problems = [w.chain(rng, rng.randint(2, 6)) for _ in range(rng.randint(4, 8))]
    body = "\n\n".join(problem_text(p, mode) for p in problems)
    return f"Worksheet {rng.randint(1, 99)}\n\n{body}", {
        "mode": mode, "expressions": [p.expression for p in problems], "answers": [p.answer for p in problems]}


def review_page(rng: random.Random) -> tuple[str, dict]:
    category = rng.choice(sorted(w.CATEGORIES))
    text, sentiment = w.review(rng, category)
    stars = rng.choice((4, 5)) if sentiment > 0 else rng.choice((1, 2))
    return (f"Review of {w.make_name(rng, 1)} ({category})\n{text}\nRating: {stars} stars",
            {"sentiment": sentiment, "stars": stars})


def listing_page(rng: random.Random) -> tuple[str, dict]:
    """Several reviews in one repeated format with one pair of label words."""
    pair, fmt = rng.choice(LABEL_PAIRS), rng.choice(LISTING_FORMATS)
    rows, sentiments = [], []
    for _ in range(rng.randint(4, 8)):
        text, sentiment = w.review(rng, sentences=(1, 2))
        sentiments.append(sentiment)
        rows.append(fmt.format(review=text, label=pair[0] if sentiment > 0 else pair[1]))
    return "\n".join(rows), {"labels": list(pair), "format": fmt, "sentiments": sentiments}


FACT_SENTENCES = {  # relation -> ways the web states it ({name}, {value})
    "born_in": ("{name} was born in {value}.", "{name} is from {value}.", "The birthplace of {name} is {value}."),
    "year": ("{name} was born in the year {value}.", "{name}'s year of birth is {value}."),
    "job": ("{name} worked as a {value}.", "By trade, {name} was a {value}.", "{name}'s job was {value}."),
    "mother": ("{name}'s mother is {value}.", "The mother of {name} is {value}."),
}
FACT_QUESTIONS = {  # relation -> the question of a qa page (the forward direction only)
    "born_in": "Where was {name} born?", "year": "In what year was {name} born?",
    "job": "What was {name}'s job?", "mother": "Who is {name}'s mother?"}


def fact_sentence(rng: random.Random, person: w.Person, relation: str) -> str:
    return rng.choice(FACT_SENTENCES[relation]).format(name=person.name, value=getattr(person, relation))


def encyclopedia_page(rng: random.Random, world: w.World) -> tuple[str, dict]:
    person = world.people[rng.choice(world.public)]
    relations = rng.sample(w.RELATIONS, rng.randint(2, len(w.RELATIONS)))  # pages about one person differ
    return (f"{person.name}\n" + " ".join(fact_sentence(rng, person, r) for r in relations),
            {"person": person.name, "relations": relations})


def qa_page(rng: random.Random, world: w.World) -> tuple[str, dict]:
    asked = []
    for _ in range(rng.randint(3, 6)):
        person, relation = world.people[rng.choice(world.public)], rng.choice(w.RELATIONS)
        asked.append((person.name, relation, f"Q: {FACT_QUESTIONS[relation].format(name=person.name)}\n"
                                             f"A: {getattr(person, relation)}"))
    return "\n\n".join(text for *_, text in asked), {"asked": [[n, r] for n, r, _ in asked]}


def comprehension_page(rng: random.Random, world: w.World) -> tuple[str, dict]:
    """A passage about a fresh person (not in the fact table), then questions answered from the passage."""
    name = w.make_name(rng)
    person = w.Person(name, rng.choice(world.cities), rng.randint(1700, 1999), rng.choice(w.JOBS), w.make_name(rng))
    passage = " ".join(fact_sentence(rng, person, r) for r in rng.sample(w.RELATIONS, len(w.RELATIONS)))
    relations = rng.sample(w.RELATIONS, rng.randint(2, 3))
    questions = "\n".join(f"Q: {FACT_QUESTIONS[r].format(name=name)}\nA: {getattr(person, r)}" for r in relations)
    return f"Passage: {passage}\n\n{questions}", {"person": vars(person), "relations": relations}


PUZZLE_TEXT = {"reverse": "Reverse the word {word}.", "upper": "Write {word} in capital letters.",
               "count": "How many times does the letter {letter} appear in {word}?",
               "sort": "Sort the letters of {word}."}


def puzzle_page(rng: random.Random) -> tuple[str, dict]:
    puzzles = [w.puzzle(rng) for _ in range(rng.randint(3, 6))]
    body = "\n\n".join(f"Q: {PUZZLE_TEXT[p['kind']].format(**p)}\nA: {p['answer']}" for p in puzzles)
    return f"Puzzles\n\n{body}", {"puzzles": puzzles}


# --- the crawl: HTML boilerplate and junk -------------------------------------------------------------------

NAV = ("Home", "About", "Blog", "Shop", "Contact", "News", "Forum", "Login", "Help", "Archive")
COOKIES = ("We use cookies to improve your experience. Accept all cookies?",
           "This site uses cookies. By continuing you agree to our cookie policy.",
           "Cookies help us deliver our services. Manage your preferences.")
FOOTERS = ("Copyright 2024 | Privacy | Terms of use", "All rights reserved. Sitemap | Careers | Press",
           "Follow us on social media | Subscribe to our newsletter")
SPAM = ("buy", "cheap", "pills", "free", "offer", "click", "now", "best", "price", "deal", "discount", "casino",
        "win", "cash", "bonus", "online")
SCRIPTS = ((0x3B1, 0x3C9), (0x430, 0x44F), (0x4E00, 0x4FFF))  # Greek, Cyrillic, CJK letters


def to_html(rng: random.Random, text: str, title: str) -> str:
    """``text`` as an HTML page: blocks (split on blank lines) become <p>, lines <br>, around them a menu, a
    cookie banner and a footer. ``helpers.cleaning.html_to_text`` gets ``text`` back."""
    nav = " ".join(f'<a href="/{item.lower()}">{item}</a>' for item in rng.sample(NAV, 4))
    blocks = "".join("<p>" + "<br>".join(html.escape(line) for line in block.split("\n")) + "</p>"
                     for block in text.split("\n\n"))
    return (f"<html><head><title>{html.escape(title)}</title></head><body><nav>{nav}</nav>"
            f'<div class="cookie-banner">{rng.choice(COOKIES)}</div><main>{blocks}</main>'
            f"<footer>{rng.choice(FOOTERS)}</footer></body></html>")


def near_duplicate(rng: random.Random, text: str) -> tuple[str, int]:
    """``text`` with 1-3 words replaced (line breaks kept): the copy a mirror site or a scraper leaves behind."""
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    changes = min(len(spans), rng.randint(1, 3))
    for start, end in sorted(rng.sample(spans, changes), reverse=True):
        text = text[:start] + rng.choice([word for word in w.WORDS if word != text[start:end]]) + text[end:]
    return text, changes


def spam_page(rng: random.Random) -> str:
    keywords = rng.sample(SPAM, 5)
    lines = [" ".join(rng.choice(keywords).upper() if rng.random() < 0.2 else rng.choice(keywords)
                      for _ in range(rng.randint(6, 14))) + rng.choice(("!!!", "!", " $$$", "")) for _ in
             range(rng.randint(4, 10))]
    return "\n".join(lines)


def gibberish_page(rng: random.Random) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(rng.randint(40, 150))]
    return " ".join(words)


def foreign_page(rng: random.Random) -> str:
    low, high = rng.choice(SCRIPTS)
    words = ["".join(chr(rng.randint(low, high)) for _ in range(rng.randint(2, 8)))
             for _ in range(rng.randint(30, 120))]
    return " ".join(words) + "."


def _good_page(rng: random.Random, kind: str, world: w.World, shakespeare: str | None,
               taken: list) -> tuple[str, dict]:
    if kind == "shakespeare":
        return shakespeare_page(rng, shakespeare, taken)
    if kind in ("encyclopedia", "qa", "comprehension"):
        return globals()[f"{kind}_page"](rng, world)
    return globals()[f"{kind}_page"](rng)


def generate(config: WebConfig, shakespeare: str | None = None) -> list[Document]:
    """The raw crawl of ``config``: good pages (a share as HTML) and junk, in crawl order, ids 0..n-1.

    ``shakespeare`` is the text of Tiny Shakespeare (read with ``helpers.data.load_text`` when None and the mix
    asks for it). A duplicate always comes later in the crawl than its original (truth["duplicate_of"])."""
    if not isinstance(config, WebConfig):
        raise TypeError(f"config must be a WebConfig (e.g. miniweb.SIZES['cpu']), got {type(config).__name__}")
    if shakespeare is None and any(k == "shakespeare" and share > 0 for k, share in config.mix):
        from helpers import data

        shakespeare = data.load_text("tinyshakespeare")
    rng, world = random.Random(f"web-{config.seed}"), config.world()
    kinds, weights = zip(*config.mix)
    pages, taken = [], []  # (sort key, kind, text, truth); spans of Shakespeare already used
    for kind in rng.choices(kinds, weights, k=config.pages):
        text, truth = _good_page(rng, kind, world, shakespeare, taken)
        truth = {**truth, "html": rng.random() < config.html_share}
        if truth["html"]:
            text, truth = to_html(rng, text, text.split("\n")[0][:60]), {**truth, "plain": text}
        pages.append((rng.random(), kind, text, truth))
    good = list(pages)
    long_pages = [page for page in good if len(page[3].get("plain", page[2]).split()) >= 40] or good
    for kind, rate in config.junk:
        for _ in range(round(rate * config.pages)):
            if kind in ("duplicate", "near_duplicate"):
                key, _, text, truth = rng.choice(good if kind == "duplicate" else long_pages)
                later = key + (1 - key) * rng.random()
                if kind == "duplicate":
                    html_truth = {"html": True, "plain": truth["plain"]} if "plain" in truth else {}
                    pages.append((later, kind, text, {"duplicate_of": key, "junk": True, **html_truth}))
                else:
                    copy, changes = near_duplicate(rng, truth.get("plain", text))
                    pages.append((later, kind, copy, {"duplicate_of": key, "changed_words": changes, "junk": True}))
            else:
                pages.append((rng.random(), kind, globals()[f"{kind}_page"](rng), {"junk": True}))
    pages.sort(key=lambda page: page[0])
    ids = {key: i for i, (key, *_rest) in enumerate(pages) if _rest[0] in GOOD_KINDS}
    return [Document(i, kind, text, {**truth, "duplicate_of": ids[truth["duplicate_of"]]} if "duplicate_of" in truth
                     else truth) for i, (_, kind, text, truth) in enumerate(pages)]


def clean_text(doc: Document) -> str:
    """The page's content without HTML (from the truth: what a perfect cleaner would return)."""
    return doc.truth.get("plain", doc.text)
