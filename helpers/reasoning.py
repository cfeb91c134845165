"""Arithmetic reasoning with the base model: answers, votes and a calculator tool (notebook 07).

- ``worksheet_prompt``: a problem in the mini-web's worksheet format, after one solved example of the wanted
  mode (direct answer, worked steps, or calculator calls), so the model knows which kind of page it is on.
- ``extract_answer``: the integer after the last ``A:`` of a solution (or of a bare direct answer).
- ``majority_vote``: self-consistency's vote over the extracted answers (Wang et al., 2023), and
  ``sample_solutions``, which draws the N solutions it votes over in one batch.
- ``first_error``: where a worked solution first goes wrong (a misread number, a wrong sum, a missing step).
- ``calculate``: a tiny parser for integer arithmetic (``+ - *``, parentheses, unary minus). It never calls
  ``eval``: anything but digits, operators, parentheses and spaces is refused with ``CalculatorError``.
- ``generate_with_calculator``: decoding with a tool. When the model has written ``<<expression=`` (the
  web's calculator notation, GSM8K style), the harness stops it, computes the expression, writes the result
  into the text, and lets the model continue (Toolformer, Schick et al., 2023, in its simplest form).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import torch
import torch.nn as nn

from helpers import lm, sampling
from helpers import tokenizer as tok
from helpers.miniweb import ARITHMETIC_MODES, problem_text
from helpers.world import Chain

CALL_OPEN, CALL_CLOSE = "<<", ">>"
MAX_EXPRESSION = 64  # characters a calculator call may hold
MAX_DIGITS = 12  # digits one number may have


class CalculatorError(ValueError):
    """The text is not an arithmetic expression the calculator accepts."""


def worksheet_prompt(problem: Chain | str, example: Chain, mode: str) -> str:
    """One solved ``example`` in ``mode``, then ``problem`` (a Chain or an expression) up to its answer line:
    ending in ``A:`` for a direct answer, ``W:`` for worked steps or calculator calls."""
    if mode not in ARITHMETIC_MODES:
        raise ValueError(f"mode must be one of {ARITHMETIC_MODES}, got {mode!r}")
    expression = problem.expression if isinstance(problem, Chain) else problem
    if not isinstance(expression, str) or not expression:
        raise ValueError(f"problem must be a Chain or a non-empty expression, got {problem!r}")
    return f"Worksheet 1\n\n{problem_text(example, mode)}\n\nQ: {expression}\n{'A' if mode == 'direct' else 'W'}:"


def extract_answer(text: str) -> int | None:
    """The integer after the last ``A:`` in ``text``; without one, the integer that starts its first line (a
    direct answer, as generated after ``A:``). None when there is no such integer."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    found = re.findall(r"A:[ \t]*(-?\d+)", text)
    if found:
        return int(found[-1])
    first = re.match(r"[ \t]*(-?\d+)[ \t]*(?:\n|$)", text)
    return int(first.group(1)) if first else None


def majority_vote(answers: Iterable[int | None]) -> int | None:
    """The most frequent answer, ignoring None; a tie goes to the answer seen first. None if all are None."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    return max(counts, key=counts.get)  # Counter keeps first-seen order, and max keeps the first of equals


STEP = re.compile(r"(-?\d+)([-+*])(\d+)=(-?\d+)")  # one worked step: "12-5=7"


def first_error(problem: Chain, text: str) -> tuple[int, str] | None:
    """Where the worked solution ``text`` of ``problem`` first goes wrong, as (step index, kind); None if right.

    Kinds: ``"copy"`` (the step is not the next operation: a number misread from the problem or carried
    wrong), ``"arithmetic"`` (the right operation, a wrong result), ``"missing"`` (fewer steps than the problem
    needs; index = steps written), ``"extra"`` (more steps), ``"answer"`` (every step right, a wrong or absent
    final answer; index = number of steps)."""
    if not isinstance(problem, Chain):
        raise TypeError(f"problem must be a world.Chain, got {type(problem).__name__}")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    work = text.split("A:")[0]
    written = [(f"{a}{op}{b}", int(v)) for a, op, b, v in STEP.findall(work)]
    for i, ((step, value), (true_step, true_value)) in enumerate(zip(written, problem.steps)):
        if step != true_step:
            return i, "copy"
        if value != true_value:
            return i, "arithmetic"
    if len(written) < len(problem.steps):
        return len(written), "missing"
    if len(written) > len(problem.steps):
        return len(problem.steps), "extra"
    return None if extract_answer(text) == problem.answer else (len(written), "answer")


@torch.no_grad()
def sample_solutions(model: nn.Module, tokenizer: tok.Tokenizer, prompt: str, n: int, max_new_tokens: int = 90, *,
                     temperature: float = 0.8, stop: str = "\n\n",
                     generator: torch.Generator | None = None) -> list[str]:
    """``n`` continuations of one ``prompt`` (BOS in front), sampled together as one batch, each cut at ``stop``.

    No calculator: this is the self-consistency sampler (the same prompt n times, so no padding is needed)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    device = next(model.parameters()).device
    ids = [tokenizer.special_tokens[tok.BOS]] + tokenizer.encode_ordinary(prompt)
    if len(ids) + max_new_tokens > model.config.block_size:
        raise ValueError(f"prompt ({len(ids)} tokens with BOS) + max_new_tokens ({max_new_tokens}) must fit in "
                         f"block_size={model.config.block_size}")
    idx = torch.tensor([ids] * n, device=device)
    out = sampling.generate(model, idx, max_new_tokens, temperature=temperature, generator=generator)
    texts = [tokenizer.decode(row[len(ids):].tolist()) for row in out]
    return [t.split(stop)[0] if stop else t for t in texts]


def _tokens(expression: str) -> list[str]:
    if not isinstance(expression, str):
        raise CalculatorError(f"expression must be a str, got {type(expression).__name__}")
    if not expression.strip():
        raise CalculatorError("empty expression")
    if len(expression) > MAX_EXPRESSION:
        raise CalculatorError(f"expression is {len(expression)} characters, more than {MAX_EXPRESSION}")
    tokens, position = [], 0
    for match in re.finditer(r"\s*(?:(\d+)|([-+*()]))", expression):
        if match.start() != position:
            break
        tokens.append(match.group(1) or match.group(2))
        position = match.end()
    rest = expression[position:]
    if rest.strip():
        raise CalculatorError(f"unexpected {rest.strip()[:10]!r} at character {position}: only integers, + - * "
                              "and parentheses are allowed")
    for t in tokens:
        if t.isdigit() and len(t) > MAX_DIGITS:
            raise CalculatorError(f"number {t[:15]}... has more than {MAX_DIGITS} digits")
    return tokens


def calculate(expression: str) -> int:
    """The value of an integer expression with ``+ - *``, parentheses and unary minus, by the usual precedence.

    A recursive-descent parser over a list of tokens: expr := term (('+'|'-') term)*, term := factor ('*'
    factor)*, factor := '-' factor | '(' expr ')' | integer. Raises CalculatorError for anything else."""
    tokens, i = _tokens(expression), 0

    def peek():
        return tokens[i] if i < len(tokens) else None

    def take():
        nonlocal i
        if i >= len(tokens):
            raise CalculatorError(f"expression {expression!r} ends too early")
        i += 1
        return tokens[i - 1]

    def factor(depth=0):
        if depth > MAX_EXPRESSION:
            raise CalculatorError("too deeply nested")
        t = take()
        if t == "-":
            return -factor(depth + 1)
        if t == "(":
            value = expr(depth + 1)
            if take() != ")":
                raise CalculatorError(f"missing ')' in {expression!r}")
            return value
        if t.isdigit():
            return int(t)
        raise CalculatorError(f"unexpected {t!r} in {expression!r}")

    def term(depth=0):
        value = factor(depth)
        while peek() == "*":
            take()
            value *= factor(depth)
        return value

    def expr(depth=0):
        value = term(depth)
        while peek() in ("+", "-"):
            value = value + term(depth) if take() == "+" else value - term(depth)
        return value

    value = expr()
    if i != len(tokens):
        raise CalculatorError(f"unexpected {tokens[i]!r} in {expression!r}")
    return value


def _open_call(text: str) -> str | None:
    """The expression of a calculator call waiting for its result: text ending in '<<expression='."""
    start = text.rfind(CALL_OPEN)
    if start < 0 or CALL_CLOSE in text[start:] or not text.endswith("="):
        return None
    return text[start + len(CALL_OPEN):-1]


@torch.no_grad()
def generate_with_calculator(model: nn.Module, tokenizer: tok.Tokenizer, prompt: str, max_new_tokens: int = 80, *,
                             use_calculator: bool = True, stop: str = "\n\n", temperature: float = 0.0,
                             generator: torch.Generator | None = None) -> tuple[str, list[tuple[str, int | None]]]:
    """Continue ``prompt`` (BOS in front) up to ``stop`` or ``max_new_tokens``; return (text, calls).

    With ``use_calculator``, each time the text ends in an open call ``<<expression=``, the harness writes the
    value itself (``?`` when the expression is not arithmetic) and the model goes on from there, closing the
    call with ``>>``.
    ``calls`` lists (expression, value or None). Tokens the harness writes do not count as generated."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a whole number >= 0, got {max_new_tokens!r}")
    sampling.check_knobs(temperature, None, None)
    device = next(model.parameters()).device
    ids = [tokenizer.special_tokens[tok.BOS]] + tokenizer.encode_ordinary(prompt)
    if len(ids) >= model.config.block_size:
        raise ValueError(f"prompt is {len(ids)} tokens with BOS; it must be shorter than block_size="
                         f"{model.config.block_size}")
    text, calls, cache, pending = "", [], model.new_cache(), ids
    with lm.eval_mode(model):
        for _ in range(max_new_tokens):
            if len(cache) + len(pending) > model.config.block_size:
                break  # the window is full
            logits, _ = model(torch.tensor([pending], device=device), cache=cache)
            probs = sampling.next_token_probs(logits[:, -1, :].float(), temperature)
            token = torch.multinomial(probs.cpu(), 1, generator=generator).item()
            text += tokenizer.decode([token])
            pending = [token]
            if stop and stop in text:
                return text.split(stop)[0], calls
            expression = _open_call(text) if use_calculator else None
            if expression is not None:
                try:
                    value = calculate(expression)
                except CalculatorError:
                    value = None
                calls.append((expression, value))
                written = "?" if value is None else str(value)  # the model closes the call itself: in the
                # course tokenizer ">>" fuses with what follows (">>," and ">>\n" are single tokens)
                text += written
                pending = pending + tokenizer.encode_ordinary(written)
    return text.split(stop)[0] if stop else text, calls
