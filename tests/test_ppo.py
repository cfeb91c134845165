"""PPO's phases, one by one: GAE by hand and against a plain loop, whitening, the KL-penalised rewards, the
clipped losses, a rollout's bookkeeping, and a few PPO steps that raise a toy reward."""

import random

import pytest
import torch
import torch.nn as nn

from helpers import chat, gpt, ppo
from helpers import tokenizer as tok


def _byte_tokenizer():
    specials = [tok.BOS, tok.PAD, chat.END, *chat.ROLE_TOKENS.values()]
    return tok.Tokenizer({bytes([b]): b for b in range(256)}, "gpt4", {s: 256 + i for i, s in enumerate(specials)})


def test_gae_by_hand():
    # one prompt position, three answer tokens, one padding position
    rewards = torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[9.0, 0.5, 0.2, 0.4, 9.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0, 1.0, 0.0]])
    advantages, returns = ppo.gae(rewards, values, mask, gamma=1.0, lam=0.5)
    # delta = (0 + 0.2 - 0.5, 0 + 0.4 - 0.2, 1 + 0 - 0.4); A_t = delta_t + 0.5 A_{t+1}
    torch.testing.assert_close(advantages, torch.tensor([[0.0, -0.05, 0.5, 0.6, 0.0]]))
    torch.testing.assert_close(returns, torch.tensor([[0.0, 0.45, 0.7, 1.0, 0.0]]))


def plain_gae(rewards, values, gamma, lam):
    """GAE of one sequence of answer tokens, written as the textbook's sum: A_t = sum_l (gamma lam)^l delta_{t+l}."""
    n = len(rewards)
    deltas = [rewards[t] + gamma * (values[t + 1] if t + 1 < n else 0.0) - values[t] for t in range(n)]
    return [sum((gamma * lam) ** (u - t) * deltas[u] for u in range(t, n)) for t in range(n)]


def test_gae_matches_the_textbook_sum_on_ragged_rows():
    rng = random.Random(0)
    B, T = 5, 12
    rewards, values, mask = torch.randn(B, T), torch.randn(B, T), torch.zeros(B, T)
    spans = []
    for b in range(B):
        start = rng.randrange(0, 5)
        end = rng.randrange(start + 1, T + 1)
        mask[b, start:end] = 1
        spans.append((start, end))
    advantages, returns = ppo.gae(rewards, values, mask, gamma=0.9, lam=0.8)
    for b, (start, end) in enumerate(spans):
        expected = plain_gae(rewards[b, start:end].tolist(), values[b, start:end].tolist(), 0.9, 0.8)
        torch.testing.assert_close(advantages[b, start:end], torch.tensor(expected), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(returns[b, start:end], advantages[b, start:end] + values[b, start:end])
    assert (advantages[mask == 0] == 0).all() and (returns[mask == 0] == 0).all()
    with pytest.raises(ValueError, match="one shape"):
        ppo.gae(rewards, values[:, 1:], mask)


def test_whiten_and_masked_mean_ignore_what_is_masked():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, -50.0, 4.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    assert ppo.masked_mean(x, mask).item() == pytest.approx(2.5)
    torch.testing.assert_close(ppo.masked_mean(x, mask, dim=1), torch.tensor([1.5, 3.5]))
    w = ppo.whiten(x, mask)
    kept = w[mask == 1]
    assert kept.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert kept.var().item() == pytest.approx(1.0, rel=1e-4)
    assert (w[mask == 0] == 0).all()
    assert ppo.whiten(x, mask, shift_mean=False)[mask == 1].mean().item() == pytest.approx(2.5, rel=1e-4)
    with pytest.raises(ValueError, match="same shape"):
        ppo.masked_mean(x, mask[:, :2])


def test_kl_penalised_rewards_put_the_score_on_the_last_answer_token():
    mask = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    logprobs = torch.tensor([[-9.0, -1.0, -2.0, -9.0], [-1.0, -1.0, -1.0, -1.0]])
    ref = torch.tensor([[-1.0, -1.5, -1.0, -1.0], [-1.0, -2.0, -1.0, -0.5]])
    rewards, kl = ppo.kl_penalized_rewards(torch.tensor([3.0, -1.0]), logprobs, ref, mask, kl_coef=0.1)
    torch.testing.assert_close(kl, torch.tensor([[0.0, 0.5, -1.0, 0.0], [0.0, 1.0, 0.0, -0.5]]))
    torch.testing.assert_close(rewards, torch.tensor([[0.0, -0.05, 0.1 + 3.0, 0.0], [0.0, -0.1, 0.0, 0.05 - 1.0]]))
    with pytest.raises(ValueError, match="at least one answer token"):
        ppo.kl_penalized_rewards(torch.zeros(2), logprobs, ref, torch.zeros(2, 4), 0.1)


def test_the_clipped_policy_loss_stops_pushing_past_the_clip():
    config = ppo.PPOConfig(clip_range=0.2, vf_coef=0.0)
    mask, zeros = torch.ones(1, 1), torch.zeros(1, 1)

    def grad_at(ratio, advantage):
        logp = torch.tensor([[float(torch.log(torch.tensor(ratio)))]], requires_grad=True)
        loss, stats = ppo.ppo_loss(logp, zeros, torch.tensor([[advantage]]), zeros, zeros, zeros, mask, zeros, config)
        loss.backward()
        return logp.grad.item(), loss.item(), stats

    g, loss, stats = grad_at(1.0, 2.0)
    assert loss == pytest.approx(-2.0) and g == pytest.approx(-2.0) and stats["clipfrac"] == 0.0
    g, loss, stats = grad_at(1.5, 2.0)  # already more likely than the clip allows: no further push
    assert g == 0.0 and loss == pytest.approx(-2.0 * 1.2) and stats["clipfrac"] == 1.0
    g, _, _ = grad_at(1.5, -2.0)  # a bad action made more likely: the unclipped (larger) loss keeps its gradient
    assert g > 0
    g, _, _ = grad_at(0.5, -2.0)  # a bad action already made much less likely: no further push
    assert g == 0.0


def test_the_value_loss_is_clipped_around_the_rollouts_values():
    config = ppo.PPOConfig(clip_range_value=0.2, vf_coef=1.0)
    one, zero = torch.ones(1, 1), torch.zeros(1, 1)
    values = torch.tensor([[1.0]], requires_grad=True)  # moved from 0 to 1; target 2: both errors, max is kept
    loss, stats = ppo.ppo_loss(zero, zero, zero, values, zero, 2 * one, one, zero, config)
    assert stats["value_loss"] == pytest.approx(0.5 * (2 - 0.2) ** 2)  # the clipped value 0.2 is further off
    loss.backward()
    assert values.grad.item() == 0.0  # the worse, clipped error does not depend on the new value


def test_the_value_loss_trains_the_head_and_leaves_the_trunk_unless_asked():
    cfg = gpt.GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=2, n_embd=16)
    idx = torch.randint(32, (2, 8), generator=torch.Generator().manual_seed(0))
    for moves in (False, True):
        torch.manual_seed(0)
        model = ppo.PolicyWithValue(cfg, value_moves_trunk=moves)
        nn.init.normal_(model.value_head.weight)  # the zero init would hide the trunk's gradient
        logits, values = model(idx)
        values.pow(2).sum().backward()  # a value loss alone
        assert model.value_head.weight.grad.abs().sum() > 0
        trunk = sum(p.grad.abs().sum().item() for p in model.policy.parameters() if p.grad is not None)
        assert (trunk > 0) == moves
    torch.testing.assert_close(model(idx)[0], model.policy(idx)[0])  # the policy's logits are the GPT's


def test_rollout_bookkeeping():
    torch.manual_seed(0)
    tk = _byte_tokenizer()
    model = ppo.PolicyWithValue(gpt.GPTConfig(vocab_size=tk.vocab_size, block_size=96, n_layer=1, n_head=2, n_embd=16))
    prompts = ["Hi", "Say more", "Hi"]
    batch = ppo.rollout(model, tk, prompts, max_new_tokens=6, generator=torch.Generator().manual_seed(1))
    assert batch.prompts == prompts and len(batch.answers) == 3
    end = tk.special_tokens[chat.END]
    for b, prompt in enumerate(prompts):
        ids, _ = chat.render_conversation(chat.conversation(prompt), tk, add_generation_prompt=True)
        assert batch.idx[b, :len(ids)].tolist() == ids
        answer_ids = batch.idx[b, 1:][batch.mask[b] == 1].tolist()  # the tokens the mask marks
        assert 1 <= len(answer_ids) <= 6 and (end not in answer_ids[:-1])
        assert batch.mask[b, :len(ids) - 1].sum() == 0
        assert tk.decode([t for t in answer_ids if t != end]) == batch.answers[b]
    logits, values = model(batch.idx)
    torch.testing.assert_close(batch.logprobs, ppo.token_logprobs(logits, batch.idx) * batch.mask)
    torch.testing.assert_close(batch.values, values[:, :-1] * batch.mask)
    with pytest.raises(ValueError, match="exceeds block_size"):
        ppo.rollout(model, tk, ["x" * 90], max_new_tokens=6)


def test_leave_one_out_compares_each_answer_with_its_siblings():
    out = ppo.leave_one_out(torch.tensor([1.0, 2.0, 3.0, 10.0, 10.0, 10.0]), 3)
    torch.testing.assert_close(out, torch.tensor([-1.5, 0.0, 1.5, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="groups of 4"):
        ppo.leave_one_out(torch.zeros(6), 4)


def test_ppo_raises_a_toy_reward_and_records_its_curves():
    """Reward: the share of 'a' bytes in the answer. A few iterations of every phase must raise it."""
    torch.manual_seed(0)
    tk = _byte_tokenizer()
    model = ppo.PolicyWithValue(gpt.GPTConfig(vocab_size=tk.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16))
    ref = ppo.PolicyWithValue.from_language_model(model.policy).policy.eval()
    config = ppo.PPOConfig(learning_rate=1e-2, minibatch_size=8, ppo_epochs=4, kl_coef=0.01)

    def share_of_a(prompts, answers):
        return torch.tensor([a.count("a") / max(1, len(a)) for a in answers])

    history = ppo.train_ppo(model, ref, tk, ["Go", "Run"], share_of_a, config, 60, prompts_per_iteration=4,
                            samples_per_prompt=4, max_new_tokens=4, gold_fn=lambda rows, answers: [0.0] * len(rows),
                            progress=False)
    assert {"score", "gold", "kl", "entropy", "clipfrac", "approx_kl", "value_loss", "length"} <= set(history)
    assert all(len(v) == 60 for v in history.values())
    means = history["score"]
    assert sum(means[-5:]) / 5 > sum(means[:5]) / 5 + 0.2
    assert history["kl"][-1] > history["kl"][0]  # it moved away from the reference to get there
