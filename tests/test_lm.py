"""The language-model contract: one loss with ignore index -1 for every model, and clear errors on bad ids."""

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import lm, ngram, rnn
from helpers.gpt import GPT, GPTConfig
from helpers.ngram_lm import NGramLM

V, T = 5, 6


def count_model():
    counts = ngram.count([0, 1, 2, 3, 4, 0, 2, 1, 3, 0, 4, 4, 2], 3, vocab=range(V))
    return NGramLM.from_counts(ngram.CountLM(counts, 3, "kneser-ney"), block_size=T)


MODELS = {
    "n-gram": count_model,
    "bigram": lambda: rnn.BigramLM(rnn.BigramConfig(vocab_size=V, block_size=T)),
    "mlp": lambda: rnn.MLPLM(rnn.MLPConfig(vocab_size=V, block_size=T, context=3, n_embd=4, n_hidden=8)),
    "rnn": lambda: rnn.RNNLM(rnn.RNNConfig(vocab_size=V, block_size=T, n_embd=4, n_hidden=8)),
    "lstm": lambda: rnn.RNNLM(rnn.RNNConfig(vocab_size=V, block_size=T, n_embd=4, n_hidden=8, cell="lstm")),
    "gpt": lambda: GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=1, n_head=2, n_embd=8)),
}


def test_lm_loss_matches_cross_entropy_over_the_counted_positions():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, T, V), torch.randint(V, (2, T))
    targets[0, :3] = lm.IGNORE_INDEX
    keep = targets != lm.IGNORE_INDEX
    expected = F.cross_entropy(logits[keep], targets[keep])
    torch.testing.assert_close(lm.lm_loss(logits, targets), expected)
    assert lm.lm_loss(logits, None) is None


def test_an_all_ignored_batch_has_zero_loss_not_nan():
    logits = torch.randn(1, T, V, requires_grad=True)
    loss = lm.lm_loss(logits, torch.full((1, T), lm.IGNORE_INDEX))
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(logits.grad) == 0


@pytest.mark.parametrize("name", MODELS)
def test_every_model_ignores_minus_one_the_same_way(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    with torch.no_grad():  # away from the initialisation (the bigram starts uniform, where every loss is ln V)
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    idx, targets = torch.randint(V, (3, T)), torch.randint(V, (3, T))
    masked = targets.clone()
    masked[:, ::2] = lm.IGNORE_INDEX  # every other position adds no loss
    logits, loss = model(idx, masked)
    keep = masked != lm.IGNORE_INDEX
    expected = -logits.float().log_softmax(-1)[keep].gather(-1, targets[keep][:, None]).mean()
    torch.testing.assert_close(loss, expected)
    _, full = model(idx, targets)
    assert not math.isclose(full.item(), loss.item(), rel_tol=1e-6)  # the ignored positions did count before


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("idx, error, message", [
    (torch.tensor([[0, 1, V]]), ValueError, rf"outside 0..{V - 1}"),
    (torch.tensor([[0, -1, 2]]), ValueError, rf"outside 0..{V - 1}"),
    (torch.tensor([0, 1, 2]), ValueError, r"shape \(B, T\).*idx\[None\]"),
    (torch.zeros(1, 3), TypeError, "integer token ids"),
    ([[0, 1, 2]], TypeError, "torch.Tensor"),
])
def test_every_model_rejects_bad_ids_clearly(name, idx, error, message):
    with pytest.raises(error, match=message):
        MODELS[name]()(idx)


@pytest.mark.parametrize("targets, error, message", [
    (torch.tensor([[0, 1]]), ValueError, "shape of idx"),
    (torch.tensor([[0, 1, 7]]), ValueError, "outside -1..4"),
    (torch.tensor([[0, 1, -100]]), ValueError, "outside -1..4"),  # PyTorch's default ignore index is not ours
    (torch.zeros(1, 3), TypeError, "integer tensor"),
])
def test_bad_targets_are_named(targets, error, message):
    model = MODELS["gpt"]()
    with pytest.raises(error, match=message):
        model(torch.tensor([[0, 1, 2]]), targets)


def test_eval_mode_restores_training_even_after_an_error():
    model = torch.nn.Linear(2, 2).train()
    with pytest.raises(RuntimeError), lm.eval_mode(model):
        assert not model.training
        raise RuntimeError("boom")
    assert model.training
    model.eval()
    with lm.eval_mode(model):
        pass
    assert not model.training


def test_target_logprobs_read_the_targets_and_skip_ignored_ones():
    logits = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]]])
    targets = torch.tensor([[1, 0, lm.IGNORE_INDEX]])
    got = lm.target_logprobs(logits, targets)
    expected = torch.tensor([[math.log(0.5), 2.0 - math.log(math.exp(2.0) + 1.0), 0.0]])
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="do not match"):
        lm.target_logprobs(logits, targets[:, :2])
