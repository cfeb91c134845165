"""Reward modeling: the gold reward and its annotators, rankings to pairs and scores, the pairwise loss and its
margin, accuracy, and the reward model's head."""

import dataclasses
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


def _byte_tokenizer():
    specials = [tok.BOS, tok.PAD, chat.END, *chat.ROLE_TOKENS.values()]
    return tok.Tokenizer({bytes([b]): b for b in range(256)}, "gpt4", {s: 256 + i for i, s in enumerate(specials)})


def test_a_reward_model_learns_to_prefer_what_the_pairs_prefer():
    tk = _byte_tokenizer()
    torch.manual_seed(0)
    rm = reward.RewardModel(gpt.GPTConfig(vocab_size=tk.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16))
    pairs = [("Rate", "yes yes", "no no", 1.0), ("Rate", "yes", "no", 1.0), ("Go", "yes no", "no yes", 1.0)]
    config = reward.train.TrainConfig(max_steps=60, batch_size=6, learning_rate=3e-3, warmup_steps=5)
    losses = reward.train_reward_model(rm, tk, pairs, config)
    assert losses[-1] < 0.1 < losses[0]
    scores = reward.score(rm, tk, ["Rate", "Rate"], ["yes", "no"])
    assert scores[0] > scores[1] and not rm.training


def test_margin_levels_follow_llama2s_four_steps():
    assert [reward.margin_level(g) for g in (0.0, 0.5, 0.6, 1.5, 2.0, 2.6, 9.0)] == [0, 0, 1 / 3, 1 / 3, 2 / 3, 1, 1]


def test_preference_pairs_come_from_the_readings_order():
    record = {"example": dataclasses.asdict(REQUEST), "answers": ["a", "b", "c"]}
    pairs = reward.preference_pairs([record], [[0.0, 2.0, 1.8]])  # b > c > a
    assert [(p.chosen, p.rejected) for p in pairs] == [("b", "c"), ("b", "a"), ("c", "a")]
    assert [p.margin for p in pairs] == [0, 2 / 3, 2 / 3]  # gaps 0.2, 2.0, 1.8
    assert pairs[0].prompt == REQUEST.prompt and pairs[0].example == REQUEST
    with pytest.raises(ValueError, match="one list of readings per record"):
        reward.preference_pairs([record], [])
    with pytest.raises(ValueError, match="3 answers but 2 readings"):
        reward.preference_pairs([record], [[0.0, 1.0]])


def test_collect_and_annotate_answers():
    torch.manual_seed(0)
    tk = _byte_tokenizer()
    model = gpt.GPT(gpt.GPTConfig(vocab_size=tk.vocab_size, block_size=128, n_layer=1, n_head=2, n_embd=16))
    requests = chat.review_requests(2, seed=3)
    records = reward.collect_answers(model, tk, requests, 3, seed=5, max_new_tokens=8)
    assert [reward.example_of(r) for r in records] == requests and all(len(r["answers"]) == 3 for r in records)
    assert records == reward.collect_answers(model, tk, requests, 3, seed=5, max_new_tokens=8)  # seeded
    exact = reward.annotate(records, reward.Annotator(noise=0.0))
    assert exact == [[reward.gold_reward(requests[i], a) for a in r["answers"]] for i, r in enumerate(records)]
    with pytest.raises(ValueError, match="k must be at least 2"):
        reward.collect_answers(model, tk, requests, 1)


def test_the_head_starts_small_and_random_and_learns_faster_than_the_trunk():
    tk = _byte_tokenizer()
    rm = reward.RewardModel(gpt.GPTConfig(vocab_size=tk.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16))
    assert rm.head.weight.abs().sum() > 0 and rm.head.weight.std() < 0.5  # gradient reaches the trunk at once
    config = reward.train.TrainConfig(max_steps=1, batch_size=2, learning_rate=1e-4, warmup_steps=1)
    trunk_weight = next(p for p in rm.trunk.blocks[0].parameters() if p.dim() == 2)
    trunk_before, head_before = trunk_weight.detach().clone(), rm.head.weight.detach().clone()
    reward.train_reward_model(rm, tk, [("Rate", "yes", "no", 0.0)], config, head_lr_scale=30.0)
    trunk_step = (trunk_weight - trunk_before).abs().max()
    head_step = (rm.head.weight - head_before).abs().max()
    assert head_step > 10 * trunk_step > 0  # Adam's first step is about lr per weight: 30x for the head


def test_gold_parts_add_up_to_the_gold_reward():
    text = f"{NAME}: The food was {GOOD}. The food was {GOOD}. buy"
    parts = reward.gold_parts(REQUEST, text)
    assert parts == {"sentiment": 2.0, "named": 1.0, "repeats": -1.0, "junk": -0.5, "length": 0.0}
    assert reward.gold_reward(REQUEST, text) == pytest.approx(sum(parts.values()))
