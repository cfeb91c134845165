import math
import random

import numpy as np
import pytest
import torch

from helpers import artifacts, ngram, ngram_lm, sampling, train

SMOOTHED = ["add-k", "interpolation", "kneser-ney"]


def random_text(length=400, alphabet="abcde ", seed=0):
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


# The language-model contract

def char_model(smoothing="kneser-ney", n=3):
    ids = [ord(c) - ord("a") for c in random_text(600, "abcdef")]
    return ngram.CountLM(ngram.count(ids, n, vocab=range(6)), n, smoothing), ids


@pytest.mark.parametrize("smoothing", SMOOTHED)
def test_dense_model_matches_count_model(smoothing):
    model, ids = char_model(smoothing)
    lm = ngram_lm.NGramLM.from_counts(model)
    x = torch.tensor([ids[:50], ids[50:100]])
    logits, loss = lm(x[:, :-1], x[:, 1:])
    assert logits.shape == (2, 49, 6)
    assert torch.allclose(logits.exp().sum(-1), torch.ones(2, 49))
    expected = [model.log_probs(row)[1:] for row in x.tolist()]  # the first token has no context
    assert torch.allclose(logits.gather(-1, x[:, 1:, None]).squeeze(-1), torch.tensor(expected).float(), atol=1e-5)
    assert loss.item() == pytest.approx(-np.mean(expected), abs=1e-5)


def test_dense_model_generates_evaluates_and_round_trips(tmp_path):
    model, ids = char_model()
    lm = ngram_lm.NGramLM.from_counts(model, block_size=8)
    out = sampling.generate(lm, torch.tensor([[0, 1]]), 20, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 22)
    loss = train.evaluate(lm, torch.tensor(ids), batch_size=4, iters=2, generator=torch.Generator().manual_seed(0))
    assert math.isfinite(loss)
    loaded, _ = artifacts.load(artifacts.save(lm, tmp_path / "ngram.pt"))
    assert torch.equal(loaded.log_probs_3, lm.log_probs_3) and loaded.config == lm.config


def test_dense_model_refuses_what_it_cannot_hold():
    with pytest.raises(ValueError, match="smoothing"):
        ngram_lm.NGramLM.from_counts(char_model("mle")[0])
    with pytest.raises(ValueError, match="vocab_size"):
        ngram_lm.NGramConfig(vocab_size=0)
    with pytest.raises(ValueError, match="too large"):
        ngram_lm.NGramLM(ngram_lm.NGramConfig(vocab_size=65, n=5))
    with pytest.raises(ValueError, match="token ids"):
        ngram_lm.NGramLM.from_counts(ngram.CountLM(ngram.count("abcab", 2), 2))
