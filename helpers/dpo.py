"""Direct preference optimisation (Rafailov et al., 2023), notebook 10.

DPO trains the policy on preference pairs directly, with no reward model and no sampling: the loss is the reward
model's pairwise loss (notebook 09) with the reward written as beta * log(pi(y|x) / pi_ref(y|x)), so that the
policy that minimises it is the one PPO's KL-regularised objective would reach for that implicit reward.

- ``answer_logprobs``: log pi(answer | prompt) summed over the answer's tokens (its ``<|end|>`` included).
- ``dpo_loss``: -log sigmoid(beta * ((log pi_c - log ref_c) - (log pi_r - log ref_r))), and the implicit rewards.
- ``train_dpo``: the loop, on (prompt, chosen, rejected, ...) pairs against a frozen reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from helpers import chat, lm, train
from helpers import tokenizer as tok
from helpers.gpt import GPT


def answer_logprobs(model: GPT, tokenizer: tok.Tokenizer, prompts: Sequence[str], answers: Sequence[str]
                    ) -> torch.Tensor:
    """log p(answer | prompt) of each pair under ``model``, summed over the answer's tokens: (B,), with gradients."""
    if len(prompts) != len(answers) or not prompts:
        raise ValueError(f"one answer per prompt, at least one: got {len(prompts)} prompts, {len(answers)} answers")
    rendered = [chat.render_conversation(chat.conversation(p, a if a.strip() else "..."), tokenizer,
                                         block_size=model.config.block_size) for p, a in zip(prompts, answers)]
    device = next(model.parameters()).device
    x, y = chat.collate(rendered, tokenizer.special_tokens[tok.PAD], device)
    logits, _ = model(x)
    return lm.target_logprobs(logits, y).sum(1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO's loss over a batch of pairs from the four sequence log-probabilities (each (B,)): (mean loss, the
    implicit rewards beta * log(pi/pi_ref) of the chosen and of the rejected answers)."""
    shapes = {tuple(t.shape) for t in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)}
    if len(shapes) != 1:
        raise ValueError(f"the four log-probability tensors must have one shape, got {sorted(shapes)}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    chosen_rewards = beta * (policy_chosen - ref_chosen)
    rejected_rewards = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


def train_dpo(policy: GPT, reference: GPT, tokenizer: tok.Tokenizer, pairs: Sequence[tuple], config: train.TrainConfig,
              *, beta: float = 0.1, seed: int = 0, device: torch.device | str = "cpu") -> dict[str, list[float]]:
    """Train ``policy`` on (prompt, chosen, rejected, ...) pairs with the DPO loss against the frozen ``reference``;
    returns per step the loss, the implicit reward margin and the share of pairs it orders right."""
    if not pairs:
        raise ValueError("train_dpo needs at least one pair")
    policy.to(device).train()
    reference.to(device).eval()
    optimizer, gen = train.make_optimizer(policy, config), torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"loss": [], "margin": [], "accuracy": []}
    for step in range(config.max_steps):
        batch = [pairs[i] for i in torch.randint(len(pairs), (config.batch_size,), generator=gen).tolist()]
        prompts, chosen, rejected = [p[0] for p in batch], [p[1] for p in batch], [p[2] for p in batch]
        with torch.no_grad():
            ref_c = answer_logprobs(reference, tokenizer, prompts, chosen)
            ref_r = answer_logprobs(reference, tokenizer, prompts, rejected)
        both = answer_logprobs(policy, tokenizer, prompts * 2, chosen + rejected)
        loss, r_c, r_r = dpo_loss(both[:len(batch)], both[len(batch):], ref_c, ref_r, beta)
        train.update(policy, optimizer, loss, config.grad_clip, train.lr_at(step, config))
        history["loss"].append(loss.item())
        history["margin"].append((r_c - r_r).mean().item())
        history["accuracy"].append((r_c > r_r).float().mean().item())
        if not math.isfinite(history["loss"][-1]):
            break
    policy.eval()
    return history
