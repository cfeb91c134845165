"""Few-shot prompting: prompts, label-word scoring, contextual calibration, soft prompts (notebook 06)."""

import random

import pytest
import torch

from helpers import gpt, lm, prompting
from helpers import tokenizer as tok

# Bytes, plus " x" and " y" as single tokens, so that one-token and several-token label words both occur.
TOKENIZER = tok.Tokenizer({**{bytes([b]): b for b in range(256)}, b" x": 256, b" y": 257}, "gpt4", {tok.BOS: 258})


def tiny_model(pos="rope", seed=0):
    torch.manual_seed(seed)
    config = gpt.GPTConfig(vocab_size=259, block_size=96, n_layer=2, n_head=2, n_embd=16, pos=pos)
    return gpt.GPT(config).eval()


def manual_logprob(model, prompt, word):
    """log P(" word" | BOS + prompt), one token at a time, with no batching or padding."""
    ids = [258] + TOKENIZER.encode_ordinary(prompt)
    total = 0.0
    for t in TOKENIZER.encode_ordinary(" " + word):
        logits, _ = model(torch.tensor([ids]))
        total += torch.log_softmax(logits[0, -1], -1)[t].item()
        ids.append(t)
    return total


def test_k_shot_prompt_writes_shots_with_their_labels_and_leaves_the_query_blank():
    shots = [("Fine food.", 1), ("Cold soup.", -1)]
    prompt = prompting.k_shot_prompt(shots, "Nice view.", ("good", "bad"))
    assert prompt == ("Review: Fine food.\nSentiment: good\nReview: Cold soup.\nSentiment: bad\n"
                      "Review: Nice view.\nSentiment:")
    assert prompting.k_shot_prompt([], "Nice.", template="{review} => {label}") == "Nice. =>"
    with pytest.raises(ValueError, match="template"):
        prompting.k_shot_prompt(shots, "x", template="Review: {review}")
    with pytest.raises(ValueError, match="labels"):
        prompting.k_shot_prompt(shots, "x", ("good", "good"))
    with pytest.raises(ValueError, match="sentiment"):
        prompting.k_shot_prompt([("x", 0)], "x")


def test_draw_shots_follows_the_order_and_never_uses_the_query():
    pool = [(f"r{i}", 1 if i % 2 else -1) for i in range(20)]
    shots = prompting.draw_shots(pool, 4, random.Random(0), order="++--")
    assert [s for _, s in shots] == [1, 1, -1, -1] and len(set(shots)) == 4
    assert all(t != "r3" for t, _ in prompting.draw_shots(pool, 19, random.Random(1), exclude="r3"))
    with pytest.raises(ValueError, match="order"):
        prompting.draw_shots(pool, 3, random.Random(0), order="++")
    with pytest.raises(ValueError, match="fewer"):
        prompting.draw_shots(pool, 21, random.Random(0))
    with pytest.raises(ValueError, match="fewer than order"):
        prompting.draw_shots(pool, 11, random.Random(0), order="+" * 11)


def test_label_logprobs_equal_one_prompt_and_one_token_at_a_time():
    model = tiny_model()
    prompts = ["Review: ok\nSentiment:", "a", "Review: a much longer review than the first\nSentiment:"]
    words = ["x", "y", "good", "goat", "bad"]  # one-token words, and "good"/"goat" sharing their first tokens
    scores = prompting.label_logprobs(model, TOKENIZER, prompts, words, batch_size=2)
    want = torch.tensor([[manual_logprob(model, p, w) for w in words] for p in prompts])
    assert torch.allclose(scores, want, atol=1e-4)
    assert torch.allclose(prompting.label_logprobs(model, TOKENIZER, prompts, words, batch_size=16), scores,
                          atol=1e-4)


def test_label_logprobs_refuse_prompts_that_do_not_fit_and_bad_arguments():
    model = tiny_model()
    with pytest.raises(ValueError, match="block_size"):
        prompting.label_logprobs(model, TOKENIZER, ["z" * 200], ["x", "y"])
    with pytest.raises(ValueError, match="prompts"):
        prompting.label_logprobs(model, TOKENIZER, "a prompt", ["x", "y"])
    with pytest.raises(ValueError, match="words"):
        prompting.label_logprobs(model, TOKENIZER, ["a"], ["x", ""])


def test_predict_and_accuracy():
    scores = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert prompting.predict(scores).tolist() == [1, 0, 1]
    assert prompting.accuracy(prompting.predict(scores), [1, 1, 1]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="same non-empty shape"):
        prompting.accuracy(prompting.predict(scores), [1, 1])
    with pytest.raises(ValueError, match="scores"):
        prompting.predict(torch.tensor([0.1, 0.9]))


def test_calibrate_on_a_hand_worked_example():
    # The prompt gives "positive" 0.8 even for "N/A". A review scored 0.7 / 0.3 is then below the prompt's own
    # lean: 0.7 / 0.8 = 0.875 against 0.3 / 0.2 = 1.5, renormalised 0.368 / 0.632: calibrated, it is negative.
    calibrated = prompting.calibrate(torch.tensor([[0.7, 0.3], [0.9, 0.1]]), torch.tensor([0.8, 0.2]))
    assert torch.allclose(calibrated[0], torch.tensor([0.875 / 2.375, 1.5 / 2.375]))
    assert prompting.predict(calibrated).tolist() == [1, 0]
    probs = torch.tensor([[0.6, 0.4], [0.2, 0.8]])
    assert torch.allclose(prompting.calibrate(probs, torch.tensor([0.5, 0.5])), probs)  # a fair prompt: no change
    per_prompt = prompting.calibrate(probs, torch.tensor([[0.6, 0.4], [0.5, 0.5]]))  # one content-free row each
    assert torch.allclose(per_prompt, torch.tensor([[0.5, 0.5], [0.2, 0.8]]))
    with pytest.raises(ValueError, match="content_free"):
        prompting.calibrate(probs, torch.tensor([0.3, 0.3, 0.4]))
    with pytest.raises(ValueError, match="> 0"):
        prompting.calibrate(probs, torch.tensor([1.0, 0.0]))


@pytest.mark.parametrize("pos", ["rope", "learned"])
def test_a_prefix_of_token_embeddings_equals_feeding_those_tokens(pos):
    model = tiny_model(pos)
    ids = torch.randint(0, 259, (2, 12))
    full, _ = model(ids)
    prefixed, _ = model(ids[:, 4:], prefix=model.wte(ids[:, :4]))  # (B, P, C): one prefix per row
    assert torch.allclose(prefixed, full[:, 4:], atol=1e-5)
    shared, _ = model(ids[:1, 4:], prefix=model.wte(ids[0, :4]))  # (P, C): the same prefix for every row
    assert torch.allclose(shared, full[:1, 4:], atol=1e-5)
    with pytest.raises(ValueError, match="prefix must have shape"):
        model(ids, prefix=torch.zeros(3, 7))
    with pytest.raises(ValueError, match="block_size"):
        model(ids, prefix=torch.zeros(90, 16))
    with pytest.raises(ValueError, match="cache"):
        model(ids, prefix=torch.zeros(3, 16), cache=model.new_cache())


def test_label_batch_puts_targets_on_the_answer_tokens_only():
    ids, targets = prompting.label_batch(TOKENIZER, ["ab", "a"], ["x", "no"])
    assert ids.tolist() == [[258, 97, 98, 0], [258, 97, 32, 110]]
    assert targets.tolist() == [[-1, -1, 256, -1], [-1, 32, 110, 111]]  # " x" one token; " no" three bytes


def test_soft_prompt_gradients_reach_only_the_prompt_and_it_learns():
    model = tiny_model()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    soft = prompting.SoftPrompt(model, 4)
    start = soft.vectors.detach().clone()
    prompts, answers = ["a", "b", "c", "d"] * 4, ["x", "y", "x", "y"] * 4
    ids, targets = prompting.label_batch(TOKENIZER, prompts, answers)
    with torch.no_grad():
        loss_before = model(ids, targets, prefix=soft())[1].item()
    result = prompting.train_labels(model, TOKENIZER, prompts, answers, soft_prompt=soft, steps=30, lr=0.05)
    assert result["trained"] == 4 * 16
    assert all(torch.equal(p, before[name]) and p.grad is None for name, p in model.named_parameters())
    assert all(p.requires_grad for p in model.parameters())  # restored after training
    assert not model.training  # and so is the mode
    assert not torch.equal(soft.vectors, start) and soft.vectors.grad is not None
    with torch.no_grad():  # a random tiny model barely listens to a prefix; notebook 06 shows a trained one does
        assert model(ids, targets, prefix=soft())[1].item() < loss_before - 0.01
    with pytest.raises(ValueError, match="n must be"):
        prompting.SoftPrompt(model, 0)


def test_train_labels_without_a_soft_prompt_fine_tunes_every_parameter():
    model = tiny_model()
    prompts, answers = ["a", "b"] * 4, ["x", "y"] * 4
    result = prompting.train_labels(model, TOKENIZER, prompts, answers, steps=40, lr=1e-2)
    assert result["trained"] == sum(p.numel() for p in model.parameters())
    assert result["losses"][-1] < 0.1 < result["losses"][0]
    scores = prompting.label_logprobs(model, TOKENIZER, ["a", "b"], ["x", "y"])
    assert prompting.predict(scores).tolist() == [0, 1]


def test_sentiment_pool_is_short_seeded_and_balanced_enough():
    pool = prompting.sentiment_pool(200, seed=4)
    assert len(pool) == 200 and pool == prompting.sentiment_pool(200, seed=4)
    assert all(text.count(".") <= 3 and s in (1, -1) for text, s in pool)
    assert 0.35 < sum(s > 0 for _, s in pool) / 200 < 0.65
    assert set(pool).isdisjoint(prompting.sentiment_pool(200, seed=5))
    with pytest.raises(ValueError, match="n must be"):
        prompting.sentiment_pool(0)


def test_the_ignore_index_is_the_shared_one():
    assert prompting.label_batch(TOKENIZER, ["a"], ["x"])[1][0, 0].item() == lm.IGNORE_INDEX
