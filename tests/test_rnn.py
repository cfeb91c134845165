import math

import pytest
import torch

from conftest import overfit_one_batch
from helpers import checks, rnn, sampling, train

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


def markov_text(n: int, seed: int = 0) -> torch.Tensor:
    """n tokens from a random first-order Markov chain over V tokens: a text with a clear bigram structure."""
    gen = torch.Generator().manual_seed(seed)
    transitions = torch.softmax(3 * torch.randn(V, V, generator=gen), dim=1)  # (V, V), peaked rows
    tokens = [0]
    for _ in range(n - 1):
        tokens.append(torch.multinomial(transitions[tokens[-1]], 1, generator=gen).item())
    return torch.tensor(tokens)


def test_learned_bigram_approaches_the_count_model():
    tokens = markov_text(4000)
    counts = torch.zeros(V, V).index_put_((tokens[:-1], tokens[1:]), torch.ones(len(tokens) - 1), accumulate=True)
    count_loss = -(counts / counts.sum(1, keepdim=True)).log()[tokens[:-1], tokens[1:]].mean().item()
    assert count_loss < math.log(V) - 0.5  # the text is far from uniform, so an untrained table is far off
    torch.manual_seed(0)
    model = rnn.BigramLM(rnn.BigramConfig(vocab_size=V, block_size=16))
    cfg = train.TrainConfig(max_steps=300, batch_size=32, learning_rate=0.3, warmup_steps=1, weight_decay=0.0)
    train.train(model, tokens, None, cfg, progress=False)
    loss = model(tokens[None, :-1], tokens[None, 1:])[1].item()
    assert loss < count_loss + 0.05  # the maximum-likelihood table is the normalised count table


def test_unknown_cell_is_a_clear_error():
    with pytest.raises(ValueError, match="cell must be one of"):
        rnn.RNNConfig(cell="transformer")


@pytest.mark.parametrize("make, field, value", [
    (rnn.BigramConfig, "vocab_size", 0), (rnn.BigramConfig, "block_size", -1),
    (rnn.MLPConfig, "context", 0), (rnn.MLPConfig, "n_embd", 2.5), (rnn.MLPConfig, "n_hidden", True),
    (rnn.RNNConfig, "n_hidden", 0), (rnn.RNNConfig, "n_embd", None), (rnn.RNNConfig, "block_size", 0),
])
def test_configs_refuse_sizes_that_are_not_positive_integers(make, field, value):
    with pytest.raises(ValueError, match=rf"{make.__name__}\.{field} must be a positive integer, got {value!r}"):
        make(**{field: value})


@pytest.mark.parametrize("name", ["bigram", "mlp"])
def test_position_losses_of_a_fixed_window_model_equal_one_pass(name):
    # the bigram and an MLP with context 3 see the same tokens in every window with >= 3 earlier tokens,
    # so scoring in windows must give exactly the losses of one pass over the whole text
    torch.manual_seed(0)
    model = models()[name].eval()
    tokens = torch.randint(V, (101,))
    one_pass = torch.nn.functional.cross_entropy(model(tokens[None, :-1])[0][0], tokens[1:], reduction="none")
    for stride in (1, 5, 9):
        assert torch.allclose(rnn.position_losses(model, tokens, stride=stride), one_pass, atol=1e-5)


def test_position_losses_score_every_position_once_with_enough_context():
    torch.manual_seed(0)
    model = models()["lstm"].eval()
    tokens = torch.randint(V, (49,))  # windows start at 0, 4, ..., 36: the last one ends at the last token
    losses = rnn.position_losses(model, tokens, stride=4)
    assert losses.shape == (48,)
    first = torch.nn.functional.cross_entropy(model(tokens[None, :12])[0][0], tokens[1:13], reduction="none")
    assert torch.allclose(losses[:12], first, atol=1e-6)  # the first window, from a zero state
    last = torch.nn.functional.cross_entropy(model(tokens[None, -13:-1])[0][0], tokens[-12:], reduction="none")
    assert torch.allclose(losses[-4:], last[-4:], atol=1e-6)  # the last window, each with >= 8 tokens before


def test_position_losses_refuse_bad_input():
    model = models()["bigram"]
    with pytest.raises(ValueError, match="1-D tensor"):
        rnn.position_losses(model, torch.randint(V, (2, 20)))
    with pytest.raises(ValueError, match="stride must be an integer in 1..12"):
        rnn.position_losses(model, torch.randint(V, (40,)), stride=0)


# The notebook's exercises: a learner's plain solution passes the check, a typical mistake does not
def rnn_cell_without_bias(x, h, W_xh, W_hh, b):
    return torch.tanh(x @ W_xh.T + h @ W_hh.T)


def bptt_by_hand(x1, h0, W_xh, W_hh, b, w):
    h1 = torch.tanh(x1 @ W_xh.T + h0 @ W_hh.T + b)
    return (w * (1 - h1**2)).T @ h0


def bptt_without_tanh_derivative(x1, h0, W_xh, W_hh, b, w):
    return w.T @ h0


def clip_each_tensor_alone(grads, max_norm):
    return [g * min(1.0, max_norm / g.norm().item()) for g in grads]


def exercise_cases(name):
    gen = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=gen)

    if name == "rnn_cell":
        return [(r(2, 3), r(2, 4), r(4, 3), r(4, 4), r(4)) for _ in range(3)]
    if name == "bptt_grad_W_hh":
        return [(r(1, 3), r(1, 4), r(4, 3), r(4, 4), r(4), r(1, 4)) for _ in range(3)]
    return [([r(3) * 10, r(2, 2)], 1.0), ([torch.tensor([0.3, 0.4])], 1.0), ([r(5)], 0.1)]


@pytest.mark.parametrize("name, right, wrong, reference", [
    ("rnn_cell", lambda x, h, W_xh, W_hh, b: torch.tanh(x @ W_xh.T + h @ W_hh.T + b), rnn_cell_without_bias,
     rnn.rnn_cell),
    ("bptt_grad_W_hh", bptt_by_hand, bptt_without_tanh_derivative, rnn.bptt_grad_W_hh),
    ("clip_by_global_norm", lambda grads, m: [g * min(1.0, m / torch.sqrt(sum((t**2).sum() for t in grads)).item())
                                              for g in grads], clip_each_tensor_alone, rnn.clip_by_global_norm),
])
def test_exercise_checks(name, right, wrong, reference):
    assert checks.exercise(name, right, reference, exercise_cases(name)).passed
    assert checks.exercise(name, wrong, reference, exercise_cases(name)).status == checks.WRONG
