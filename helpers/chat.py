"""The chat format and the data of supervised fine-tuning (notebook 08).

A conversation is a list of messages ``{"role": ..., "content": ...}`` with roles ``system`` (optional, first),
``user`` and ``assistant``. Rendered to tokens with the special tokens the course tokenizer reserved from the
start (``stages.CHAT_TOKENS``)::

    <|bos|> <|user|> What is 3+5? <|end|> <|assistant|> 8 <|end|>

- ``render_conversation(messages, tokenizer)`` -> (ids, mask): mask 1 on the tokens the assistant wrote (its
  text and the ``<|end|>`` that closes it, so the model learns to stop), 0 elsewhere. Message text is encoded
  as ordinary text: a user who types ``<|end|>`` gets those characters, not the control token.
- ``collate``: a batch of uneven conversations, padded, with target -1 wherever no loss is wanted (the prompt,
  the padding): instruction tuning trains on the answers only.
- ``instruction_mixture``: conversations from the task families of ``helpers.tasks`` (the FLAN / T0 recipe:
  many tasks, several phrasings each), plus review writing (``review_requests``: the task notebooks 09 and 10
  reward), shuffled; held-out phrasings and the held-out family stay out.
- ``response``: what the assistant says for a task example: the answer itself, except for arithmetic, where
  it shows its work first (``3+5=8, 8-2=6`` then ``A: 6``), as notebook 07 found it must to get chains right.
- ``reply``: the model's answer to a conversation, decoded until it writes ``<|end|>``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import torch
import torch.nn as nn

from helpers import lm, sampling, tasks
from helpers import tokenizer as tok
from helpers import world as w

ROLES = ("system", "user", "assistant")
ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
END = "<|end|>"
WRITING_PHRASINGS = ("Write a {tone} review of the {category} {name}.",
                     "Please write a short {tone} review of {name}, a {category}.",
                     "{name} is a {category}. Write a {tone} review of it.",
                     "Give me a {tone} review of the {category} called {name}.")  # the last one is held out


def check_conversation(messages) -> list[dict]:
    """``messages`` as a list of {"role", "content"} dicts, or a ValueError saying what is wrong."""
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)) or not messages:
        raise ValueError(f"messages must be a non-empty list of {{'role': ..., 'content': ...}} dicts, "
                         f"got {messages!r:.80}")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise ValueError(f"message {i} must be a dict with exactly the keys 'role' and 'content', got {m!r:.80}")
        if m["role"] not in ROLES:
            raise ValueError(f"message {i} has role {m['role']!r}; roles are {ROLES}")
        if m["role"] == "system" and i != 0:
            raise ValueError(f"message {i}: a system message may only come first")
        if not isinstance(m["content"], str) or not m["content"].strip():
            raise ValueError(f"message {i} ({m['role']}) has empty content; every message needs text")
    return list(messages)


def render_conversation(messages, tokenizer: tok.Tokenizer, *, block_size: int | None = None,
                        add_generation_prompt: bool = False) -> tuple[list[int], list[int]]:
    """Token ids of the conversation and a mask (1 = written by the assistant: its text and its ``<|end|>``).

    ``add_generation_prompt`` appends ``<|assistant|>`` (mask 0) for the model to answer. A conversation longer
    than ``block_size`` tokens raises a ValueError: it is never cut silently."""
    messages = check_conversation(messages)
    special = tokenizer.special_tokens
    missing = [t for t in (tok.BOS, END, *ROLE_TOKENS.values()) if t not in special]
    if missing:
        raise ValueError(f"the tokenizer lacks the chat tokens {missing}; use the course tokenizer "
                         "(stages.load_tokenizer), which reserves them")
    ids, mask = [special[tok.BOS]], [0]
    for m in messages:
        content = tokenizer.encode_ordinary(m["content"])
        written = 1 if m["role"] == "assistant" else 0
        ids += [special[ROLE_TOKENS[m["role"]]], *content, special[END]]
        mask += [0] + [written] * (len(content) + 1)
    if add_generation_prompt:
        ids.append(special[ROLE_TOKENS["assistant"]])
        mask.append(0)
    if block_size is not None and len(ids) > block_size:
        raise ValueError(f"the conversation is {len(ids)} tokens, longer than the model's window of {block_size}; "
                         "shorten it (it is not cut, so no answer is lost silently)")
    return ids, mask


def collate(rendered: Sequence[tuple[list[int], list[int]]], pad_id: int,
            device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets (B, T) for next-token training from rendered conversations: inputs are each ``ids[:-1]``
    padded with ``pad_id``; the target at t is ``ids[t + 1]`` where ``mask[t + 1]`` is 1, else -1 (no loss)."""
    if not rendered:
        raise ValueError("collate needs at least one rendered conversation")
    for i, (ids, mask) in enumerate(rendered):
        if len(ids) != len(mask) or len(ids) < 2:
            raise ValueError(f"conversation {i}: ids and mask must have the same length >= 2, got "
                             f"{len(ids)} and {len(mask)}")
    T = max(len(ids) for ids, _ in rendered) - 1
    x = torch.full((len(rendered), T), pad_id, dtype=torch.long)
    y = torch.full((len(rendered), T), lm.IGNORE_INDEX, dtype=torch.long)
    for row, (ids, mask) in enumerate(rendered):
        n = len(ids) - 1
        x[row, :n] = torch.tensor(ids[:-1])
        y[row, :n] = torch.tensor([t if m else lm.IGNORE_INDEX for t, m in zip(ids[1:], mask[1:])])
    return x.to(device), y.to(device)


def conversation(prompt: str, answer: str | None = None) -> list[dict]:
    """A one-turn conversation: the user's ``prompt`` and, if given, the assistant's ``answer``."""
    messages = [{"role": "user", "content": prompt}]
    return messages + [{"role": "assistant", "content": answer}] if answer is not None else messages


def response(example: tasks.Example) -> str:
    """The assistant's text for ``example``: its answer, with worked steps before it for arithmetic."""
    if example.family != "arithmetic":
        return example.answer
    numbers = [int(n) for n in re.findall(r"\d+", example.truth["expression"])]
    ops = re.findall(r"[-+]", example.truth["expression"])
    value, steps = numbers[0], []
    for op, number in zip(ops, numbers[1:]):
        new = value + number if op == "+" else value - number
        steps.append(f"{value}{op}{number}={new}")
        value = new
    if str(value) != example.answer:
        raise ValueError(f"cannot work out {example.truth['expression']!r}: got {value}, expected {example.answer}")
    return ", ".join(steps) + f"\nA: {value}"


def review_requests(n: int, *, seed: int = 0, split: str = "train") -> list[tasks.Example]:
    """``n`` requests to write a positive or negative review of a named restaurant, film or product, each with a
    reference review of that sentiment (from the mini-web's review generator) that starts with the name."""
    choices = tasks.phrasings_of(split, len(WRITING_PHRASINGS))
    rng, examples = random.Random(f"write-{seed}"), []
    for _ in range(n):
        category, name, sentiment = rng.choice(sorted(w.CATEGORIES)), w.make_name(rng), rng.choice((1, -1))
        text, drawn = w.review(rng, category)
        while drawn != sentiment:
            text, drawn = w.review(rng, category)
        phrasing = rng.choice(choices)
        fields = {"tone": "positive" if sentiment > 0 else "negative", "category": category, "name": name}
        examples.append(tasks.Example("write", WRITING_PHRASINGS[phrasing].format(**fields), f"{name}: {text}",
                                      phrasing, {**fields, "sentiment": sentiment}))
    return examples


def instruction_mixture(n_per_family: int, *, seed: int = 0, families: Sequence[str] | None = None,
                        world: w.World | None = None, writing: bool = True) -> list[tasks.Example]:
    """``n_per_family`` training examples of each family (default: all but ``tasks.HELDOUT_FAMILY``), written
    with the training phrasings only, plus as many review-writing requests; shuffled."""
    families = [f for f in tasks.FAMILIES if f != tasks.HELDOUT_FAMILY] if families is None else list(families)
    if tasks.HELDOUT_FAMILY in families:
        raise ValueError(f"{tasks.HELDOUT_FAMILY!r} is the held-out family; it must stay out of training")
    examples = [e for f in families for e in tasks.make_examples(f, n_per_family, seed=seed, split="train",
                                                                  world=world)]
    if writing:
        examples += review_requests(n_per_family, seed=seed, split="train")
    random.Random(f"mixture-{seed}").shuffle(examples)
    return examples


@torch.no_grad()
def reply(model: nn.Module, tokenizer: tok.Tokenizer, messages, max_new_tokens: int = 48, *,
          temperature: float = 0.0, generator: torch.Generator | None = None) -> str:
    """The assistant's answer to ``messages``: decoded (greedy by default) until ``<|end|>``, at most
    ``max_new_tokens`` tokens."""
    ids, _ = render_conversation(messages, tokenizer, add_generation_prompt=True)
    if len(ids) + max_new_tokens > model.config.block_size:
        max_new_tokens = model.config.block_size - len(ids)
        if max_new_tokens < 1:
            raise ValueError(f"the conversation is {len(ids)} tokens; no room to answer in a window of "
                             f"{model.config.block_size}")
    sampling.check_knobs(temperature, None, None)
    device, end = next(model.parameters()).device, tokenizer.special_tokens[END]
    cache, pending, out = model.new_cache(), ids, []
    with lm.eval_mode(model):
        for _ in range(max_new_tokens):
            logits, _ = model(torch.tensor([pending], device=device), cache=cache)
            probs = sampling.next_token_probs(logits[:, -1, :].float(), temperature)
            token = torch.multinomial(probs.cpu(), 1, generator=generator).item()
            if token == end:
                break
            out.append(token)
            pending = [token]
    return tokenizer.decode(out)
