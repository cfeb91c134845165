import random
import re

import pytest

from conftest import evaluate
from helpers import world as w

SENTENCE = re.compile(r"The (\w+) was (?:(\w+) )?(\w+)\.")



def recount(text: str) -> int:
    """The summed polarity of a review, recomputed sentence by sentence."""
    sentences = SENTENCE.findall(text)
    assert " ".join(f"The {a} was {m + ' ' if m else ''}{adj}." for a, m, adj in sentences) == text
    return sum(w.sentiment_of(adjective, modifier) for _, modifier, adjective in sentences)


@pytest.mark.parametrize("adjective, modifier, polarity", [
    ("good", "", 1), ("bad", "", -1), ("good", "not", -1), ("awful", "not", 1), ("lovely", "very", 2),
    ("rude", "extremely", -2), ("superb", "truly", 2), ("cramped", "really", -2)])
def test_sentiment_of_by_hand(adjective, modifier, polarity):
    assert w.sentiment_of(adjective, modifier) == polarity


def test_lexicon_halves_are_disjoint():
    assert not set(w.POSITIVE) & set(w.NEGATIVE)
    assert "not" not in w.INTENSIFIERS


@pytest.mark.parametrize("seed", range(40))
def test_review_sentiment_is_the_sign_of_its_words(seed):
    rng = random.Random(seed)
    category = sorted(w.CATEGORIES)[seed % 3]
    text, sentiment = w.review(rng, category)
    score = recount(text)
    assert score != 0 and sentiment == (1 if score > 0 else -1)
    aspects = [aspect for aspect, _, _ in SENTENCE.findall(text)]
    assert 2 <= len(aspects) <= 4 and len(set(aspects)) == len(aspects)
    assert set(aspects) <= set(w.CATEGORIES[category])


def test_reviews_use_negation_and_intensifiers_and_both_signs():
    reviews = [w.review(random.Random(seed)) for seed in range(200)]
    modifiers = {m for text, _ in reviews for _, m, _ in SENTENCE.findall(text)}
    assert {"", "not"} <= modifiers and modifiers & set(w.INTENSIFIERS)
    assert {sentiment for _, sentiment in reviews} == {-1, 1}


def test_review_and_sentiment_reject_bad_input():
    with pytest.raises(ValueError, match="category"):
        w.review(random.Random(0), "car")
    with pytest.raises(ValueError, match="lexicon"):
        w.sentiment_of("purple")


@pytest.mark.parametrize("operands, ops", [(2, "+-"), (4, "+-"), (6, "+-*"), (3, "*")])
def test_chain_steps_chain_left_to_right(operands, ops):
    for seed in range(30):
        problem = w.chain(random.Random(seed), operands, ops=ops)
        tokens = re.findall(r"\d+|[-+*]", problem.expression)
        assert len(tokens) == 2 * operands - 1 and set(tokens[1::2]) <= set(ops)
        assert all(0 <= int(t) <= 9 for t in tokens[::2])
        assert problem.answer == evaluate(problem.expression)
        value = int(tokens[0])
        for (step, result), op, number in zip(problem.steps, tokens[1::2], tokens[2::2], strict=True):
            assert step == f"{value}{op}{number}" and result == evaluate_step(step)
            value = result
        assert value == problem.answer


def evaluate_step(step: str) -> int:
    left, op, right = re.fullmatch(r"(-?\d+)([-+*])(\d+)", step).groups()
    return int(left) + int(right) if op == "+" else int(left) - int(right) if op == "-" else int(left) * int(right)


def test_chain_known_answer():
    chain = w.Chain("3+5-2", (("3+5", 8), ("8-2", 6)), 6)
    assert evaluate(chain.expression) == chain.answer == chain.steps[-1][1]


@pytest.mark.parametrize("extra", [1, 2, 3])
def test_calculator_chain_starts_with_a_two_digit_product(extra):
    for seed in range(30):
        problem = w.calculator_chain(random.Random(seed), extra)
        a, b = map(int, re.match(r"(\d+)\*(\d+)", problem.expression).groups())
        assert 11 <= a <= 99 and 11 <= b <= 99 and problem.steps[0] == (f"{a}*{b}", a * b)
        assert len(problem.steps) == extra + 1 and "*" not in problem.expression[len(f"{a}*{b}"):]
        assert problem.answer == evaluate(problem.expression) == problem.steps[-1][1]
        for (_, before), (step, after) in zip(problem.steps, problem.steps[1:]):
            assert step.startswith(str(before)) and after == evaluate_step(step)


@pytest.mark.parametrize("operands, ops", [(1, "+"), (0, "+"), (True, "+"), (2.0, "+"), (2, "/"), (2, ""),
                                           (2, "+^")])
def test_chain_rejects_bad_input(operands, ops):
    with pytest.raises(ValueError, match="operands" if ops == "+" else "ops"):
        w.chain(random.Random(0), operands, ops=ops)


@pytest.mark.parametrize("kind, word, letter, answer", [
    ("reverse", "lamp", "", "pmal"), ("upper", "lamp", "", "LAMP"), ("count", "pepper", "p", "3"),
    ("count", "river", "r", "2"), ("sort", "river", "", "eirrv"), ("sort", "zebra", "", "aberz")])
def test_solve_puzzle_by_hand(kind, word, letter, answer):
    assert w.solve_puzzle(kind, word, letter) == answer


def test_solve_puzzle_rejects_unknown_kind():
    with pytest.raises(ValueError, match="puzzle kind"):
        w.solve_puzzle("rot13", "lamp")


def test_random_puzzles_are_solved():
    for seed in range(60):
        puzzle = w.puzzle(random.Random(seed))
        word, letter = puzzle["word"], puzzle["letter"]
        assert puzzle["kind"] in w.PUZZLES and word in w.WORDS
        assert (letter in word) if puzzle["kind"] == "count" else letter == ""
        expected = {"reverse": "".join(reversed(word)), "upper": word.upper(),
                    "count": str(sum(c == letter for c in word)), "sort": "".join(sorted(word))}[puzzle["kind"]]
        assert puzzle["answer"] == expected


def test_make_name_is_capitalised_syllables():
    for seed in range(30):
        rng = random.Random(seed)
        for parts in (1, 2, 3):
            name = w.make_name(rng, parts)
            words = name.split(" ")
            assert len(words) == parts and all(re.fullmatch(r"[A-Z][a-z]+", word) for word in words)
            assert all(4 <= len(word) <= 12 for word in words)  # 2-3 syllables of 2-4 letters


def test_world_is_seeded():
    a, b, other = w.World(3, 30, 5, 6), w.World(3, 30, 5, 6), w.World(4, 30, 5, 6)
    assert a.people == b.people and a.heldout == b.heldout and a.cities == b.cities and a.public == b.public
    assert a.people != other.people


def test_world_facts_are_well_formed():
    world = w.World(1, people=50, heldout=7, cities=9)
    assert len(world.people) == 50 and len(set(world.cities)) == 9 and len(world.heldout) == 7
    assert sorted(world.public + world.heldout) == sorted(world.people)
    assert not set(world.cities) & set(world.people)
    for name, person in world.people.items():
        assert person.name == name and person.born_in in world.cities and 1700 <= person.year <= 1999
        assert person.job in w.JOBS and person.mother in world.people and person.mother != name


def test_public_people_have_public_mothers():
    world = w.World(3, people=30, heldout=12)
    assert all(world.people[name].mother in world.public for name in world.public)  # the web names mothers


def test_children_invert_mother():
    world = w.World(2, people=40, heldout=5)
    assert sum(len(world.children(name)) for name in world.people) == 40
    for name, person in world.people.items():
        assert name in world.children(person.mother)
        assert all(world.people[child].mother == name for child in world.children(name))
    assert world.children("Nobody Here") == []


@pytest.mark.parametrize("people, heldout", [(10, 10), (10, 11), (10, -1)])
def test_world_rejects_bad_heldout(people, heldout):
    with pytest.raises(ValueError, match="heldout"):
        w.World(0, people, heldout)


def test_world_rejects_a_single_person():
    with pytest.raises(ValueError, match="people"):
        w.World(0, people=1, heldout=0)



def test_review_score_sums_the_hidden_polarities_of_any_text():
    assert w.review_score("The food was very good. The soup was not bland.") == 2 + 1
    assert w.review_score("The plot was awful. The hero was good. Nice day.") == 0
    assert w.review_score("no sentence of the lexicon here") == 0
    assert w.review_score("The box was purple.") == 0  # not in the lexicon
    for seed in range(50):
        text, sentiment = w.review(random.Random(seed))
        assert (w.review_score(text) > 0) == (sentiment > 0) and w.review_score(text) != 0
    with pytest.raises(TypeError, match="text"):
        w.review_score(None)
