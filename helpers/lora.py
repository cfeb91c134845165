"""LoRA: low-rank adapters on a frozen model (Hu et al., 2022), written from scratch (notebook 08).

A frozen linear layer ``y = W x`` gets a trainable update of rank ``r``: ``y = W x + (alpha / r) B A x`` with
``A`` (r, in) and ``B`` (out, r). ``B`` starts at zero, so training starts from the unchanged model; only ``A``
and ``B`` learn, ``r (in + out)`` numbers per layer instead of ``in * out``. After training, ``merge`` folds
``(alpha / r) B A`` into ``W`` (no extra cost at inference), ``unmerge`` takes it out again.

- ``LoRALinear``: one adapted ``nn.Linear``; ``add_lora(model, targets, rank, alpha)``: adapt every linear
  layer whose name ends in one of ``targets`` and freeze everything else; ``merge_lora`` / ``unmerge_lora``;
  ``remove_lora``: merge and put plain ``nn.Linear`` layers back (a checkpoint of the usual format);
  ``trainable_parameters``: what an optimizer sees.
- ``add_token_rows(model, ids)``: also train the embedding (and output) rows of a few tokens, e.g. the chat
  tokens a base model never saw, whose rows are still random (peft's ``trainable_token_indices``). A frozen
  model cannot learn what a new token means through low-rank updates of other layers alone.

The parametrisation (A initialised like a linear layer, B zero, scale alpha / r) is the one ``peft`` uses;
``tests/test_lora.py`` checks ours against it on identical weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn as nn


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) * B(A(dropout(x)))`` with ``base`` frozen; ``merge`` folds the update in."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= min(base.in_features,
                                                                                      base.out_features):
            raise ValueError(f"rank must be an integer in 1..{min(base.in_features, base.out_features)} for a "
                             f"{base.in_features}->{base.out_features} layer, got {rank!r}")
        alpha = float(rank if alpha is None else alpha)
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        self.base, self.rank, self.scaling = base, rank, alpha / rank
        for p in base.parameters():
            p.requires_grad_(False)
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, **factory))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, **factory))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear initialises its weight
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """The update ``(alpha / rank) B A``, shaped like the base weight (out, in)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.merged:
            return y
        return y + (self.dropout(x) @ self.lora_A.t() @ self.lora_B.t()) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, scaling={self.scaling:g}, merged={self.merged}"


def _lora_layers(model: nn.Module) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def add_lora(model: nn.Module, targets: Iterable[str] = ("qkv", "proj"), rank: int = 4, alpha: float | None = None,
             dropout: float = 0.0) -> list[str]:
    """Freeze every parameter of ``model``, then replace each ``nn.Linear`` whose name ends in one of ``targets``
    by a ``LoRALinear`` (in place). Returns the names adapted; raises if none matched."""
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise ValueError(f"targets must be non-empty layer names such as ('qkv', 'proj'), got {targets!r}")
    if _lora_layers(model):
        raise ValueError("model already has LoRA adapters; call remove_lora first")
    for p in model.parameters():
        p.requires_grad_(False)
    chosen = [(name, module) for name, module in model.named_modules()
              if isinstance(module, nn.Linear) and name.split(".")[-1] in targets]
    if not chosen:
        linear = sorted({n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"no linear layer is named {targets}; this model's linear layers are named {linear}")
    for name, module in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module, rank, alpha, dropout))
    return [name for name, _ in chosen]


class TokenRows(nn.Module):
    """A frozen ``nn.Embedding`` plus a trainable change ``delta`` (len(ids), C) of the rows of ``ids``.
    As an output layer (``head=True``, wrapping the ``nn.Linear`` that shares those rows) it adds
    ``h @ delta.T`` to the logits of ``ids``."""

    def __init__(self, base: nn.Module, ids: list[int], delta: nn.Parameter | None = None, head: bool = False):
        super().__init__()
        self.base, self.head = base, head
        for p in base.parameters():
            p.requires_grad_(False)
        self.register_buffer("ids", torch.tensor(ids, dtype=torch.long, device=base.weight.device), persistent=False)
        self.delta = delta if delta is not None else nn.Parameter(torch.zeros(len(ids), base.weight.size(1),
                                                                              device=base.weight.device,
                                                                              dtype=base.weight.dtype))
        lookup = torch.full((base.weight.size(0),), -1, dtype=torch.long, device=base.weight.device)
        lookup[self.ids] = torch.arange(len(ids), device=base.weight.device)
        self.register_buffer("lookup", lookup, persistent=False)

    @property
    def weight(self) -> torch.Tensor:  # the frozen base rows, for code that reads .weight
        return self.base.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.head:  # x: hidden states (..., C) -> logits (..., V)
            return out.index_add(-1, self.ids, x @ self.delta.t())
        rows = self.lookup[x]  # x: token ids (B, T)
        return out + torch.where((rows >= 0)[..., None], self.delta[rows.clamp(min=0)], 0.0)

    @torch.no_grad()
    def merge(self) -> None:
        self.base.weight[self.ids] += self.delta


def add_token_rows(model: nn.Module, ids: Iterable[int], lr_scale: float = 1.0) -> int:
    """Make the rows of token ``ids`` trainable in ``model.wte`` and ``model.lm_head`` (one shared change when
    the two are tied) while the rest stays frozen. Returns the number of trainable numbers added.
    ``lr_scale``: their learning rate as a multiple of the run's (``train.make_optimizer`` reads it): LoRA runs
    at a large rate that would throw embedding rows far from where they started."""
    ids = sorted(set(int(i) for i in ids))
    vocab = model.wte.weight.size(0)
    if not ids or ids[0] < 0 or ids[-1] >= vocab:
        raise ValueError(f"ids must be token ids in 0..{vocab - 1}, got {ids!r}")
    tied = model.lm_head.weight is model.wte.weight
    model.wte = TokenRows(model.wte, ids)
    model.wte.delta.lr_scale = float(lr_scale)
    model.lm_head = TokenRows(model.lm_head, ids, model.wte.delta if tied else None, head=True)
    model.lm_head.delta.lr_scale = float(lr_scale)
    return model.wte.delta.numel() * (1 if tied else 2)


def merge_lora(model: nn.Module) -> None:
    """Fold every adapter into its base weight (inference costs what the plain model costs)."""
    for layer in _lora_layers(model):
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Take every merged adapter out of its base weight again (to go on training, or to compare)."""
    for layer in _lora_layers(model):
        layer.unmerge()


def remove_lora(model: nn.Module) -> nn.Module:
    """Merge the adapters (and token rows) and put the plain layers back; every parameter trainable again."""
    if isinstance(getattr(model, "wte", None), TokenRows):
        model.wte.merge()  # a tied head shares the weight; an untied one has its own delta
        if model.lm_head.delta is not model.wte.delta:
            model.lm_head.merge()
        model.wte, model.lm_head = model.wte.base, model.lm_head.base
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.base)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def trainable_parameters(model: nn.Module) -> int:
    """How many numbers an optimizer would update."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
