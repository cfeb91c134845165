"""The language-model contract, in one place: the shared loss, the input checks, and eval mode.

Every model of the course (n-gram tables, bigram, MLP, RNNs, GPT) has

    forward(idx, targets=None) -> (logits, loss)

with ``idx`` a (B, T) tensor of integer token ids in ``0 .. vocab_size - 1``, ``logits`` (B, T, V), and
``targets`` (B, T) the next token at each position, where the value ``IGNORE_INDEX = -1`` means "no loss
here". Padding (notebook 03) and the response-only loss of supervised fine-tuning (notebook 08) are built
on that one value, so every model computes its loss with ``lm_loss`` below and checks its input with
``check_ids``. ``eval_mode`` is the one place where a function that switches a model to evaluation
restores its previous mode, even when it raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE_INDEX = -1  # a target with this value adds nothing to the loss


def check_ids(idx, vocab_size: int, name: str = "idx") -> None:
    """Raise a clear error unless ``idx`` is a (B, T) integer tensor with ids in 0 .. vocab_size - 1."""
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids with shape (B, T), got {type(idx).__name__}; "
                        "e.g. torch.tensor([tokenizer.encode(text)]).")
    if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (dtype torch.long), got dtype {idx.dtype}.")
    if idx.dim() != 2:
        hint = " For one sequence, add a batch dimension: idx[None] or idx.unsqueeze(0)." if idx.dim() == 1 else ""
        raise ValueError(f"{name} must have shape (B, T), got shape {tuple(idx.shape)}.{hint}")
    if idx.numel() and bool(((idx < 0) | (idx >= vocab_size)).any()):
        raise ValueError(f"{name} holds token ids outside 0..{vocab_size - 1} (vocab_size={vocab_size}): "
                         f"min {idx.min().item()}, max {idx.max().item()}. Was it encoded with another tokenizer?")


def check_targets(targets, logits: torch.Tensor) -> None:
    """Raise a clear error unless ``targets`` is (B, T) like ``logits[..., 0]``, with ids or IGNORE_INDEX."""
    if not isinstance(targets, torch.Tensor) or targets.dtype.is_floating_point or targets.dtype == torch.bool:
        got = targets.dtype if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise TypeError(f"targets must be an integer tensor of token ids (dtype torch.long), got {got}.")
    if tuple(targets.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"targets must have the shape of idx, {tuple(logits.shape[:-1])}, got {tuple(targets.shape)}.")
    V = logits.size(-1)
    if targets.numel() and bool(((targets < IGNORE_INDEX) | (targets >= V)).any()):
        raise ValueError(f"targets hold values outside {IGNORE_INDEX}..{V - 1} ({IGNORE_INDEX} means 'no loss "
                         f"here'): min {targets.min().item()}, max {targets.max().item()}.")


def lm_loss(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    """Mean next-token cross-entropy (nats) over the positions whose target is not IGNORE_INDEX.

    logits (B, T, V), targets (B, T) -> a scalar, or None without targets. Computed in float32 whatever the
    logits' dtype. A batch with no counted position gives 0 (not NaN), so an all-padding batch is harmless.
    """
    if targets is None:
        return None
    check_targets(targets, logits)
    flat = targets.reshape(-1)
    total = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), flat, ignore_index=IGNORE_INDEX,
                            reduction="sum")
    return total / (flat != IGNORE_INDEX).sum().clamp(min=1)


def target_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) at each position: logits (B, T, V), targets (B, T) -> (B, T); where a target is
    ``IGNORE_INDEX`` the result is 0. (DPO sums these over an answer; PPO keeps them per token.)"""
    if logits.shape[:2] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match targets {tuple(targets.shape)}")
    logp = torch.gather(F.log_softmax(logits.float(), dim=-1), 2, targets.clamp(min=0)[..., None]).squeeze(-1)
    return logp * (targets != IGNORE_INDEX)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run the body with ``model.eval()``; afterwards restore the mode it had, even if the body raised."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
