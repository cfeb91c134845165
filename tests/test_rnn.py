import math

import pytest
import torch

from conftest import overfit_one_batch
from helpers import rnn, sampling, train

V = 11


def models():
    return {
        "bigram": rnn.BigramLM(rnn.BigramConfig(vocab_size=V, block_size=12)),
        "mlp": rnn.MLPLM(rnn.MLPConfig(vocab_size=V, block_size=12, context=3, n_embd=8, n_hidden=32)),
        **{cell: rnn.RNNLM(rnn.RNNConfig(vocab_size=V, block_size=12, n_embd=8, n_hidden=32, cell=cell))
           for cell in rnn.CELLS},
    }


@pytest.mark.parametrize("name", list(models()))
def test_contract_shapes_and_initial_loss(name):
    torch.manual_seed(0)
    model = models()[name]
    idx = torch.randint(V, (3, 12))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 12, V) and model(idx)[1] is None
    assert abs(loss.item() - math.log(V)) < 0.5  # close to uniform before training
    out = sampling.generate(model, idx[:, :2], 15, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 17)


@pytest.mark.parametrize("name", list(models()))
def test_overfits_one_batch(name):
    torch.manual_seed(0)
    loss, x, y = overfit_one_batch(models()[name], V, 12, steps=200, lr=3e-2)
    if name == "bigram":  # it cannot memorise the batch; it can reach the count model's loss on it
        counts = torch.zeros(V, V).index_put_((x.flatten(), y.flatten()), torch.ones(x.numel()), accumulate=True)
        log_probs = (counts / counts.sum(1, keepdim=True).clamp(min=1)).clamp(min=1e-12).log()
        best = -log_probs[x.flatten(), y.flatten()].mean().item()
        assert loss < best + 0.05
    else:
        assert loss < 0.1


@pytest.mark.parametrize("name", ["mlp", "rnn", "gru", "lstm"])
def test_no_peeking_at_future_tokens(name):
    torch.manual_seed(0)
    model = models()[name].eval()
    idx = torch.randint(V, (1, 12))
    changed = idx.clone()
    changed[0, 7:] = (changed[0, 7:] + 1) % V
    assert torch.allclose(model(idx)[0][0, :7], model(changed)[0][0, :7], atol=1e-6)


def test_mlp_sees_exactly_its_context():
    torch.manual_seed(0)
    model = rnn.MLPLM(rnn.MLPConfig(vocab_size=V, block_size=12, context=3, n_embd=4, n_hidden=8)).eval()
    idx = torch.randint(V, (1, 12))
    changed = idx.clone()
    changed[0, 5] = (changed[0, 5] + 1) % V
    diff = (model(idx)[0] - model(changed)[0]).abs().amax(-1)[0]
    assert (diff[5:8] > 0).all() and (diff[:5] == 0).all() and (diff[8:] == 0).all()


def test_scratch_rnn_equals_torch_rnn():
    torch.manual_seed(0)
    ours = rnn.ScratchRNN(5, 7)
    x = torch.randn(2, 9, 5)
    expected, _ = ours.copy_to_torch()(x)
    assert torch.allclose(ours(x), expected, atol=1e-6)


def test_rnn_cell_by_hand():
    x, h = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5]])
    W_xh, W_hh, b = torch.tensor([[0.1, -0.2]]), torch.tensor([[2.0]]), torch.tensor([0.3])
    assert torch.allclose(rnn.rnn_cell(x, h, W_xh, W_hh, b), torch.tanh(torch.tensor([[1.0]])))


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    cell = rnn.ScratchRNN(3, 4).double()
    x = torch.randn(2, 5, 3, dtype=torch.double)
    assert torch.autograd.gradcheck(lambda W: rnn.rnn_cell(x[:, 0], torch.tanh(x[:, 1, :1].expand(2, 4)),
                                                           cell.W_xh, W, cell.b), (cell.W_hh,))


def test_bptt_reference_matches_the_hand_formula():
    torch.manual_seed(0)
    x1, h0 = torch.randn(1, 3), torch.randn(1, 4)
    W_xh, W_hh, b, w = torch.randn(4, 3), torch.randn(4, 4), torch.randn(4), torch.randn(1, 4)
    h1 = rnn.rnn_cell(x1, h0, W_xh, W_hh, b)
    by_hand = (w * (1 - h1**2)).T @ h0  # delta_i * h0_j
    assert torch.allclose(rnn.bptt_grad_W_hh(x1, h0, W_xh, W_hh, b, w), by_hand, atol=1e-6)


def test_clip_by_global_norm():
    grads = [torch.tensor([3.0, 0.0]), torch.tensor([[4.0]])]
    clipped = rnn.clip_by_global_norm(grads, 1.0)
    assert torch.allclose(clipped[0], torch.tensor([0.6, 0.0])) and torch.allclose(clipped[1], torch.tensor([[0.8]]))
    assert all(torch.equal(a, b) for a, b in zip(rnn.clip_by_global_norm(grads, 10.0), grads))


def test_input_gradient_norms_vanish_with_small_recurrent_weights():
    torch.manual_seed(0)
    model = rnn.RNNLM(rnn.RNNConfig(vocab_size=V, block_size=32, n_embd=8, n_hidden=32))
    with torch.no_grad():
        torch.nn.init.orthogonal_(model.recurrent.W_hh, gain=0.3)
    norms = rnn.input_gradient_norms(model, torch.randint(V, (4, 32)))
    assert norms.shape == (32,) and norms[20] < 1e-6 * norms[0]


def test_learned_bigram_approaches_the_count_model():
    gen = torch.Generator().manual_seed(0)
    tokens = torch.multinomial(torch.ones(V), 3000, replacement=True, generator=gen)
    model = rnn.BigramLM(rnn.BigramConfig(vocab_size=V, block_size=16))
    cfg = train.TrainConfig(max_steps=150, batch_size=32, learning_rate=0.3, warmup_steps=1, weight_decay=0.0)
    train.train(model, tokens, None, cfg, progress=False)
    loss = model(tokens[None, :-1], tokens[None, 1:])[1].item()
    assert loss < math.log(V) + 0.05  # the uniform sequence: the best table is close to uniform


def test_unknown_cell_is_a_clear_error():
    with pytest.raises(ValueError, match="cell must be one of"):
        rnn.RNNConfig(cell="transformer")
