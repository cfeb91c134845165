"""A decoder-only transformer with switches from GPT-2 to LLaMA, following the language-model contract.

``GPT(config).forward(idx, targets=None) -> (logits, loss)`` with ``idx`` of shape (B, T).

The defaults are the GPT-2 block (Radford et al., 2019): pre-LayerNorm, causal multi-head self-attention,
a GELU MLP four times as wide as the residual stream, learned position embeddings, and an output layer tied
to the token embedding. Three switches give the LLaMA block (Touvron et al., 2023):

- ``norm="rmsnorm"``: RMSNorm, ``x / rms(x) * g`` (Zhang & Sennrich, 2019) instead of LayerNorm;
- ``mlp="swiglu"``: ``down(silu(gate(x)) * up(x))`` (Shazeer, 2020), about 8/3 as wide to keep the size;
- ``pos="rope"``: rotary position embeddings on queries and keys (Su et al., 2021) instead of a table.

Attention goes through ``torch.nn.functional.scaled_dot_product_attention``, which runs a fused
(flash) kernel on GPU and plain matrix products on CPU. ``KVCache`` keeps the keys and values of the
tokens already seen, so generation feeds one new token per step.

GELU is the exact one, ``x * Phi(x)`` with the error function, unless ``gelu_approximate="tanh"`` (GPT-2
was trained with the tanh approximation; the two differ by under 1e-3). The norms' epsilon is
``norm_eps``. Both switches exist so that published weights load exactly (tests compare with the
``transformers`` implementations of GPT-2 and LLaMA on the same weights).

Simplifications: no grouped-query attention; the rotary pairs are (i, i + hs/2) as in GPT-NeoX rather
than adjacent dimensions (the same up to a fixed permutation); the cache grows by concatenation up to
``block_size`` (no paging, no sliding window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import lm

NORMS, MLPS, POSITIONS = ("layernorm", "rmsnorm"), ("gelu", "swiglu"), ("learned", "rope")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 65  # number of distinct tokens (65 characters in Tiny Shakespeare)
    block_size: int = 64  # longest context the model sees, in tokens
    n_layer: int = 2  # transformer blocks
    n_head: int = 4  # attention heads per block
    n_embd: int = 64  # width of the residual stream
    dropout: float = 0.0  # dropout probability during training
    norm: str = "layernorm"  # "layernorm" (GPT-2) or "rmsnorm" (LLaMA)
    mlp: str = "gelu"  # "gelu" (GPT-2) or "swiglu" (LLaMA)
    pos: str = "learned"  # "learned" position table (GPT-2) or "rope" rotary embeddings (LLaMA)
    tie_weights: bool = True  # output layer shares the token embedding matrix (GPT-2 yes, LLaMA no)
    bias: bool = True  # biases in linear layers and LayerNorm (GPT-2 yes, LLaMA no)
    mlp_hidden: int | None = None  # MLP width; None: 4 * n_embd (GELU) or ~8/3 * n_embd (SwiGLU)
    rope_base: float = 10000.0  # RoPE: wavelengths grow geometrically up to 2 * pi * rope_base
    gelu_approximate: str = "none"  # "none": exact GELU x * Phi(x) (erf); "tanh": GPT-2's tanh approximation
    norm_eps: float = 1e-5  # epsilon inside LayerNorm / RMSNorm (GPT-2 1e-5; LLaMA 1e-5 or 1e-6)

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.mlp_hidden is not None and (not isinstance(self.mlp_hidden, int) or self.mlp_hidden < 1):
            raise ValueError(f"GPTConfig.mlp_hidden must be a positive integer or None, got {self.mlp_hidden!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not self.norm_eps > 0 or not self.rope_base > 1:
            raise ValueError(f"GPTConfig needs norm_eps > 0 and rope_base > 1, got norm_eps={self.norm_eps!r}, "
                             f"rope_base={self.rope_base!r}")
        if self.gelu_approximate not in ("none", "tanh"):
            raise ValueError(f"GPTConfig.gelu_approximate must be 'none' or 'tanh', got {self.gelu_approximate!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        for name, value, allowed in (("norm", self.norm, NORMS), ("mlp", self.mlp, MLPS), ("pos", self.pos, POSITIONS)):
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is not one of {allowed}")
        if self.pos == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"RoPE rotates pairs of dimensions: head size {self.n_embd // self.n_head} must be even")

    @property
    def hidden(self) -> int:
        """Width of the MLP's hidden layer; SwiGLU's 8/3 (rounded up to a multiple of 8) keeps 8 * n_embd^2."""
        if self.mlp_hidden is not None:
            return self.mlp_hidden
        return 4 * self.n_embd if self.mlp == "gelu" else 8 * math.ceil(8 * self.n_embd / 3 / 8)


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight: LayerNorm without centring and without bias."""

    def __init__(self, n_embd: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_embd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., 1)
        return x / rms * self.weight


def make_norm(config: GPTConfig) -> nn.Module:
    """The normalisation layer the config asks for: RMSNorm, or LayerNorm (with a bias when ``config.bias``)."""
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd, config.norm_eps)
    return nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)


def rope_angles(T: int, head_size: int, base: float = 10000.0, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles pos * base^(-2i/hs) for positions start..start+T-1: each (T, hs/2)."""
    inv_freq = base ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)  # (hs/2,)
    angles = torch.arange(start, start + T, dtype=torch.float32)[:, None] * inv_freq[None, :]  # (T, hs/2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x_i, x_{i+hs/2}) of x (..., T, hs) by its angle; cos and sin are (T, hs/2)."""
    x1, x2 = x.chunk(2, dim=-1)  # (..., T, hs/2) each
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


class KVCache:
    """Keys and values of the tokens seen so far, one (k, v) pair per layer, each (B, nh, T_seen, hs)."""

    def __init__(self, n_layer: int):
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layer

    def __len__(self) -> int:  # tokens seen so far
        return 0 if self.layers[0] is None else self.layers[0][0].size(2)

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's k, v (B, nh, T, hs) to ``layer``'s and return all of them."""
        if self.layers[layer] is not None:
            k = torch.cat([self.layers[layer][0], k], dim=2)
            v = torch.cat([self.layers[layer][1], v], dim=2)
        self.layers[layer] = (k, v)
        return k, v


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one linear map to queries, keys and values, attention per head
    through SDPA, heads concatenated and projected back. (B, T, C) -> (B, T, C)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout  # on the attention weights
        self.drop = nn.Dropout(config.dropout)  # on the output, before it joins the residual stream

    def heads(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None):
        """Queries, keys and values split into heads, rotated when ``rope`` is given: each (B, nh, T, hs)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        return q, k, v

    def forward(self, x: torch.Tensor, rope=None, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.heads(x, rope)  # (B, nh, T, hs)
        if cache is not None:
            k, v = cache.extend(layer, k, v)  # (B, nh, past + T, hs)
        past = k.size(2) - T  # tokens before these ones
        dropout = self.dropout if self.training else 0.0
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)  # (B, nh, T, hs)
        elif T == 1:  # one new token after the cached ones: it may see every key
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        else:  # new query i sits at position past + i and may see keys 0 .. past + i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.drop(self.proj(y))


class MLP(nn.Module):
    """The position-wise feed-forward layer: GELU (GPT-2) or SwiGLU (LLaMA). (B, T, C) -> (B, T, C)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.swiglu = config.mlp == "swiglu"
        self.gelu_approximate = config.gelu_approximate
        self.up = nn.Linear(config.n_embd, config.hidden, bias=config.bias)
        if self.swiglu:
            self.gate = nn.Linear(config.n_embd, config.hidden, bias=config.bias)
        self.down = nn.Linear(config.hidden, config.n_embd, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            return self.drop(self.down(F.silu(self.gate(x)) * self.up(x)))
        return self.drop(self.down(F.gelu(self.up(x), approximate=self.gelu_approximate)))


class Block(nn.Module):
    """One pre-norm transformer block: x + attention(norm(x)), then x + mlp(norm(x)). (B, T, C) -> (B, T, C)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, rope=None, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope, cache, layer)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    """The course's transformer language model: embeddings, ``n_layer`` blocks, a final norm and the output
    layer. ``forward(idx, targets=None) -> (logits, loss)``; see the module docstring for the switches."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings
        self.wpe = nn.Embedding(config.block_size, config.n_embd) if config.pos == "learned" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = make_norm(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        if config.pos == "rope":  # angles for every position, computed once; not saved in checkpoints
            cos, sin = rope_angles(config.block_size, config.n_embd // config.n_head, config.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)  # (block_size, hs/2)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # scaled init of the layers that write to the residual
            if name.endswith(("proj.weight", "down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def embed(self, idx: torch.Tensor, start: int = 0, prefix: torch.Tensor | None = None):
        """Token (+ learned position) embeddings (B, T, C), and the RoPE angles for positions start..

        A ``prefix`` (B or 1, P, C) goes in front of the token embeddings and is placed like tokens are."""
        x = self.wte(idx)  # (B, T, C)
        if prefix is not None:
            x = torch.cat([prefix.to(x.dtype).expand(idx.size(0), -1, -1), x], dim=1)
        T = x.size(1)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(start, start + T, device=idx.device))
        rope = None
        if self.config.pos == "rope":
            rope = (self.rope_cos[start:start + T], self.rope_sin[start:start + T])  # (T, hs/2) each
        return self.drop(x), rope

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None,
                prefix: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab_size) and the mean cross-entropy against ``targets`` (or None).

        With a ``cache``, ``idx`` holds only the new tokens; their keys and values are appended to it.
        ``prefix`` (P, C) or (B, P, C) are vectors placed before the tokens' embeddings, at positions 0..P-1
        (the soft prompt of prompt tuning, notebook 06); the logits and loss are those of the tokens only."""
        logits = self.lm_head(self.hidden(idx, cache, prefix))  # (B, T, vocab_size)
        return logits, lm.lm_loss(logits, targets)

    def hidden(self, idx: torch.Tensor, cache: KVCache | None = None,
               prefix: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer's normalised hidden states (B, T, C) of the tokens, what the output layer reads; a reward
        model (notebook 09) reads them with a head of its own."""
        lm.check_ids(idx, self.config.vocab_size)
        B, T = idx.shape
        prefix = None if prefix is None else self._check_prefix(prefix, B, cache)  # (B or 1, P, C)
        P = 0 if prefix is None else prefix.size(1)
        start = 0 if cache is None else len(cache)
        if start + P + T > self.config.block_size:
            raise ValueError(f"Sequence of length {start + P + T} is longer than block_size={self.config.block_size}")
        x, rope = self.embed(idx, start, prefix)
        for layer, block in enumerate(self.blocks):
            x = block(x, rope, cache, layer)
        return self.ln_f(x[:, P:])

    def _check_prefix(self, prefix, B: int, cache: KVCache | None) -> torch.Tensor:
        if cache is not None:
            raise ValueError("prefix and cache cannot be combined: put the prefix in the first forward call only.")
        if not isinstance(prefix, torch.Tensor) or not prefix.dtype.is_floating_point:
            raise TypeError(f"prefix must be a float tensor of shape (P, {self.config.n_embd}) or "
                            f"(B, P, {self.config.n_embd}), got {getattr(prefix, 'dtype', type(prefix).__name__)}")
        if prefix.dim() == 2:
            prefix = prefix[None]
        if prefix.dim() != 3 or prefix.size(-1) != self.config.n_embd or prefix.size(0) not in (1, B):
            raise ValueError(f"prefix must have shape (P, {self.config.n_embd}) or ({B}, P, {self.config.n_embd}), "
                             f"got {tuple(prefix.shape)}")
        return prefix

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> torch.Tensor:
        """Attention weights of every layer and head for ``idx`` (B, T): (n_layer, B, nh, T, T), rows sum to 1."""
        lm.check_ids(idx, self.config.vocab_size)
        T = idx.size(1)
        x, rope = self.embed(idx)
        future = torch.ones(T, T, dtype=torch.bool, device=idx.device).triu(diagonal=1)  # (T, T)
        maps = []
        for block in self.blocks:
            q, k, _ = block.attn.heads(block.ln_1(x), rope)  # (B, nh, T, hs)
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, nh, T, T)
            maps.append(scores.masked_fill(future, float("-inf")).softmax(dim=-1))
            x = block(x, rope)
        return torch.stack(maps)

    def new_cache(self) -> KVCache:
        """An empty KV cache for ``forward(idx, cache=...)``; ``helpers.sampling.generate`` uses it."""
        return KVCache(self.config.n_layer)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count. By default the learned position table is left out, as in the scaling-law papers
        (it is a lookup, not computation), and so is the token embedding when it is untied; the tied one is
        kept, because it is also the output layer. ``non_embedding=False`` counts every parameter."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wpe.weight.numel() if self.wpe is not None else 0
            n -= 0 if self.config.tie_weights else self.wte.weight.numel()
        return n

    def flops_per_token(self, training: bool = True) -> int:
        """FLOPs per token at full context: 2N for the weights plus 4 * n_layer * block_size * n_embd for
        attention scores and mixing, forward only; training (forward + backward) costs three times that."""
        c = self.config
        forward = 2 * self.num_params() + 4 * c.n_layer * c.block_size * c.n_embd
        return 3 * forward if training else forward


def param_count(config: GPTConfig) -> int:
    """All parameters of ``GPT(config)``, counted from the config alone (no memory needed: try GPT-3)."""
    C, H, b = config.n_embd, config.hidden, int(config.bias)
    norm = C if config.norm == "rmsnorm" else C * (1 + b)  # gain, plus a bias for LayerNorm
    attention = (3 * C * C + 3 * C * b) + (C * C + C * b)  # qkv and output projection
    mlp = (3 if config.mlp == "swiglu" else 2) * C * H + b * ((2 if config.mlp == "swiglu" else 1) * H + C)
    embeddings = config.vocab_size * C * (1 if config.tie_weights else 2)
    positions = config.block_size * C if config.pos == "learned" else 0
    return embeddings + positions + config.n_layer * (2 * norm + attention + mlp) + norm
