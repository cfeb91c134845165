import re

import pytest

from conftest import evaluate
from helpers import tasks
from helpers import world as w
from helpers.miniweb import FACT_QUESTIONS, FACT_SENTENCES

WORLD = w.World(5, people=30, heldout=10, cities=6)
VALUE = {"born_in": r"([A-Z][a-z]+)", "year": r"(\d{4})", "job": r"([a-z]+)",  # how each relation's value looks
         "mother": r"([A-Z][a-z]+ [A-Z][a-z]+)"}



def asked_name(question: str, relation: str) -> str:
    prefix, suffix = FACT_QUESTIONS[relation].split("{name}")
    assert question.startswith(prefix) and question.endswith(suffix)
    return question[len(prefix):len(question) - len(suffix)]


def expected_answer(example: tasks.Example) -> str:
    """The answer worked out again from the instance, without the module's own solver."""
    truth = example.truth
    if example.family == "sentiment":
        sentences = re.findall(r"The \w+ was (?:(\w+) )?(\w+)\.", truth["review"])
        score = sum(w.sentiment_of(adjective, modifier) for modifier, adjective in sentences)
        assert score != 0 and truth["sentiment"] == (1 if score > 0 else -1)
        return "positive" if score > 0 else "negative"
    if example.family == "arithmetic":
        assert 2 <= len(re.findall(r"\d+", truth["expression"])) <= 4
        return str(evaluate(truth["expression"]))
    if example.family == "facts":
        assert asked_name(truth["question"], truth["relation"]) == truth["person"]
        return str(getattr(WORLD.people[truth["person"]], truth["relation"]))
    if example.family == "comprehension":
        name = asked_name(truth["question"], truth["relation"])
        stated = [value for t in FACT_SENTENCES[truth["relation"]]
                  for value in re.findall(re.escape(t).replace(r"\{name\}", re.escape(name))
                                          .replace(r"\{value\}", VALUE[truth["relation"]]), truth["passage"])]
        [value] = set(stated)
        return value
    word, letter = truth["word"], truth["letter"]
    return {"reverse": "".join(word[i] for i in range(len(word) - 1, -1, -1)), "upper": word.upper(),
            "count": str(sum(c == letter for c in word)), "sort": "".join(sorted(word))}[example.family]


@pytest.mark.parametrize("family", tasks.FAMILIES)
@pytest.mark.parametrize("split", tasks.SPLITS)
def test_examples_use_the_split_phrasings_and_right_answers(family, split):
    count = len(tasks.PHRASINGS[family])
    allowed = {"train": set(range(count - 1)), "heldout": {count - 1}, "all": set(range(count))}[split]
    examples = tasks.make_examples(family, 40, seed=1, split=split, world=WORLD)
    assert len(examples) == 40 and {ex.phrasing for ex in examples} == allowed
    for ex in examples:
        assert ex.family == family
        assert ex.prompt == tasks.PHRASINGS[family][ex.phrasing].format(**ex.truth)
        assert ex.answer == expected_answer(ex), ex


def test_known_prompts():
    assert tasks.PHRASINGS["arithmetic"][0].format(expression="3+4") == "What is 3+4?"
    [ex] = tasks.make_examples("upper", 1, split="heldout", world=WORLD)
    assert ex.prompt == f"Shout the word {ex.truth['word']}." and ex.answer == ex.truth["word"].upper()


def test_same_seed_same_examples_other_seed_differs():
    for family in tasks.FAMILIES:
        first = tasks.make_examples(family, 20, seed=3, world=WORLD)
        assert first == tasks.make_examples(family, 20, seed=3, world=WORLD)
        assert first != tasks.make_examples(family, 20, seed=4, world=WORLD)
    assert tasks.make_examples("facts", 5) == tasks.make_examples("facts", 5, world=w.World())


def test_facts_ask_only_about_public_people():
    examples = tasks.make_examples("facts", 200, split="all", world=WORLD)
    assert {ex.truth["person"] for ex in examples} <= set(WORLD.public)
    assert {ex.truth["relation"] for ex in examples} == set(w.RELATIONS)
    assert not any(name in ex.prompt for ex in examples for name in WORLD.heldout)


def test_comprehension_answers_are_in_the_passage():
    for ex in tasks.make_examples("comprehension", 50, world=WORLD):
        assert ex.answer in ex.truth["passage"] and ex.truth["passage"] in ex.prompt
        assert asked_name(ex.truth["question"], ex.truth["relation"]) not in WORLD.people  # a fresh person


def test_heldout_family_is_a_family():
    assert tasks.HELDOUT_FAMILY in tasks.FAMILIES and tasks.FAMILIES == tuple(tasks.PHRASINGS)
    assert all(len(phrasings) >= 3 for phrasings in tasks.PHRASINGS.values())
    assert all(len(set(phrasings)) == len(phrasings) for phrasings in tasks.PHRASINGS.values())


@pytest.mark.parametrize("family", tasks.FAMILIES)
def test_grade_accepts_the_answer_and_rejects_a_wrong_one(family):
    for ex in tasks.make_examples(family, 10, world=WORLD):
        assert tasks.grade(ex, ex.answer)
        assert tasks.grade(ex, f" {ex.answer}.\nmore text")
        assert tasks.grade(ex, f"{ex.answer}  \n\n{ex.answer}x")
        assert not tasks.grade(ex, ex.answer + "x")
        assert not tasks.grade(ex, f"x\n{ex.answer}")
        assert not tasks.grade(ex, "")


def test_grade_cares_about_case_only_for_upper_case():
    upper = tasks.Example("upper", "Write lamp in capital letters.", "LAMP", 0)
    assert tasks.grade(upper, "LAMP") and not tasks.grade(upper, "lamp") and not tasks.grade(upper, "Lamp")
    sentiment = tasks.Example("sentiment", "...", "positive", 0)
    assert tasks.grade(sentiment, "Positive.") and tasks.grade(sentiment, "POSITIVE")
    assert not tasks.grade(sentiment, "negative")
    arithmetic = tasks.Example("arithmetic", "What is 2-5?", "-3", 0)
    assert tasks.grade(arithmetic, "-3.") and not tasks.grade(arithmetic, "3")


@pytest.mark.parametrize("output, answer", [
    ("42", "42"), ("  42.  ", "42"), ("42.\nBecause 40+2.", "42"), ("\n\n Paris \nLondon", "Paris"),
    ("", ""), ("3.5.", "3.5")])
def test_normalise_answer_by_hand(output, answer):
    assert tasks.normalise_answer(output) == answer


def test_zero_examples():
    assert tasks.make_examples("sort", 0, world=WORLD) == []


@pytest.mark.parametrize("kwargs, error, name", [
    ({"family": "poetry", "n": 1}, ValueError, "family"), ({"family": "sort", "n": 1, "split": "test"}, ValueError,
                                                            "split"),
    ({"family": "sort", "n": -1}, ValueError, "n must"), ({"family": "sort", "n": 2.0}, ValueError, "n must"),
    ({"family": "sort", "n": True}, ValueError, "n must")])
def test_make_examples_rejects_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        tasks.make_examples(**kwargs)


def test_grade_and_normalise_reject_a_non_str():
    example = tasks.make_examples("arithmetic", 1, world=WORLD)[0]
    with pytest.raises(TypeError, match="output must be a str"):
        tasks.grade(example, 42)
    with pytest.raises(TypeError, match="output must be a str"):
        tasks.normalise_answer(None)
