"""DPO: the loss on a hand-worked example, the answer's log-probability, and a few steps that prefer the chosen."""

import math

import pytest
import torch

from helpers import chat, dpo, gpt, train
from helpers import tokenizer as tok


def _byte_tokenizer():
    specials = [tok.BOS, tok.PAD, chat.END, *chat.ROLE_TOKENS.values()]
    return tok.Tokenizer({bytes([b]): b for b in range(256)}, "gpt4", {s: 256 + i for i, s in enumerate(specials)})


def test_dpo_loss_by_hand():
    # pair 1: the policy raised the chosen answer by 2 nats and lowered the rejected by 1 (relative to ref)
    # pair 2: nothing moved
    loss, r_c, r_r = dpo.dpo_loss(torch.tensor([-3.0, -5.0]), torch.tensor([-7.0, -4.0]), torch.tensor([-5.0, -5.0]),
                                  torch.tensor([-6.0, -4.0]), beta=0.5)
    torch.testing.assert_close(r_c, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(r_r, torch.tensor([-0.5, 0.0]))
    by_hand = (math.log(1 + math.exp(-1.5)) + math.log(2)) / 2
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    # only the log-ratios count: the same shift of policy and reference changes nothing
    shifted, _, _ = dpo.dpo_loss(torch.tensor([-13.0]), torch.tensor([-7.0]), torch.tensor([-15.0]),
                                 torch.tensor([-6.0]), beta=0.5)
    assert shifted.item() == pytest.approx(math.log(1 + math.exp(-1.5)), rel=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        dpo.dpo_loss(torch.zeros(2), torch.zeros(3), torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="beta"):
        dpo.dpo_loss(torch.zeros(1), torch.zeros(1), torch.zeros(1), torch.zeros(1), beta=0.0)


def test_answer_logprobs_sum_the_answer_tokens_only():
    torch.manual_seed(0)
    tk = _byte_tokenizer()
    model = gpt.GPT(gpt.GPTConfig(vocab_size=tk.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16)).eval()
    got = dpo.answer_logprobs(model, tk, ["Hi", "Tell me"], ["yes", "no way"])
    for b, (prompt, answer) in enumerate((("Hi", "yes"), ("Tell me", "no way"))):
        ids, mask = chat.render_conversation(chat.conversation(prompt, answer), tk)
        logp = torch.log_softmax(model(torch.tensor([ids]))[0][0], -1)
        expected = sum(logp[t, ids[t + 1]] for t in range(len(ids) - 1) if mask[t + 1])
        assert got[b].item() == pytest.approx(expected.item(), rel=1e-5)
        assert sum(mask) == len(answer) + 1  # the answer's bytes and its <|end|>
    with pytest.raises(ValueError, match="one answer per prompt"):
        dpo.answer_logprobs(model, tk, ["Hi"], [])


def test_dpo_training_prefers_the_chosen_answers_and_keeps_the_reference():
    torch.manual_seed(0)
    tk = _byte_tokenizer()
    policy = gpt.GPT(gpt.GPTConfig(vocab_size=tk.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16))
    reference = gpt.GPT(policy.config)
    reference.load_state_dict(policy.state_dict())
    frozen = {k: v.clone() for k, v in reference.state_dict().items()}
    pairs = [("Rate", "good", "bad"), ("Rate it", "good", "awful")]
    config = train.TrainConfig(max_steps=30, batch_size=4, learning_rate=3e-3, warmup_steps=2, weight_decay=0.0)
    history = dpo.train_dpo(policy, reference, tk, pairs, config, beta=0.5)
    assert history["loss"][0] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at the start
    assert history["loss"][-1] < 0.2 and history["accuracy"][-1] == 1.0
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in frozen.items())
    with torch.no_grad():
        moved = [(dpo.answer_logprobs(policy, tk, ["Rate"], [a]) - dpo.answer_logprobs(reference, tk, ["Rate"], [a]))
                 .item() for a in ("good", "bad")]
    assert moved[0] > moved[1]
