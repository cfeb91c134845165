import collections
import dataclasses
import html
import random
import re
import subprocess
import sys

import pytest

from conftest import evaluate, has_data
from helpers import miniweb as m
from helpers import world as w

SPEAKERS = ("ALDO", "BRIGIT", "CORIN", "DESDA")


def fake_shakespeare(paragraphs: int = 60) -> str:
    """Blank-line separated speeches with numbered lines (every line is unique), about 7,000 characters."""
    speeches = []
    for i in range(paragraphs):
        lines = [f"line {i}.{j} of the speech, said slowly and with care" for j in range(1 + i % 4)]
        speeches.append(f"{SPEAKERS[i % 4]}:\n" + "\n".join(lines))
    return "\n\n".join(speeches) + "\n"


SHAKESPEARE = fake_shakespeare()
CONFIG = m.WebConfig(seed=1, pages=400, people=40, heldout_people=8, cities=8)


@pytest.fixture(scope="module")
def crawl():
    return m.generate(CONFIG, shakespeare=SHAKESPEARE)


def of_kind(docs, kind):
    return [doc for doc in docs if doc.kind == kind]



def template_regex(template: str, **groups: str) -> re.Pattern:
    """A format string such as '{name} is from {value}.' as a regex with one named group per field."""
    pattern = re.escape(template)
    for name, group in groups.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{group})", 1)
    return re.compile(pattern)


def review_score(text: str) -> int:
    sentences = re.findall(r"The \w+ was (?:(\w+) )?(\w+)\.", text)
    assert sentences
    return sum(w.sentiment_of(adjective, modifier) for modifier, adjective in sentences)


# --- the crawl as a whole -----------------------------------------------------------------------------------

def test_same_config_same_crawl_other_seed_differs(crawl):
    again = m.generate(CONFIG, shakespeare=SHAKESPEARE)
    assert [(d.id, d.kind, d.text, d.truth) for d in again] == [(d.id, d.kind, d.text, d.truth) for d in crawl]
    other = m.generate(dataclasses.replace(CONFIG, seed=2), shakespeare=SHAKESPEARE)
    assert [d.text for d in other] != [d.text for d in crawl]
    assert CONFIG.world().people == CONFIG.world().people
    assert dataclasses.replace(CONFIG, seed=2).world().people != CONFIG.world().people


def test_crawl_does_not_depend_on_the_hash_seed():
    code = ("import hashlib; from helpers import miniweb as m; "
            "docs = m.generate(m.SIZES['smoke'], shakespeare='A:\\nx y\\n\\n' * 600); "
            "print(hashlib.sha256(repr([(d.kind, d.text, d.truth) for d in docs]).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(digests) == 1


def test_ids_kinds_and_junk_labels(crawl):
    assert [doc.id for doc in crawl] == list(range(len(crawl)))
    assert {doc.kind for doc in crawl} == set(m.GOOD_KINDS + m.JUNK_KINDS)
    for doc in crawl:
        assert doc.truth.get("junk", False) is (doc.kind in m.JUNK_KINDS)
        assert isinstance(doc.text, str) and doc.text.strip()
        if doc.kind in m.GOOD_KINDS:
            assert isinstance(doc.truth["html"], bool)


def test_shares_follow_the_config(crawl):
    counts = collections.Counter(doc.kind for doc in crawl)
    assert sum(counts[kind] for kind in m.GOOD_KINDS) == CONFIG.pages
    for kind, share in CONFIG.mix:
        expected = share * CONFIG.pages
        assert abs(counts[kind] - expected) < 4 * expected ** 0.5 + 2, kind
    for kind, rate in CONFIG.junk:
        assert counts[kind] == round(rate * CONFIG.pages), kind
    served = sum(doc.truth.get("html", False) for doc in crawl)
    assert 0.2 < served / CONFIG.pages < 0.4
    assert not any(doc.truth.get("html") for doc in m.generate(dataclasses.replace(CONFIG, html_share=0.0),
                                                               shakespeare=SHAKESPEARE))


def test_mix_can_leave_kinds_out():
    config = m.WebConfig(pages=30, mix=(("puzzle", 1.0), ("qa", 0.0)), junk=(), people=10, heldout_people=2)
    docs = m.generate(config)  # no shakespeare in the mix: nothing to load
    assert {doc.kind for doc in docs} == {"puzzle"} and len(docs) == 30


# --- every page states the truth ----------------------------------------------------------------------------

def test_reviews_agree_with_their_stars_and_words(crawl):
    for doc in of_kind(crawl, "review"):
        title, body, rating = m.clean_text(doc).split("\n")
        category = re.fullmatch(r"Review of [A-Z][a-z]+ \((\w+)\)", title).group(1)
        assert category in w.CATEGORIES
        stars = int(re.fullmatch(r"Rating: (\d) stars", rating).group(1))
        assert stars == doc.truth["stars"] and (stars >= 4) == (doc.truth["sentiment"] > 0)
        assert doc.truth["sentiment"] == (1 if review_score(body) > 0 else -1)


def test_listing_labels_match_sentiments(crawl):
    formats = set()
    for doc in of_kind(crawl, "listing"):
        fmt, (positive, negative) = doc.truth["format"], doc.truth["labels"]
        formats.add(fmt)
        assert fmt in m.LISTING_FORMATS and (positive, negative) in m.LABEL_PAIRS
        lines, per_row = m.clean_text(doc).split("\n"), fmt.count("\n") + 1
        assert len(lines) == per_row * len(doc.truth["sentiments"])
        row_regex = template_regex(fmt, review=r".+?", label=r"\w+")
        for k, sentiment in enumerate(doc.truth["sentiments"]):
            row = row_regex.fullmatch("\n".join(lines[k * per_row:(k + 1) * per_row]))
            assert sentiment == (1 if review_score(row["review"]) > 0 else -1)
            assert row["label"] == (positive if sentiment > 0 else negative)
    assert formats == set(m.LISTING_FORMATS)


def parse_step(step: str) -> tuple[int, str, int, int]:
    left, op, right, value = re.fullmatch(r"(-?\d+)([-+*])(\d+)=(-?\d+)", step).groups()
    return int(left), op, int(right), int(value)


def check_problem(block: str, mode: str) -> tuple[str, int]:
    """Check one worksheet problem against an independent evaluation; return (expression, answer)."""
    lines = block.split("\n")
    expression, answer = lines[0].removeprefix("Q: "), int(lines[-1].removeprefix("A: "))
    assert lines[0].startswith("Q: ") and lines[-1].startswith("A: ") and answer == evaluate(expression)
    if mode == "direct":
        assert len(lines) == 2
        return expression, answer
    assert len(lines) == 3 and lines[1].startswith("W: ")
    steps = lines[1].removeprefix("W: ").split(", ")
    if mode == "calculator":
        assert all(s.startswith("<<") and s.endswith(">>") for s in steps)
        steps = [s[2:-2] for s in steps]
    tokens = re.findall(r"\d+|[-+*]", expression)
    value = int(tokens[0])
    for step, op, number in zip(steps, tokens[1::2], tokens[2::2], strict=True):
        left, step_op, right, result = parse_step(step)
        assert (left, step_op, right) == (value, op, int(number))
        value = left + right if op == "+" else left - right if op == "-" else left * right
        assert result == value
    assert value == answer
    return expression, answer


def test_arithmetic_answers_and_steps_are_right(crawl):
    modes = set()
    for doc in of_kind(crawl, "arithmetic"):
        blocks = m.clean_text(doc).split("\n\n")
        assert re.fullmatch(r"Worksheet \d+", blocks[0])
        checked = [check_problem(block, doc.truth["mode"]) for block in blocks[1:]]
        assert [e for e, _ in checked] == doc.truth["expressions"] and [a for _, a in checked] == doc.truth["answers"]
        modes.add(doc.truth["mode"])
    assert modes == set(m.ARITHMETIC_MODES)


def test_problem_text_by_hand():
    problem = w.Chain("3+5-2", (("3+5", 8), ("8-2", 6)), 6)
    assert m.problem_text(problem, "direct") == "Q: 3+5-2\nA: 6"
    assert m.problem_text(problem, "worked") == "Q: 3+5-2\nW: 3+5=8, 8-2=6\nA: 6"
    assert m.problem_text(problem, "calculator") == "Q: 3+5-2\nW: <<3+5=8>>, <<8-2=6>>\nA: 6"
    with pytest.raises(ValueError, match="mode"):
        m.problem_text(problem, "guess")


FACT_REGEXES = [(relation, template_regex(t, name=r"[A-Z][a-z]+ [A-Z][a-z]+", value=r".+"))
                for relation, templates in m.FACT_SENTENCES.items() for t in templates]
QUESTION_REGEXES = {relation: template_regex(q, name=r"[A-Z][a-z]+ [A-Z][a-z]+")
                    for relation, q in m.FACT_QUESTIONS.items()}


def is_true(sentence: str, people: dict) -> bool:
    """Whether some way of reading ``sentence`` states a fact of ``people``."""
    for relation, regex in FACT_REGEXES:
        match = regex.fullmatch(sentence)
        if match and match["name"] in people and str(getattr(people[match["name"]], relation)) == match["value"]:
            return True
    return False


def test_encyclopedia_pages_state_true_facts_of_public_people(crawl):
    world = CONFIG.world()
    for doc in of_kind(crawl, "encyclopedia"):
        name, body = m.clean_text(doc).split("\n")
        assert name == doc.truth["person"] and name in world.public
        sentences = re.split(r"(?<=\.) ", body)
        assert len(sentences) == len(doc.truth["relations"]) >= 2 and set(doc.truth["relations"]) <= set(w.RELATIONS)
        assert all(sentence.startswith(name) or name in sentence for sentence in sentences)
        assert all(is_true(sentence, world.people) for sentence in sentences), body


def ask(question: str) -> tuple[str, str]:
    """(name, relation) of a fact question."""
    matches = [(regex.fullmatch(question), relation) for relation, regex in QUESTION_REGEXES.items()]
    [(match, relation)] = [(match, relation) for match, relation in matches if match]
    return match["name"], relation


def test_qa_pages_answer_truly_about_public_people(crawl):
    world = CONFIG.world()
    for doc in of_kind(crawl, "qa"):
        asked = []
        for block in m.clean_text(doc).split("\n\n"):
            question, answer = block.removeprefix("Q: ").split("\nA: ")
            name, relation = ask(question)
            assert name in world.public and answer == str(getattr(world.people[name], relation))
            asked.append([name, relation])
        assert asked == doc.truth["asked"]


def test_comprehension_answers_come_from_the_passage(crawl):
    world = CONFIG.world()
    for doc in of_kind(crawl, "comprehension"):
        passage, questions = m.clean_text(doc).split("\n\n")
        passage = passage.removeprefix("Passage: ")
        person = doc.truth["person"]
        assert person["name"] not in world.people
        fresh = {person["name"]: w.Person(**person)}
        assert all(is_true(sentence, fresh) for sentence in re.split(r"(?<=\.) ", passage))
        pairs = re.findall(r"Q: (.+)\nA: (.+)", questions)
        assert len(pairs) == len(doc.truth["relations"])
        for (question, answer), relation in zip(pairs, doc.truth["relations"]):
            assert ask(question) == (person["name"], relation)
            assert answer == str(person[relation]) and answer in passage


def test_puzzle_answers_are_right(crawl):
    questions = {kind: template_regex(t, word=r"[a-z]+", letter=r"[a-z]") for kind, t in m.PUZZLE_TEXT.items()}
    for doc in of_kind(crawl, "puzzle"):
        title, *blocks = m.clean_text(doc).split("\n\n")
        assert title == "Puzzles" and len(blocks) == len(doc.truth["puzzles"])
        for block, puzzle in zip(blocks, doc.truth["puzzles"]):
            question, answer = block.removeprefix("Q: ").split("\nA: ")
            [(kind, match)] = [(k, r.fullmatch(question)) for k, r in questions.items() if r.fullmatch(question)]
            word = match["word"]
            expected = {"reverse": "".join(reversed(word)), "upper": word.upper(), "sort": "".join(sorted(word)),
                        "count": str(sum(c == (match.groupdict().get("letter") or "") for c in word))}[kind]
            assert answer == expected == puzzle["answer"] and (kind, word) == (puzzle["kind"], puzzle["word"])


# --- what the web never says --------------------------------------------------------------------------------

def test_heldout_people_never_appear(crawl):
    heldout = CONFIG.world().heldout
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, heldout)) + r")\b")
    assert [(doc.id, doc.kind) for doc in crawl if pattern.search(doc.text)] == []


def test_heldout_people_are_never_the_subject_of_a_page(crawl):
    heldout = set(CONFIG.world().heldout)
    for doc in crawl:
        if doc.kind == "encyclopedia":
            assert doc.truth["person"] not in heldout
        if doc.kind == "qa":
            assert not {name for name, _ in doc.truth["asked"]} & heldout


def test_reverse_relation_is_never_written(crawl):
    reverse = re.compile(r"'s child|\b(son|sons|daughter|daughters|children|child)\b", re.IGNORECASE)
    for doc in crawl:
        if doc.kind not in ("shakespeare", "gibberish"):  # the plays, or random letters, may say 'son'
            assert not reverse.search(doc.text), (doc.kind, doc.text)


def test_heldout_label_words_never_label_a_listing(crawl):
    heldout_words = {word for pair in m.HELDOUT_LABEL_PAIRS for word in pair}
    assert not heldout_words & {word for pair in m.LABEL_PAIRS for word in pair}
    for doc in of_kind(crawl, "listing"):
        assert not heldout_words & set(doc.truth["labels"])
        assert not heldout_words & set(re.findall(r"(?:=> |Sentiment: |Output: )(\w+)$", m.clean_text(doc), re.M))


# --- junk ---------------------------------------------------------------------------------------------------

def test_duplicates_come_later_and_copy_their_original(crawl):
    for doc in of_kind(crawl, "duplicate"):
        original = crawl[doc.truth["duplicate_of"]]
        assert original.id < doc.id and original.kind in m.GOOD_KINDS and doc.text == original.text


def test_duplicates_of_html_pages_clean_to_the_original_content():
    docs = m.generate(dataclasses.replace(CONFIG, pages=60, html_share=1.0), shakespeare=SHAKESPEARE)
    for doc in of_kind(docs, "duplicate"):
        assert m.clean_text(doc) == m.clean_text(docs[doc.truth["duplicate_of"]])


def test_near_duplicates_change_one_to_three_words(crawl):
    for doc in of_kind(crawl, "near_duplicate"):
        original = crawl[doc.truth["duplicate_of"]]
        assert original.id < doc.id and original.kind in m.GOOD_KINDS and 1 <= doc.truth["changed_words"] <= 3
        before, after = m.clean_text(original), doc.text
        assert [len(line.split()) for line in before.split("\n")] == [len(line.split()) for line in after.split("\n")]
        changed = sum(a != b for a, b in zip(before.split(), after.split()))
        assert 1 <= changed <= doc.truth["changed_words"]
        assert len(before.split()) >= 40


def test_near_duplicate_always_changes_the_text():
    for seed in range(200):
        assert m.near_duplicate(random.Random(seed), "lamp")[0] != "lamp"


def test_near_duplicate_keeps_lines_and_word_count():
    text = "one two three\nfour five\n\nsix seven eight nine"
    for seed in range(50):
        copy, changes = m.near_duplicate(random.Random(seed), text)
        assert 1 <= changes <= 3 and [len(x.split()) for x in copy.split("\n")] == [3, 2, 0, 4]
        assert sum(a != b for a, b in zip(text.split(), copy.split())) <= changes


def test_junk_pages_look_like_junk(crawl):
    for doc in of_kind(crawl, "spam"):
        assert set(re.findall(r"[a-z]+", doc.text.lower())) <= set(m.SPAM)
    for doc in of_kind(crawl, "gibberish"):
        assert re.fullmatch(r"[a-z]+( [a-z]+)*", doc.text)
    for doc in of_kind(crawl, "foreign"):
        assert doc.text.endswith(".") and not re.search(r"[A-Za-z]", doc.text)
        assert any(low <= ord(doc.text[0]) <= high for low, high in m.SCRIPTS)


# --- HTML ---------------------------------------------------------------------------------------------------

def test_html_pages_keep_their_content_escaped(crawl):
    served = [doc for doc in crawl if doc.truth.get("html")]
    assert {doc.kind for doc in served} - {"duplicate"} == set(m.GOOD_KINDS)  # an exact copy keeps the HTML
    for doc in served:
        assert doc.text.startswith("<html>") and doc.text.endswith("</html>") and "<nav>" in doc.text
        for line in doc.truth["plain"].split("\n"):
            assert html.escape(line) in doc.text
    calculators = [doc for doc in served if doc.kind == "arithmetic" and doc.truth["mode"] == "calculator"]
    assert calculators and all("<<" not in doc.text and "&lt;&lt;" in doc.text for doc in calculators)
    assert all("plain" not in doc.truth for doc in crawl if not doc.truth.get("html"))


def test_to_html_by_hand():
    page = m.to_html(random.Random(0), "Q: 2*3\nW: <<2*3=6>>\n\nA & B", "Q: <x>")
    assert "<title>Q: &lt;x&gt;</title>" in page
    assert "<main><p>Q: 2*3<br>W: &lt;&lt;2*3=6&gt;&gt;</p><p>A &amp; B</p></main>" in page


def test_html_to_text_recovers_every_page(crawl):
    cleaning = pytest.importorskip("helpers.cleaning", reason="helpers/cleaning.py is not written yet")
    if not hasattr(cleaning, "html_to_text"):
        pytest.skip("helpers.cleaning has no html_to_text yet")
    served = [doc for doc in crawl if doc.truth.get("html")]
    assert served and all(cleaning.html_to_text(doc.text) == doc.truth["plain"] for doc in served)


# --- shakespeare --------------------------------------------------------------------------------------------

def test_shakespeare_passages_come_from_the_first_90_percent(crawl):
    limit = int(len(SHAKESPEARE) * 0.9)
    passages = [m.clean_text(doc) for doc in of_kind(crawl, "shakespeare")]
    assert passages
    for passage, doc in zip(passages, of_kind(crawl, "shakespeare")):
        assert passage in SHAKESPEARE[:limit] and SHAKESPEARE[doc.truth["start"]:].startswith(passage)


def test_shakespeare_passages_start_at_a_line():
    for seed in range(200):
        passage, truth = m.shakespeare_page(random.Random(seed), SHAKESPEARE)
        assert SHAKESPEARE[truth["start"]:].startswith(passage)
        assert truth["start"] == 0 or SHAKESPEARE[truth["start"] - 1] == "\n"


def test_shakespeare_passages_stay_in_the_first_90_percent_with_long_lines():
    text = "\n\n".join("word " * 250 + f"\nend {i}" for i in range(40))  # every speech opens with a long line
    limit = int(len(text) * 0.9)
    for seed in range(20):
        passage, _ = m.shakespeare_page(random.Random(seed), text)
        assert passage in text[:limit]


def test_short_shakespeare_text_is_a_clear_error():
    with pytest.raises(ValueError, match="shakespeare|text"):
        m.generate(m.WebConfig(pages=5, mix=(("shakespeare", 1.0),), people=4, heldout_people=1),
                   shakespeare="A:\nshort\n\n" * 100)


@pytest.mark.skipif(not has_data("tinyshakespeare"), reason="Tiny Shakespeare is not available offline")
def test_real_shakespeare_stays_in_the_first_90_percent():
    from helpers import data

    text = data.load_text("tinyshakespeare")
    limit = int(len(text) * 0.9)
    config = m.WebConfig(pages=60, mix=(("shakespeare", 1.0),), junk=(), html_share=0.0, people=10, heldout_people=2)
    docs = m.generate(config)  # reads the file itself
    assert len(docs) == 60
    for doc in docs:
        assert doc.text in text[:limit] and text[doc.truth["start"]:].startswith(doc.text)
        assert 0 < len(doc.text) <= 900


# --- bad input ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, name", [
    ({"mix": (("poetry", 1.0),)}, "unknown kinds"), ({"junk": (("spam", 0.1), ("ads", 0.1))}, "unknown kinds"),
    ({"junk": (("review", 0.1),)}, "unknown kinds"), ({"pages": 0}, "pages"), ({"pages": 2.5}, "pages"),
    ({"pages": True}, "pages"), ({"people": 0}, "people"), ({"cities": -1}, "cities"),
    ({"html_share": 2}, "html_share"), ({"html_share": -0.1}, "html_share")])
def test_webconfig_rejects_bad_fields(changes, name):
    with pytest.raises(ValueError, match=name):
        m.WebConfig(**changes)


def test_generate_rejects_a_non_config():
    with pytest.raises(TypeError, match="WebConfig"):
        m.generate({"pages": 10})
    with pytest.raises(ValueError, match="heldout"):
        m.generate(m.WebConfig(pages=5, people=10, heldout_people=10), shakespeare=SHAKESPEARE)


def test_sizes_are_configs_that_grow():
    assert list(m.SIZES) == ["smoke", "cpu", "gpu"]
    pages = [config.pages for config in m.SIZES.values()]
    assert pages == sorted(pages) and all(isinstance(c, m.WebConfig) for c in m.SIZES.values())
