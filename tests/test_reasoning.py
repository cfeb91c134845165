"""Arithmetic reasoning helpers: prompts, answer extraction, votes, the safe calculator and the tool loop."""

import random

import pytest
import torch
import torch.nn as nn

from helpers import gpt, reasoning
from helpers import tokenizer as tok
from helpers import world as w

BYTES = tok.Tokenizer({bytes([b]): b for b in range(256)}, "gpt4", {tok.BOS: 256})


def test_worksheet_prompt_puts_one_solved_example_of_the_mode_first():
    example, problem = w.Chain("9+4", (("9+4", 13),), 13), w.chain(random.Random(0), 3)
    assert reasoning.worksheet_prompt(problem, example, "direct") == (
        f"Worksheet 1\n\nQ: 9+4\nA: 13\n\nQ: {problem.expression}\nA:")
    assert reasoning.worksheet_prompt("5-2", example, "worked").endswith("W: 9+4=13\nA: 13\n\nQ: 5-2\nW:")
    assert "<<9+4=13>>" in reasoning.worksheet_prompt("5-2", example, "calculator")
    with pytest.raises(ValueError, match="mode"):
        reasoning.worksheet_prompt("5-2", example, "guess")


@pytest.mark.parametrize("text, answer", [
    (" 9+4=13, 13-2=11\nA: 11", 11), (" 13\n", 13), (" -7", -7), ("A: 3\n\nQ: 1+1\nA: 2", 2),
    (" <<12*34=408>>\nA: 408", 408), ("no number here", None), (" 1+2=3, ", None), ("", None)])
def test_extract_answer(text, answer):
    assert reasoning.extract_answer(text) == answer


def test_majority_vote_ignores_missing_answers_and_breaks_ties_by_first_seen():
    assert reasoning.majority_vote([3, 5, None, 3, 5, 5]) == 5
    assert reasoning.majority_vote([7, 2]) == 7 and reasoning.majority_vote([None, 2, 7, 7, 2]) == 2
    assert reasoning.majority_vote([None, None]) is None and reasoning.majority_vote([]) is None


@pytest.mark.parametrize("expression, value", [
    ("12*34", 408), ("408+5-7", 406), ("2+3*4", 14), ("(2+3)*4", 20), ("-3*-2", 6), (" 7 - 10 ", -3),
    ("0", 0), ("1-(2-(3-4))", -2)])
def test_calculate(expression, value):
    assert reasoning.calculate(expression) == value


@pytest.mark.parametrize("expression, message", [
    ("__import__('os').system('ls')", "unexpected"), ("2**3", "unexpected"), ("1/2", "unexpected"),
    ("", "empty"), ("2+", "ends too early"), ("(1+2", "ends too early"), ("1+2)", "unexpected"),
    ("9" * 13, "digits"), ("1+" * 40 + "1", "characters"), ("abs(-3)", "unexpected"), ("3 4", "unexpected"),
    (None, "str")])
def test_calculate_refuses_anything_but_arithmetic(expression, message):
    with pytest.raises(reasoning.CalculatorError, match=message):
        reasoning.calculate(expression)


class ScriptedModel(nn.Module):
    """A stand-in language model over bytes that writes SCRIPT, except that inside a calculator call it writes
    a wrong result ("9"): so the right number can only come from the harness. Off the script it ends the text."""

    SCRIPT = "W: <<12*34=408>>, <<408+5=413>>\nA: 413\n\n"

    def __init__(self, prompt: str):
        super().__init__()
        self.config = gpt.GPTConfig(vocab_size=257, block_size=128, n_layer=1, n_head=1, n_embd=4)
        self.prompt, self.weight = prompt, nn.Parameter(torch.zeros(1))

    def new_cache(self):
        return gpt.KVCache(1)

    def forward(self, idx, targets=None, cache=None):
        cache.seen = getattr(cache, "seen", []) + idx[0].tolist()
        cache.extend(0, torch.zeros(1, 1, idx.size(1), 1), torch.zeros(1, 1, idx.size(1), 1))
        written = BYTES.decode(cache.seen[1:])[len(self.prompt):]
        if not self.SCRIPT.startswith(written):
            char = "\n"
        elif written.endswith("=") and "<<" in written and written.rfind("<<") > written.rfind(">>"):
            char = "9"
        else:
            char = self.SCRIPT[len(written)]
        logits = torch.full((1, idx.size(1), 257), -1e9)
        logits[0, -1, ord(char)] = 0.0
        return logits, None


def test_the_harness_writes_each_calculator_result_and_the_model_goes_on():
    prompt = "Q: 12*34+5\n"
    text, calls = reasoning.generate_with_calculator(ScriptedModel(prompt), BYTES, prompt, 60)
    assert text == "W: <<12*34=408>>, <<408+5=413>>\nA: 413"
    assert calls == [("12*34", 408), ("408+5", 413)] and reasoning.extract_answer(text) == 413
    alone, calls = reasoning.generate_with_calculator(ScriptedModel(prompt), BYTES, prompt, 60, use_calculator=False)
    assert alone.startswith("W: <<12*34=9") and calls == [] and reasoning.extract_answer(alone) is None


def test_generate_with_calculator_checks_its_arguments():
    model = ScriptedModel("x")
    with pytest.raises(ValueError, match="block_size"):
        reasoning.generate_with_calculator(model, BYTES, "x" * 200)
    with pytest.raises(ValueError, match="max_new_tokens"):
        reasoning.generate_with_calculator(model, BYTES, "x", -1)


PROBLEM = w.Chain("9+4-2+5", (("9+4", 13), ("13-2", 11), ("11+5", 16)), 16)


@pytest.mark.parametrize("text, error", [
    (" 9+4=13, 13-2=11, 11+5=16\nA: 16", None),
    (" 9+4=13, 13-2=12, 12+5=17\nA: 17", (1, "arithmetic")),
    (" 9+4=13, 13-3=10, 10+5=15\nA: 15", (1, "copy")),  # misread the 2
    (" 9+4=13, 11+5=16\nA: 16", (1, "copy")),  # skipped a step
    (" 9+4=13, 13-2=11\nA: 11", (2, "missing")),
    (" 9+4=13, 13-2=11, 11+5=16, 16+1=17\nA: 17", (3, "extra")),
    (" 9+4=13, 13-2=11, 11+5=16\nA: 61", (3, "answer")),
    (" 9+4=13, 13-2=11, 11+5=16", (3, "answer")),
    ("", (0, "missing"))])
def test_first_error_names_the_first_wrong_step_and_its_kind(text, error):
    assert reasoning.first_error(PROBLEM, text) == error


def test_first_error_reads_negative_values_and_checks_types():
    chain = w.Chain("2-9+1", (("2-9", -7), ("-7+1", -6)), -6)
    assert reasoning.first_error(chain, " 2-9=-7, -7+1=-6\nA: -6") is None
    assert reasoning.first_error(chain, " 2-9=7, 7+1=8\nA: 8") == (0, "arithmetic")
    with pytest.raises(TypeError, match="problem"):
        reasoning.first_error("2-9+1", "")
    with pytest.raises(TypeError, match="text"):
        reasoning.first_error(chain, None)


def test_sample_solutions_draws_n_independent_samples_cut_at_the_stop():
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=257, block_size=64, n_layer=1, n_head=1, n_embd=8))
    samples = reasoning.sample_solutions(model, BYTES, "Q: 1+1\nW:", 6, 20, temperature=1.0, stop="",
                                         generator=torch.Generator().manual_seed(1))
    assert len(samples) == 6 and len(set(samples)) > 1  # a random model: the samples differ
    again = reasoning.sample_solutions(model, BYTES, "Q: 1+1\nW:", 6, 20, temperature=1.0, stop="",
                                       generator=torch.Generator().manual_seed(1))
    assert again == samples  # the generator makes them repeatable
    greedy = reasoning.sample_solutions(model, BYTES, "Q: 1+1\nW:", 3, 20, temperature=0, stop="")
    assert len(set(greedy)) == 1
    cut = reasoning.sample_solutions(model, BYTES, "Q: 1+1\nW:", 3, 20, temperature=1.0, stop=greedy[0][5])
    assert all(greedy[0][5] not in s for s in cut)
    with pytest.raises(ValueError, match="n must"):
        reasoning.sample_solutions(model, BYTES, "x", 0)
    with pytest.raises(ValueError, match="block_size"):
        reasoning.sample_solutions(model, BYTES, "x" * 60, 2, 10)
