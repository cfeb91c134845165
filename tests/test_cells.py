import pytest
import torch

from helpers import cells, checks


def test_lstm_cell_by_hand():
    # zero weights: every gate is sigmoid(0) = 1/2 and the candidate tanh(0) = 0, so c' = c / 2, h' = tanh(c') / 2
    H, C = 3, 2
    zeros = (torch.zeros(4 * H, C), torch.zeros(4 * H, H), torch.zeros(4 * H), torch.zeros(4 * H))
    c = torch.tensor([[2.0, -1.0, 0.5]])
    h, c_next = cells.lstm_cell(torch.ones(1, C), torch.ones(1, H), c, *zeros)
    assert torch.allclose(c_next, c / 2) and torch.allclose(h, torch.tanh(c / 2) / 2)


def test_gru_cell_by_hand():
    # zero weights: reset and update gates are 1/2, the candidate tanh(0) = 0, so h' = h / 2
    H, C = 3, 2
    h = torch.tensor([[2.0, -1.0, 0.5]])
    zeros = (torch.zeros(3 * H, C), torch.zeros(3 * H, H), torch.zeros(3 * H), torch.zeros(3 * H))
    assert torch.allclose(cells.gru_cell(torch.ones(1, C), h, *zeros), h / 2)


def torch_cell_weights(cell):
    return cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh


@pytest.mark.parametrize("B, C, H", [(1, 1, 1), (3, 5, 7)])
def test_lstm_cell_equals_torch_lstm_cell(B, C, H):
    torch.manual_seed(0)
    torch_cell = torch.nn.LSTMCell(C, H)
    x, h, c = torch.randn(B, C), torch.randn(B, H), torch.randn(B, H)
    expected = torch_cell(x, (h, c))
    got = cells.lstm_cell(x, h, c, *torch_cell_weights(torch_cell))
    assert all(torch.allclose(g, e, atol=1e-6) for g, e in zip(got, expected))


@pytest.mark.parametrize("B, C, H", [(1, 1, 1), (3, 5, 7)])
def test_gru_cell_equals_torch_gru_cell(B, C, H):
    torch.manual_seed(0)
    torch_cell = torch.nn.GRUCell(C, H)
    x, h = torch.randn(B, C), torch.randn(B, H)
    assert torch.allclose(cells.gru_cell(x, h, *torch_cell_weights(torch_cell)), torch_cell(x, h), atol=1e-6)


@pytest.mark.parametrize("module", [torch.nn.LSTM, torch.nn.GRU])
def test_unroll_equals_the_fused_module(module):
    torch.manual_seed(0)
    fused = module(5, 7, batch_first=True)
    x = torch.randn(2, 30, 5)
    assert torch.allclose(cells.unroll(fused, x), fused(x)[0], atol=1e-5)


def test_unroll_refuses_what_it_does_not_implement():
    with pytest.raises(TypeError, match="one-layer, one-direction"):
        cells.unroll(torch.nn.LSTM(2, 3, num_layers=2, batch_first=True), torch.randn(1, 4, 2))
    with pytest.raises(ValueError, match="batch_first=True"):
        cells.unroll(torch.nn.GRU(2, 3), torch.randn(4, 1, 2))


def test_scratch_rnn_equals_torch_rnn():
    torch.manual_seed(0)
    ours = cells.ScratchRNN(5, 7)
    x = torch.randn(2, 9, 5)
    expected, _ = ours.copy_to_torch()(x)
    assert torch.allclose(ours(x), expected, atol=1e-6)


def test_rnn_cell_by_hand():
    x, h = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5]])
    W_xh, W_hh, b = torch.tensor([[0.1, -0.2]]), torch.tensor([[2.0]]), torch.tensor([0.3])
    assert torch.allclose(cells.rnn_cell(x, h, W_xh, W_hh, b), torch.tanh(torch.tensor([[1.0]])))


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    cell = cells.ScratchRNN(3, 4).double()
    x = torch.randn(2, 5, 3, dtype=torch.double)
    assert torch.autograd.gradcheck(lambda W: cells.rnn_cell(x[:, 0], torch.tanh(x[:, 1, :1].expand(2, 4)),
                                                             cell.W_xh, W, cell.b), (cell.W_hh,))


def test_bptt_reference_matches_the_hand_formula():
    torch.manual_seed(0)
    x1, h0 = torch.randn(1, 3), torch.randn(1, 4)
    W_xh, W_hh, b, w = torch.randn(4, 3), torch.randn(4, 4), torch.randn(4), torch.randn(1, 4)
    h1 = cells.rnn_cell(x1, h0, W_xh, W_hh, b)
    by_hand = (w * (1 - h1**2)).T @ h0  # delta_i * h0_j
    assert torch.allclose(cells.bptt_grad_W_hh(x1, h0, W_xh, W_hh, b, w), by_hand, atol=1e-6)


# The notebook's exercise on the GRU: a learner's plain solution passes the check, a typical mistake does not
def gru_by_learner(x, h, W_ih, W_hh, b_ih, b_hh):
    H = h.shape[1]
    gi, gh = x @ W_ih.T + b_ih, h @ W_hh.T + b_hh
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h


def gru_swapped_interpolation(x, h, W_ih, W_hh, b_ih, b_hh):  # z * n + (1 - z) * h: the other convention
    H = h.shape[1]
    gi, gh = x @ W_ih.T + b_ih, h @ W_hh.T + b_hh
    r, z = torch.sigmoid(gi[:, :H] + gh[:, :H]), torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return z * n + (1 - z) * h


def gru_cases():
    gen = torch.Generator().manual_seed(3)
    B, C, H = 2, 3, 4
    return [tuple(torch.randn(*shape, generator=gen) for shape in [(B, C), (B, H), (3 * H, C), (3 * H, H),
                                                                   (3 * H,), (3 * H,)]) for _ in range(3)]


def test_gru_exercise_check():
    assert checks.exercise("gru_cell", gru_by_learner, cells.gru_cell, gru_cases()).passed
    assert checks.exercise("gru_cell", gru_swapped_interpolation, cells.gru_cell, gru_cases()).status == checks.WRONG
