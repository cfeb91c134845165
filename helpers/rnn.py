"""Neural language models before the transformer: a learned bigram table, an MLP over a fixed window
(Bengio et al., 2003) and recurrent networks (Elman, 1990; GRU, Cho et al., 2014; LSTM, Hochreiter &
Schmidhuber, 1997). All follow the course's language-model contract
``forward(idx, targets=None) -> (logits, loss)`` with ``config.block_size``, so ``helpers.train`` trains them
and ``helpers.sampling`` samples from them.

The plain RNN is written from scratch, one time step at a time:

    h_t = tanh(W_xh x_t + W_hh h_{t-1} + b),        logits_t = W_hy h_t + c

and is checked against ``torch.nn.RNN`` in the tests and in notebook 02. GRU and LSTM use torch's fused
modules for speed; ``helpers.cells`` writes their gate equations out (``lstm_cell``, ``gru_cell``, re-exported
here) and checks them against the same modules on copied weights.

Simplifications: every forward starts from a zero hidden state (no state carried between batches, i.e.
truncated backpropagation through time at ``block_size`` steps); one recurrent layer by default; the MLP
sees a window of ``context`` tokens, padded with a special start token at the beginning of a sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import lm
from helpers.cells import ScratchRNN, bptt_grad_W_hh, gru_cell, lstm_cell, rnn_cell, unroll

__all__ = ["CELLS", "BigramConfig", "BigramLM", "MLPConfig", "MLPLM", "RNNConfig", "RNNLM", "ScratchRNN",
           "bptt_grad_W_hh", "clip_by_global_norm", "gru_cell", "input_gradient_norms", "lstm_cell",
           "position_losses", "rnn_cell", "unroll"]

CELLS = ("rnn", "gru", "lstm")


def _check_sizes(config, *names: str) -> None:
    """Raise a clear error unless each named field of ``config`` is a positive integer."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{type(config).__name__}.{name} must be a positive integer, got {value!r}")


# ----------------------------------------------------------------------------- bigram: a learned table
@dataclass(frozen=True)
class BigramConfig:
    vocab_size: int = 65  # number of distinct tokens
    block_size: int = 64  # window length for training; the model itself looks at one token

    def __post_init__(self):
        _check_sizes(self, "vocab_size", "block_size")


class BigramLM(nn.Module):
    """logits for the next token = one row of a learned (V, V) table, picked by the current token."""

    def __init__(self, config: BigramConfig):
        super().__init__()
        self.config = config
        self.table = nn.Embedding(config.vocab_size, config.vocab_size)
        nn.init.zeros_(self.table.weight)  # start from the uniform distribution

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        lm.check_ids(idx, self.config.vocab_size)
        logits = self.table(idx)  # (B, T, V)
        return logits, lm.lm_loss(logits, targets)


# ----------------------------------------------------------------------------- MLP over a fixed window
@dataclass(frozen=True)
class MLPConfig:
    vocab_size: int = 65  # number of distinct tokens
    block_size: int = 64  # window length for training and generation
    context: int = 8  # how many previous tokens the MLP sees (the n - 1 of an n-gram)
    n_embd: int = 24  # size of each token's embedding vector
    n_hidden: int = 512  # width of the hidden layer

    def __post_init__(self):
        _check_sizes(self, "vocab_size", "block_size", "context", "n_embd", "n_hidden")


class MLPLM(nn.Module):
    """Embed the last ``context`` tokens, concatenate, one tanh hidden layer, logits (Bengio et al. 2003)."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size + 1, config.n_embd)  # last row: the start-of-text pad
        self.hidden = nn.Linear(config.context * config.n_embd, config.n_hidden)
        self.head = nn.Linear(config.n_hidden, config.vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        lm.check_ids(idx, self.config.vocab_size)
        B, T = idx.shape
        n = self.config.context
        pad = torch.full((B, n - 1), self.config.vocab_size, dtype=idx.dtype, device=idx.device)
        x = self.wte(torch.cat([pad, idx], dim=1))  # (B, n - 1 + T, C)
        windows = x.unfold(1, n, 1)  # (B, T, C, n): the n embeddings ending at each position
        windows = windows.transpose(2, 3).reshape(B, T, n * self.config.n_embd)  # (B, T, n * C)
        logits = self.head(torch.tanh(self.hidden(windows)))  # (B, T, V)
        return logits, lm.lm_loss(logits, targets)


# ----------------------------------------------------------------------------- recurrent networks
@dataclass(frozen=True)
class RNNConfig:
    vocab_size: int = 65  # number of distinct tokens
    block_size: int = 64  # steps unrolled in training (truncated backpropagation through time)
    n_embd: int = 32  # size of each token's embedding vector
    n_hidden: int = 256  # size of the hidden state h_t
    cell: str = "rnn"  # "rnn" (our scratch tanh RNN), "gru" or "lstm" (torch's modules)

    def __post_init__(self):
        _check_sizes(self, "vocab_size", "block_size", "n_embd", "n_hidden")
        if self.cell not in CELLS:
            raise ValueError(f"RNNConfig.cell must be one of {CELLS}, got {self.cell!r}")


class RNNLM(nn.Module):
    """Embedding -> recurrent layer -> linear read-out, at every position."""

    def __init__(self, config: RNNConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.cell == "rnn":
            self.recurrent = ScratchRNN(config.n_embd, config.n_hidden)
        else:
            module = nn.GRU if config.cell == "gru" else nn.LSTM
            self.recurrent = module(config.n_embd, config.n_hidden, batch_first=True)
        if config.cell == "lstm":  # forget-gate bias 1: remember by default (Jozefowicz et al., 2015)
            with torch.no_grad():
                self.recurrent.bias_ih_l0[config.n_hidden : 2 * config.n_hidden].fill_(1.0)
        self.head = nn.Linear(config.n_hidden, config.vocab_size)

    def states(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, T, H) for input embeddings x (B, T, C)."""
        out = self.recurrent(x)
        return out if isinstance(self.recurrent, ScratchRNN) else out[0]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        lm.check_ids(idx, self.config.vocab_size)
        logits = self.head(self.states(self.wte(idx)))  # (B, T, V)
        return logits, lm.lm_loss(logits, targets)


def input_gradient_norms(model: RNNLM, idx: torch.Tensor) -> torch.Tensor:
    """How much the loss at the last position depends on each earlier input: the norm of
    d loss_T / d x_{T-k} for k = 0 .. T-1 (averaged over the batch). idx (B, T) -> (T,), index k."""
    x = model.wte(idx).detach().requires_grad_(True)  # (B, T, C)
    logits = model.head(model.states(x))
    loss = F.cross_entropy(logits[:, -1].float(), idx[:, -1])  # any function of the last output would do
    (grad,) = torch.autograd.grad(loss, x)
    return grad.norm(dim=-1).mean(0).flip(0)  # (T,), position T-1-k at index k


@torch.no_grad()
def position_losses(model: nn.Module, tokens: torch.Tensor, *, stride: int | None = None,
                    batch_size: int = 256) -> torch.Tensor:
    """-ln p(tokens[t] | tokens[:t]) for t = 1 .. N - 1, for any model of the language-model contract.

    The text is cut into overlapping windows of ``model.config.block_size`` tokens, ``stride`` apart (default
    half a window); each position is scored once, in the window where it has the most context, so every
    position after the first window sees at least block_size - stride earlier tokens. tokens (N,) -> (N - 1,).
    """
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1 or tokens.numel() < 2:
        raise ValueError("tokens must be a 1-D tensor of at least 2 token ids")
    T = min(model.config.block_size, tokens.numel() - 1)
    stride = max(1, T // 2) if stride is None else stride
    if not isinstance(stride, int) or not 1 <= stride <= T:
        raise ValueError(f"stride must be an integer in 1..{T} (the window length), got {stride!r}")
    last = tokens.numel() - 1 - T  # start of the window that ends at the last token
    starts = list(range(0, last + 1, stride))
    starts += [last] if starts[-1] != last else []
    keep = [0] + [T - (s - prev) for prev, s in zip(starts, starts[1:])]  # first new position in each window
    pieces = []
    with lm.eval_mode(model):
        for i in range(0, len(starts), batch_size):
            chunk = torch.tensor(starts[i:i + batch_size])[:, None] + torch.arange(T + 1)  # (b, T + 1)
            window = tokens[chunk]
            logits, _ = model(window[:, :-1])
            losses = F.cross_entropy(logits.float().transpose(1, 2), window[:, 1:], reduction="none")  # (b, T)
            pieces += [row[k:] for row, k in zip(losses, keep[i:i + batch_size])]
    return torch.cat(pieces)  # (N - 1,)


# ----------------------------------------------------------------------------- small pieces for exercises
def clip_by_global_norm(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Scale all gradients by one factor so that their joint L2 norm is at most ``max_norm``."""
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    scale = min(1.0, max_norm / (total.item() + 1e-12))
    return [g * scale for g in grads]
