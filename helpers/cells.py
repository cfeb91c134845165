"""Recurrent cells written out, one time step at a time: the tanh RNN (Elman, 1990), the LSTM (Hochreiter &
Schmidhuber, 1997, with the forget gate of Gers et al., 2000) and the GRU (Cho et al., 2014).

Each cell takes the input x_t (B, C) and the previous state, and returns the next state. The weights are laid
out exactly as in ``torch.nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (one stacked matrix for all gates, in torch's
gate order, and two bias vectors), so weights copied from torch's modules give the same outputs:

    LSTM, gates stacked as [i; f; g; o]:
        i, f, o = sigmoid(W_i* x + b_i* + W_h* h + b_h*),  g = tanh(W_ig x + b_ig + W_hg h + b_hg)
        c' = f * c + i * g,                                  h' = o * tanh(c')
    GRU, gates stacked as [r; z; n]:
        r, z = sigmoid(W_i* x + b_i* + W_h* h + b_h*),      n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

``unroll`` runs a torch module's own weights through these cells, the check that they compute what torch's
fused kernels compute. Simplifications: one layer, one direction, no dropout, batch first.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def rnn_cell(x: torch.Tensor, h: torch.Tensor, W_xh: torch.Tensor, W_hh: torch.Tensor,
             b: torch.Tensor) -> torch.Tensor:
    """One step of a plain RNN: tanh(x W_xh^T + h W_hh^T + b). x (B, C), h (B, H) -> (B, H)."""
    return torch.tanh(x @ W_xh.T + h @ W_hh.T + b)


def lstm_cell(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, W_ih: torch.Tensor, W_hh: torch.Tensor,
              b_ih: torch.Tensor, b_hh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step. x (B, C), h and c (B, H), W_ih (4H, C), W_hh (4H, H), biases (4H,) -> (h', c')."""
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (B, 4H): input, forget, candidate, output
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # keep part of the old memory, add new
    h = torch.sigmoid(o) * torch.tanh(c)  # show part of the memory
    return h, c


def gru_cell(x: torch.Tensor, h: torch.Tensor, W_ih: torch.Tensor, W_hh: torch.Tensor,
             b_ih: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
    """One GRU step. x (B, C), h (B, H), W_ih (3H, C), W_hh (3H, H), biases (3H,) -> h' (B, H)."""
    r_x, z_x, n_x = (x @ W_ih.T + b_ih).chunk(3, dim=-1)  # (B, H) each: reset, update, candidate
    r_h, z_h, n_h = (h @ W_hh.T + b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(r_x + r_h), torch.sigmoid(z_x + z_h)
    n = torch.tanh(n_x + r * n_h)  # the candidate sees the old state only through the reset gate
    return (1 - z) * n + z * h  # z near 1: keep the old state


def unroll(module: nn.LSTM | nn.GRU, x: torch.Tensor) -> torch.Tensor:
    """Hidden states (B, T, H) of a one-layer, batch-first ``nn.LSTM`` or ``nn.GRU``, computed with
    ``lstm_cell`` / ``gru_cell`` from the module's own weights, from a zero state. x (B, T, C)."""
    if not isinstance(module, nn.LSTM | nn.GRU) or module.num_layers != 1 or module.bidirectional:
        raise TypeError(f"unroll needs a one-layer, one-direction nn.LSTM or nn.GRU, got {module!r}")
    if not module.batch_first or x.dim() != 3:
        raise ValueError(f"unroll needs batch_first=True and x of shape (B, T, C), got shape {tuple(x.shape)}")
    weights = (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)
    h = x.new_zeros(x.shape[0], module.hidden_size)
    c = torch.zeros_like(h)
    states = []
    for t in range(x.shape[1]):
        if isinstance(module, nn.LSTM):
            h, c = lstm_cell(x[:, t], h, c, *weights)
        else:
            h = gru_cell(x[:, t], h, *weights)
        states.append(h)
    return torch.stack(states, dim=1)  # (B, T, H)


class ScratchRNN(nn.Module):
    """A one-layer tanh RNN unrolled in Python, one step at a time. Input (B, T, C) -> states (B, T, H)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.W_xh = nn.Parameter(torch.empty(hidden_size, input_size))
        self.W_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.b = nn.Parameter(torch.zeros(hidden_size))
        bound = hidden_size ** -0.5  # the same uniform initialisation as torch.nn.RNN
        nn.init.uniform_(self.W_xh, -bound, bound)
        nn.init.uniform_(self.W_hh, -bound, bound)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        h = x.new_zeros(B, self.hidden_size) if h is None else h
        states = []
        for t in range(T):
            h = rnn_cell(x[:, t], h, self.W_xh, self.W_hh, self.b)
            states.append(h)
        return torch.stack(states, dim=1)  # (B, T, H)

    def copy_to_torch(self) -> nn.RNN:
        """A torch.nn.RNN with exactly these weights (to check that both compute the same thing)."""
        torch_rnn = nn.RNN(self.W_xh.shape[1], self.hidden_size, batch_first=True)
        with torch.no_grad():
            torch_rnn.weight_ih_l0.copy_(self.W_xh)
            torch_rnn.weight_hh_l0.copy_(self.W_hh)
            torch_rnn.bias_ih_l0.copy_(self.b)
            torch_rnn.bias_hh_l0.zero_()
        return torch_rnn


def bptt_grad_W_hh(x1: torch.Tensor, h0: torch.Tensor, W_xh: torch.Tensor, W_hh: torch.Tensor,
                   b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """dL/dW_hh for L = w . h1 with h1 = rnn_cell(x1, h0, ...), computed by autograd (the reference)."""
    W_hh = W_hh.detach().clone().requires_grad_(True)
    loss = (w * rnn_cell(x1, h0, W_xh, W_hh, b)).sum()
    (grad,) = torch.autograd.grad(loss, W_hh)
    return grad
