"""Supervised fine-tuning: train on conversations, measure per task (notebook 08; the ``sft`` stage).

- ``render_examples``: task examples (``helpers.tasks``, ``chat.review_requests``) as rendered conversations.
- ``batch_sampler``: random batches of rendered conversations, padded, loss on the answers only; the
  ``get_batch`` that ``helpers.train.train`` takes, so SFT, LoRA and the stage share the course's one loop.
- ``finetune``: that loop on a list of rendered conversations, with a held-out loss.
- ``examples_for`` and ``grade``: test examples of any family, and an exact grader (for review writing: the
  written review has the asked sentiment under the mini-web's hidden lexicon).
- ``few_shot_prompt`` / ``few_shot_answer``: the base model's side of the comparison, k solved examples in the
  web's ``Q: ... / A: ...`` format; ``chat_answer``: the fine-tuned model's side, zero-shot in the chat format.
- ``accuracy``: share of examples a model answers right, by family.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

from helpers import chat, reasoning, tasks, train
from helpers import tokenizer as tok
from helpers import world as w

POOL = 4  # length bucketing: a batch is the neighbours by length among POOL * batch_size random conversations
WRITE = "write"  # the review-writing family (chat.review_requests), trained on but graded by sentiment


def render_examples(examples: Sequence[tasks.Example], tokenizer: tok.Tokenizer,
                    block_size: int | None = None) -> list[tuple[list[int], list[int]]]:
    """Each example as a one-turn conversation (the prompt from the user, the answer from the assistant)."""
    return [chat.render_conversation(chat.conversation(e.prompt, chat.response(e)), tokenizer, block_size=block_size)
            for e in examples]


def batch_sampler(rendered: Sequence[tuple[list[int], list[int]]], batch_size: int, pad_id: int,
                  device: torch.device | str = "cpu", *, bucket: bool = True
                  ) -> Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]:
    """``get_batch(generator) -> (x, y)``: ``batch_size`` conversations, padded (``chat.collate``).

    With ``bucket`` (length bucketing), ``POOL`` times as many conversations are drawn at random, sorted by
    length, and the batch is ``batch_size`` neighbours among them: less padding (our conversations range from
    a dozen tokens to a hundred), still a mix of tasks. Without it, the batch is the random draw itself."""
    if not rendered:
        raise ValueError("batch_sampler needs at least one conversation")

    def get_batch(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        pool = POOL * batch_size if bucket else batch_size
        picks = torch.randint(len(rendered), (pool,), generator=generator).tolist()
        if bucket:
            picks.sort(key=lambda i: len(rendered[i][0]))
            start = torch.randint(pool - batch_size + 1, (1,), generator=generator).item()
            picks = picks[start:start + batch_size]
        return chat.collate([rendered[i] for i in picks], pad_id, device)

    return get_batch


def finetune(model: nn.Module, rendered: Sequence, held_out: Sequence, config: train.TrainConfig, pad_id: int, *,
             device: torch.device | str = "cpu", seed: int = 0, progress: bool = False) -> train.History:
    """Train ``model`` (all of it, or whatever is left trainable, e.g. LoRA adapters) on ``rendered``
    conversations with the answer-only loss; the held-out loss is measured on ``held_out`` every
    ``config.eval_interval`` steps."""
    return train.train(model, None, None, config, device=device, seed=seed, progress=progress,
                       get_batch=batch_sampler(rendered, config.batch_size, pad_id, device),
                       get_val_batch=batch_sampler(held_out, config.batch_size, pad_id, device))


def examples_for(family: str, n: int, *, seed: int, split: str = "train", world: w.World | None = None):
    """``n`` test examples of ``family`` (a task family or ``WRITE``)."""
    if family == WRITE:
        return chat.review_requests(n, seed=seed, split=split)
    return tasks.make_examples(family, n, seed=seed, split=split, world=world)


def grade(example: tasks.Example, output: str) -> bool:
    """Exact grading; arithmetic by the number after the last ``A:`` (worked answers are welcome), a written
    review by the sign of its hidden score."""
    if example.family == WRITE:
        return w.review_score(output) * example.truth["sentiment"] > 0
    if example.family == "arithmetic":
        return reasoning.extract_answer(output) == int(example.answer)
    return tasks.grade(example, output)


def few_shot_prompt(shots: Sequence[tasks.Example], example: tasks.Example) -> str:
    """``k`` solved examples and the question, in the web's Q&A format (the base model's best chance); for
    arithmetic, the worksheets' worked format ``Q: ... / W: steps / A: n``."""
    def lead(e):
        return f"Q: {e.prompt}\n" + ("W:" if e.family == "arithmetic" else "A:")

    return "\n\n".join([f"{lead(s)} {chat.response(s)}" for s in shots] + [lead(example)])


def base_answer(model: nn.Module, tokenizer: tok.Tokenizer, prompt: str, max_new_tokens: int = 24) -> str:
    """The base model's greedy continuation of ``prompt`` (BOS in front), up to the blank line."""
    if len(tokenizer.encode_ordinary(prompt)) + 1 + max_new_tokens > model.config.block_size:
        raise ValueError(f"prompt with {max_new_tokens} new tokens does not fit in "
                         f"block_size={model.config.block_size}")
    return reasoning.generate_with_calculator(model, tokenizer, prompt, max_new_tokens, use_calculator=False)[0]


def few_shot_answer(model: nn.Module, tokenizer: tok.Tokenizer, shots: Sequence[tasks.Example],
                    example: tasks.Example, max_new_tokens: int = 40) -> str:
    """The base model's answer after as many of ``shots`` as fit in its window (long passages leave room for
    fewer)."""
    for k in range(len(shots), -1, -1):
        prompt = few_shot_prompt(shots[:k], example)
        if len(tokenizer.encode_ordinary(prompt)) + 1 + max_new_tokens <= model.config.block_size:
            return base_answer(model, tokenizer, prompt, max_new_tokens)
    raise ValueError(f"the question alone does not fit in block_size={model.config.block_size}")


def chat_answer(model: nn.Module, tokenizer: tok.Tokenizer, prompt: str, max_new_tokens: int = 48) -> str:
    """The fine-tuned model's zero-shot answer to ``prompt`` as a user message."""
    return chat.reply(model, tokenizer, chat.conversation(prompt), max_new_tokens)


def accuracy(answer: Callable[[tasks.Example], str], examples: Sequence[tasks.Example]) -> float:
    """Share of ``examples`` that ``answer(example) -> output`` gets right (``grade``)."""
    if not examples:
        raise ValueError("accuracy needs at least one example")
    with torch.no_grad():
        return sum(grade(e, answer(e)) for e in examples) / len(examples)
