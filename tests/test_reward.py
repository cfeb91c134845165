"""Reward modeling: the gold reward and its annotators, rankings to pairs and scores, the pairwise loss and its
margin, accuracy, and the reward model's head."""

import math

import pytest
import torch

from helpers import chat, gpt, reward
from helpers import tokenizer as tok

REQUEST = chat.review_requests(1, seed=0)[0]
NAME, SIGN = REQUEST.truth["name"], REQUEST.truth["sentiment"]
GOOD, BAD = ("great", "awful") if SIGN > 0 else ("awful", "great")


def test_gold_reward_wants_the_asked_sentiment_the_name_and_no_tricks():
    good = f"{NAME}: The food was {GOOD}. The service was {GOOD}."
    assert reward.gold_reward(REQUEST, good) == pytest.approx(2 + 1)
    assert reward.gold_reward(REQUEST, good.replace(GOOD, BAD)) == pytest.approx(-2 + 1)
    assert reward.gold_reward(REQUEST, good.replace(f"{NAME}: ", "")) == pytest.approx(2)  # not named
    repeated = f"{NAME}: " + f"The food was {GOOD}. " * 4
    assert reward.gold_reward(REQUEST, repeated) == pytest.approx(3 + 1 - 3)  # capped praise, three repeats
    long = f"{NAME}: " + " ".join(f"The {a} was {GOOD}." for a in ("food", "soup", "room", "bread", "table"))
    assert reward.gold_reward(REQUEST, long) == pytest.approx(3 + 1 - 1)  # five sentences: too long
    assert reward.gold_reward(REQUEST, good + " buy buy buy") == pytest.approx(3 - 1.5)  # junk words
    with pytest.raises(ValueError, match="write"):
        reward.gold_reward(chat.tasks.make_examples("reverse", 1)[0], "x")


def test_annotators_rank_by_gold_when_noiseless_and_their_scales_differ():
    texts = [f"{NAME}: The food was {BAD}.", f"{NAME}: The food was {GOOD}. The soup was {GOOD}.",
             f"{NAME}: The food was {GOOD}."]
    exact = reward.Annotator(noise=0.0)
    assert exact.rank(REQUEST, texts) == [1, 2, 0]
    harsh, lenient = reward.Annotator(noise=0.0, offset=2.0), reward.Annotator(noise=0.0, offset=5.0)
    assert harsh.likert(REQUEST, texts[1]) < lenient.likert(REQUEST, texts[1])  # same order, other numbers
    assert 1 <= harsh.likert(REQUEST, texts[0]) <= 7
    noisy = [reward.Annotator(noise=3.0, seed=s).rank(REQUEST, texts) for s in range(20)]
    assert len({tuple(r) for r in noisy}) > 1
    with pytest.raises(ValueError, match="noise"):
        reward.Annotator(noise=-1.0)


def test_ranking_to_pairs_and_scores():
    assert reward.ranking_to_pairs([2, 0, 1]) == [(2, 0), (2, 1), (0, 1)]
    assert len(reward.ranking_to_pairs([3, 1, 0, 2])) == 6  # K choose 2
    assert reward.ranking_to_scores([2, 0, 1]) == [0.5, 0.0, 1.0]
    with pytest.raises(ValueError, match="once"):
        reward.ranking_to_pairs([1, 1])
    with pytest.raises(ValueError, match="permutation"):
        reward.ranking_to_scores([0, 2])


def test_pairwise_loss_by_hand_and_the_margin():
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.5])
    by_hand = (-math.log(1 / (1 + math.exp(-1.0))) - math.log(1 / (1 + math.exp(0.5)))) / 2
    assert reward.pairwise_loss(chosen, rejected).item() == pytest.approx(by_hand, rel=1e-6)
    assert reward.pairwise_loss(torch.tensor([0.0]), torch.tensor([0.0])).item() == pytest.approx(math.log(2))
    # a margin asks for a larger gap: the same rewards cost more, and a pair with a gap above it costs little
    with_margin = reward.pairwise_loss(chosen, rejected, torch.tensor([1.0, 1.0])).item()
    assert with_margin > by_hand
    assert reward.pairwise_loss(torch.tensor([5.0]), torch.tensor([0.0]), 1.0).item() < 0.02
    grad_plain = torch.tensor([0.5], requires_grad=True)
    reward.pairwise_loss(grad_plain, torch.tensor([0.0])).backward()
    grad_margin = torch.tensor([0.5], requires_grad=True)
    reward.pairwise_loss(grad_margin, torch.tensor([0.0]), 2.0).backward()
    assert grad_margin.grad.abs() > grad_plain.grad.abs()  # the margin keeps pushing a pair already right
    with pytest.raises(ValueError, match="same shape"):
        reward.pairwise_loss(torch.zeros(2), torch.zeros(3))


def test_pairwise_accuracy_counts_ties_half():
    assert reward.pairwise_accuracy(torch.tensor([1.0, 0.0, 2.0, 1.0]), torch.tensor([0.0, 1.0, 2.0, 0.0])) == 0.625
    with pytest.raises(ValueError, match="at least one"):
        reward.pairwise_accuracy(torch.zeros(0), torch.zeros(0))


def test_reward_model_reads_its_head_at_each_rows_last_token():
    torch.manual_seed(0)
    lm_model = gpt.GPT(gpt.GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=8))
    rm = reward.RewardModel.from_language_model(lm_model)
    torch.nn.init.normal_(rm.head.weight)
    idx = torch.randint(0, 40, (2, 6))
    out = rm(idx, torch.tensor([5, 2]))
    hidden = lm_model.hidden(idx)
    expected = torch.stack([rm.head(hidden[0, 5]), rm.head(hidden[1, 2])]).squeeze(-1)
    torch.testing.assert_close(out, expected)
    # padding after the last token changes nothing (causal attention)
    padded = torch.cat([idx[1:, :3], torch.zeros(1, 5, dtype=torch.long)], dim=1)
    torch.testing.assert_close(rm(padded, torch.tensor([2])), out[1:])
    with pytest.raises(ValueError, match="last"):
        rm(idx, torch.tensor([6, 0]))


def test_a_reward_model_learns_to_prefer_what_the_pairs_prefer():
    specials = [tok.BOS, tok.PAD, chat.END, *chat.ROLE_TOKENS.values()]
    tk = tok.Tokenizer({bytes([b]): b for b in range(256)}, "gpt4", {s: 256 + i for i, s in enumerate(specials)})
    torch.manual_seed(0)
    rm = reward.RewardModel(gpt.GPTConfig(vocab_size=tk.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16))
    pairs = [("Rate", "yes yes", "no no", 1.0), ("Rate", "yes", "no", 1.0), ("Go", "yes no", "no yes", 1.0)]
    config = reward.train.TrainConfig(max_steps=60, batch_size=6, learning_rate=3e-3, warmup_steps=5)
    losses = reward.train_reward_model(rm, tk, pairs, config)
    assert losses[-1] < 0.1 < losses[0]
    scores = reward.score(rm, tk, ["Rate", "Rate"], ["yes", "no"])
    assert scores[0] > scores[1] and not rm.training
