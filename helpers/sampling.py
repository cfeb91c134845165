"""Sampling text from any model of the course's language-model contract.

At each step the model gives logits for the next token; we turn them into a distribution and draw:

- temperature ``t``: divide the logits by ``t`` (``t < 1`` sharpens, ``t > 1`` flattens, ``t = 0`` is
  greedy: always the most likely token);
- top-k: keep only the ``k`` most likely tokens;
- top-p (nucleus, Holtzman et al. 2020): keep the smallest set of most likely tokens whose total
  probability reaches ``p``.

A model that offers a cache (``model.new_cache()``, and ``forward(idx, cache=cache)`` that reads only the new
tokens, like ``helpers.gpt.GPT``'s KV cache) runs the prompt once and then one token per step. Any other
model of the contract (n-gram, RNN without a cache) gets the whole context again for every new token.

Simplification: once the text outgrows ``block_size``, the context is cropped to the last ``block_size``
tokens and run in full for each new token (cached keys were computed at other positions, so they cannot
be reused); a cache only speeds up the first ``block_size`` tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from helpers import lm


def check_knobs(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise a ValueError naming the sampling knob that is out of range (NaN included)."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0 \
            or math.isinf(temperature):
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
        raise ValueError(f"top_k must be a positive integer or None (no cut), got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1] or None (no cut), got {top_p!r}")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set all but the ``k`` largest logits in the last dimension to -inf."""
    if k <= 0:
        raise ValueError(f"top_k must be a positive integer, got {k}")
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probabilities sum to at least ``p``."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = torch.cumsum(probs, dim=-1) - probs  # probability mass of the tokens ranked above
    drop_sorted = before >= p  # the most likely token always stays (before = 0)
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def next_token_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Turn last-position logits (B, V) into the sampling distribution (B, V)."""
    check_knobs(temperature, top_k, top_p)
    if temperature == 0:  # greedy: all mass on the arg-max
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.size(-1)).to(logits.dtype)
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)


@torch.no_grad()
def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    stop_token: int | None = None,
) -> torch.Tensor:
    """Extend ``idx`` (B, T) by ``max_new_tokens`` sampled tokens; return (B, T + max_new_tokens).

    With ``use_cache`` (the default) the model's cache is used when it offers one; the tokens are the same
    either way, only faster. With ``stop_token``, generation ends early once every row has drawn it: the result
    is then shorter, and the same as the first columns of a full-length run with the same generator."""
    lm.check_ids(idx, model.config.vocab_size)
    if idx.size(1) == 0:
        raise ValueError("generate() needs at least one token of context to start from.")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a whole number >= 0, got {max_new_tokens!r}")
    check_knobs(temperature, top_k, top_p)
    block_size = model.config.block_size
    cache = None
    finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    with lm.eval_mode(model):
        for _ in range(max_new_tokens):
            if use_cache and hasattr(model, "new_cache") and idx.size(1) <= block_size:
                if cache is None:  # first step: run the whole prompt once, filling the cache
                    cache = model.new_cache()
                    logits, _ = model(idx, cache=cache)
                else:  # later steps: only the token drawn last
                    logits, _ = model(idx[:, -1:], cache=cache)
            else:
                logits, _ = model(idx[:, -block_size:])
            probs = next_token_probs(logits[:, -1, :].float(), temperature, top_k, top_p)  # (B, V)
            gen_device = generator.device if generator is not None else probs.device
            next_idx = torch.multinomial(probs.to(gen_device), 1, generator=generator).to(idx.device)  # (B, 1)
            idx = torch.cat([idx, next_idx], dim=1)
            if stop_token is not None:
                finished |= next_idx[:, 0] == stop_token
                if bool(finished.all()):
                    break
    return idx
