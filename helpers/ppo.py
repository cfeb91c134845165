"""PPO for a language model, one small function per phase (notebook 10).

The phases of one PPO iteration, in the order they run (the way TRL's trainer numbers them):

1. ``rollout``: the policy answers prompts; keep each token's log-probability and the value head's estimate.
2. ``token_logprobs`` of the frozen reference (the SFT model) on the same tokens, and the reward model's score.
3. ``kl_penalized_rewards``: a reward per token, -beta * (log pi - log pi_ref), plus the score at the last token.
4. ``gae``: generalized advantage estimation (Schulman et al., 2016) turns rewards and values into advantages and
   returns; ``whiten`` normalises the advantages.
5. ``ppo_loss``: the clipped policy loss, the clipped value loss and an entropy bonus, on minibatches, for a few
   epochs over the same rollout: ``ppo_step``.

Sequences are stored whole (prompt + answer, right-padded), and every per-token tensor has shape (B, T-1): entry
``t`` belongs to the prediction of token ``t + 1``. ``mask`` is 1 where that token is part of the answer (its
closing ``<|end|>`` included), so prompts and padding drop out of every sum.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import chat, lm, sampling, train
from helpers import tokenizer as tok
from helpers.gpt import GPT, GPTConfig


class PolicyWithValue(nn.Module):
    """A GPT policy and a value head on its trunk: ``forward(idx) -> (logits (B, T, V), values (B, T))``.

    The value head reads the trunk's hidden states but, unless ``value_moves_trunk``, its loss does not flow back
    into the trunk: the value loss then trains the head alone and cannot move the policy. At cpu scale, fewer seeds
    raised the gold reward with the gradient shared than with it stopped (the README's results list the runs)."""

    def __init__(self, config: GPTConfig, value_moves_trunk: bool = False):
        super().__init__()
        self.config = config
        self.value_moves_trunk = value_moves_trunk
        self.policy = GPT(config)
        self.value_head = nn.Linear(config.n_embd, 1)
        # values start at exactly 0, so the first advantages are the plain (centred) returns: with notebook 09's
        # small random head instead, the early values were noise and the gold reward fell over the first
        # iterations before it rose (cpu scale, measured)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    @classmethod
    def from_language_model(cls, model: GPT, value_moves_trunk: bool = False) -> PolicyWithValue:
        """A policy that starts as a copy of ``model`` (the SFT model)."""
        out = cls(model.config, value_moves_trunk)
        out.policy.load_state_dict(model.state_dict())
        return out

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.policy.hidden(idx)
        return self.policy.lm_head(h), self.value_head(h if self.value_moves_trunk else h.detach()).squeeze(-1)


def token_logprobs(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """log p(idx[:, t+1] | idx[:, :t+1]) for each t: (B, T-1), from logits (B, T, V) of the same sequences."""
    if logits.shape[:2] != idx.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match idx {tuple(idx.shape)}")
    return lm.target_logprobs(logits[:, :-1], idx[:, 1:])


def entropy_of(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each next-token distribution but the last: (B, T-1) from logits (B, T, V)."""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` where ``mask`` is 1 (over everything, or along ``dim``)."""
    if x.shape != mask.shape:
        raise ValueError(f"x {tuple(x.shape)} and mask {tuple(mask.shape)} must have the same shape")
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """``x`` scaled to unit variance over the masked entries (and centred unless ``shift_mean`` is False); entries
    outside the mask are returned as 0."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask) * mask.sum() / (mask.sum() - 1).clamp(min=1)  # unbiased
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return (out if shift_mean else out + mean) * mask


@dataclass
class Rollout:
    """Answers sampled by the policy, with what the later phases need (per-token tensors are (B, T-1))."""

    prompts: list[str]  # the user prompt of each row
    answers: list[str]  # the decoded answer of each row (without <|end|>)
    idx: torch.Tensor  # (B, T) prompt + answer, right-padded
    mask: torch.Tensor  # (B, T-1) float: 1 where the predicted token belongs to the answer
    logprobs: torch.Tensor  # (B, T-1) the sampling policy's log-probabilities of the tokens drawn
    values: torch.Tensor  # (B, T-1) the value head's estimate before each token
    extra: dict = field(default_factory=dict)  # anything else a caller keeps per row (e.g. the requests)


@torch.no_grad()
def rollout(model: PolicyWithValue, tokenizer: tok.Tokenizer, prompts: list[str], max_new_tokens: int = 48, *,
            temperature: float = 1.0, generator: torch.Generator | None = None) -> Rollout:
    """Phase 1: sample one answer per prompt (prompts of the same text are sampled together in one batch), cut
    each after its ``<|end|>``, and score the whole batch once with the policy and the value head."""
    if not prompts:
        raise ValueError("rollout needs at least one prompt")
    device, end, pad = next(model.parameters()).device, tokenizer.special_tokens[chat.END], \
        tokenizer.special_tokens[tok.PAD]
    rows: list[list[int] | None] = [None] * len(prompts)
    starts = [0] * len(prompts)
    for text in dict.fromkeys(prompts):  # each distinct prompt once, in order
        where = [i for i, p in enumerate(prompts) if p == text]
        ids, _ = chat.render_conversation(chat.conversation(text), tokenizer, add_generation_prompt=True)
        if len(ids) + max_new_tokens > model.config.block_size:
            raise ValueError(f"prompt of {len(ids)} tokens + {max_new_tokens} new ones exceeds block_size "
                             f"{model.config.block_size}: {text!r}")
        out = sampling.generate(model.policy, torch.tensor([ids] * len(where), device=device), max_new_tokens,
                                temperature=temperature, generator=generator)
        for i, row in zip(where, out[:, len(ids):].tolist()):
            rows[i] = ids + (row[:row.index(end) + 1] if end in row else row)
            starts[i] = len(ids)
    T = max(len(r) for r in rows)
    idx = torch.full((len(rows), T), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), T - 1)
    for i, r in enumerate(rows):
        idx[i, :len(r)] = torch.tensor(r)
        mask[i, starts[i] - 1:len(r) - 1] = 1.0  # predictions of tokens starts[i] .. len(r)-1
    idx, mask = idx.to(device), mask.to(device)
    with lm.eval_mode(model):
        logits, values = model(idx)
    answers = [tokenizer.decode([t for t in r[s:] if t != end]) for r, s in zip(rows, starts)]
    return Rollout(list(prompts), answers, idx, mask, token_logprobs(logits, idx) * mask, values[:, :-1] * mask)


def kl_penalized_rewards(scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor,
                         mask: torch.Tensor, kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Phase 3: per-token rewards (B, T-1): -kl_coef * (log pi - log pi_ref) on every answer token, plus the
    reward model's score (B,) on each row's last answer token. Also returns the per-token KL estimate."""
    if scores.shape != mask.shape[:1] or logprobs.shape != mask.shape or ref_logprobs.shape != mask.shape:
        raise ValueError(f"scores {tuple(scores.shape)} must be (B,) and log-probs {tuple(logprobs.shape)}, "
                         f"{tuple(ref_logprobs.shape)} (B, T-1) like mask {tuple(mask.shape)}")
    if not bool((mask.sum(1) > 0).all()):
        raise ValueError("every row needs at least one answer token in mask")
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = (mask * torch.arange(mask.size(1), device=mask.device)).argmax(1)  # each row's last answer position
    rewards[torch.arange(mask.size(0), device=mask.device), last] += scores
    return rewards, kl


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Phase 4: generalized advantage estimation over the answer tokens of each row: (advantages, returns).

    delta_t = r_t + gamma * V_{t+1} - V_t (V after the last answer token is 0), A_t = delta_t + gamma * lam *
    A_{t+1}; returns = A + V, the value head's targets. Entries outside ``mask`` are 0."""
    if not rewards.shape == values.shape == mask.shape:
        raise ValueError(f"rewards, values and mask must have one shape, got {tuple(rewards.shape)}, "
                         f"{tuple(values.shape)}, {tuple(mask.shape)}")
    values, rewards = values * mask, rewards * mask
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(rewards.size(0), device=rewards.device)
    next_advantage = torch.zeros_like(next_value)
    for t in reversed(range(rewards.size(1))):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = (delta + gamma * lam * next_advantage) * mask[:, t]
        next_value, next_advantage = values[:, t], advantages[:, t]  # 0 where the mask is 0: rows do not mix
    return advantages, (advantages + values) * mask


@dataclass
class PPOConfig:
    kl_coef: float = 0.05  # beta: weight of the per-token KL penalty to the reference
    gamma: float = 1.0  # discount over answer tokens
    lam: float = 0.95  # GAE's lambda
    clip_range: float = 0.2  # epsilon of the clipped policy ratio
    clip_range_value: float = 0.2  # how far a new value may move from the rollout's before its loss is clipped
    vf_coef: float = 0.1  # weight of the value loss
    ent_coef: float = 0.0  # weight of the entropy bonus
    ppo_epochs: int = 2  # passes over one rollout
    minibatch_size: int = 16
    learning_rate: float = 2e-4
    max_grad_norm: float = 1.0
    center_per_prompt: bool = True  # subtract the mean score of the other answers to the same prompt (leave-one-out)


def ppo_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, values: torch.Tensor,
             old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, entropy: torch.Tensor,
             config: PPOConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Phase 5: the clipped surrogate (Schulman et al., 2017) over the answer tokens, plus ``vf_coef`` times the
    clipped value loss, minus ``ent_coef`` times the entropy. Returns (loss, statistics)."""
    ratio = torch.exp(logprobs - old_logprobs)
    policy_losses = torch.max(-advantages * ratio,
                              -advantages * ratio.clamp(1 - config.clip_range, 1 + config.clip_range))
    policy_loss = masked_mean(policy_losses, mask)
    clipped_values = old_values + (values - old_values).clamp(-config.clip_range_value, config.clip_range_value)
    value_loss = 0.5 * masked_mean(torch.max((values - returns) ** 2, (clipped_values - returns) ** 2), mask)
    mean_entropy = masked_mean(entropy, mask)
    loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * mean_entropy
    with torch.no_grad():
        stats = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": mean_entropy.item(),
                 "clipfrac": masked_mean(((ratio - 1).abs() > config.clip_range).float(), mask).item(),
                 "approx_kl": masked_mean(0.5 * (logprobs - old_logprobs) ** 2, mask).item()}
    return loss, stats


def ppo_step(model: PolicyWithValue, optimizer: torch.optim.Optimizer, batch: Rollout, advantages: torch.Tensor,
             returns: torch.Tensor, config: PPOConfig, generator: torch.Generator | None = None) -> dict[str, float]:
    """``config.ppo_epochs`` passes over the rollout in shuffled minibatches, one optimizer step each; returns the
    statistics averaged over the minibatches."""
    model.train()
    B, totals, n = batch.idx.size(0), {}, 0
    for _ in range(config.ppo_epochs):
        order = torch.randperm(B, generator=generator).tolist()
        for i in range(0, B, config.minibatch_size):
            rows = order[i:i + config.minibatch_size]
            idx = batch.idx[rows]
            logits, values = model(idx)
            loss, stats = ppo_loss(token_logprobs(logits, idx), batch.logprobs[rows], advantages[rows],
                                   values[:, :-1], batch.values[rows], returns[rows], batch.mask[rows],
                                   entropy_of(logits), config)
            train.update(model, optimizer, loss, config.max_grad_norm)
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v
            n += 1
    model.eval()
    return {k: v / n for k, v in totals.items()}


def leave_one_out(scores: torch.Tensor, group: int) -> torch.Tensor:
    """Each score minus the mean of the other ``group - 1`` scores of its group (consecutive rows answer one
    prompt): what is left says how much better this answer is than the model's other tries at the same prompt."""
    if group < 2 or scores.numel() % group:
        raise ValueError(f"{scores.numel()} scores do not split into groups of {group} >= 2")
    g = scores.view(-1, group)
    return (g - (g.sum(1, keepdim=True) - g) / (group - 1)).view(-1)


def train_ppo(model: PolicyWithValue, reference: GPT, tokenizer: tok.Tokenizer, prompts: Sequence[str],
              score_fn: Callable[[list[str], list[str]], torch.Tensor], config: PPOConfig, iterations: int, *,
              prompts_per_iteration: int = 8, samples_per_prompt: int = 4, max_new_tokens: int = 36,
              gold_fn: Callable[[list[int], list[str]], list[float]] | None = None, seed: int = 0,
              progress: bool = True) -> dict[str, list[float]]:
    """PPO's outer loop: each iteration takes the next ``prompts_per_iteration`` prompts (cycling), samples
    ``samples_per_prompt`` answers to each, and runs the five phases. ``score_fn(prompts, answers)`` is the reward
    (the reward model); ``gold_fn(prompt indices, answers)``, if given, is only recorded, never optimised.
    Returns per iteration: the mean score, gold, KL to the reference (summed over an answer's tokens), answer
    length, and ``ppo_step``'s statistics."""
    if not prompts:
        raise ValueError("train_ppo needs at least one prompt")
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    reference.to(device).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=(0.9, 0.95), weight_decay=0.0)
    gen = torch.Generator(device=device).manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {}
    start = time.perf_counter()
    bar = tqdm(range(iterations), desc="PPO", disable=not progress)
    for it in bar:
        which = [(it * prompts_per_iteration + j) % len(prompts) for j in range(prompts_per_iteration)]
        rows = [i for i in which for _ in range(samples_per_prompt)]
        batch = rollout(model, tokenizer, [prompts[i] for i in rows], max_new_tokens, generator=gen)
        with torch.no_grad():
            scores = score_fn(batch.prompts, batch.answers).to(device).float()
            ref_logprobs = token_logprobs(reference(batch.idx)[0], batch.idx) * batch.mask
        rewarded = leave_one_out(scores, samples_per_prompt) if config.center_per_prompt else scores
        rewards, kl = kl_penalized_rewards(rewarded, batch.logprobs, ref_logprobs, batch.mask, config.kl_coef)
        advantages, returns = gae(rewards, batch.values, batch.mask, config.gamma, config.lam)
        stats = ppo_step(model, optimizer, batch, whiten(advantages, batch.mask), returns, config, shuffle)
        record = {"iteration": it, "score": scores.mean().item(), "kl": kl.sum(1).mean().item(),
                  "length": batch.mask.sum(1).mean().item(), **stats, "seconds": time.perf_counter() - start}
        if gold_fn is not None:
            record["gold"] = sum(gold_fn(rows, batch.answers)) / len(rows)
        for k, v in record.items():
            history.setdefault(k, []).append(float(v))
        bar.set_postfix(score=f"{record['score']:+.2f}", kl=f"{record['kl']:.1f}")
    return history
