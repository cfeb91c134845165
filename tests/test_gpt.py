import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import overfit_one_batch
from helpers import artifacts, checks, sampling
from helpers.gpt import GPT, MLP, GPTConfig, RMSNorm, apply_rope, param_count, rope_angles

CONFIG = GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16)
LLAMA = dataclasses.replace(CONFIG, norm="rmsnorm", mlp="swiglu", pos="rope", tie_weights=False, bias=False)
SWITCHES = [dict(zip(("norm", "mlp", "pos", "tie_weights"), values))
            for values in itertools.product(("layernorm", "rmsnorm"), ("gelu", "swiglu"), ("learned", "rope"),
                                            (True, False))]


def variant(**switches) -> GPTConfig:
    return dataclasses.replace(CONFIG, **switches)


def test_shapes_and_loss():
    torch.manual_seed(0)
    model = GPT(CONFIG)
    idx = torch.randint(11, (3, 16))
    logits, loss = model(idx)
    assert logits.shape == (3, 16, 11) and loss is None
    _, loss = model(idx, idx)
    # a fresh model is close to uniform: loss near log(vocab_size)
    assert abs(loss.item() - math.log(11)) < 0.3


def test_defaults_are_gpt2():
    model = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.1))
    assert isinstance(model.blocks[0].ln_1, torch.nn.LayerNorm) and model.wpe is not None
    assert model.lm_head.weight is model.wte.weight and model.blocks[0].mlp.up.bias is not None


def naive_causal_attention(q, k, v):
    """Attention written with loops over positions: out_t = sum_{s<=t} softmax_s(q_t.k_s / sqrt(hs)) v_s."""
    B, nh, T, hs = q.shape
    out = torch.zeros_like(q)
    for t in range(T):
        scores = (q[:, :, t:t + 1] @ k[:, :, :t + 1].transpose(-2, -1)) / math.sqrt(hs)  # (B, nh, 1, t+1)
        out[:, :, t] = (scores.softmax(-1) @ v[:, :, :t + 1])[:, :, 0]
    return out


@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_attention_matches_a_hand_written_loop(pos):
    torch.manual_seed(0)
    model = GPT(variant(pos=pos)).eval()
    attn, x = model.blocks[0].attn, torch.randn(2, 9, 16)
    rope = (model.rope_cos[:9], model.rope_sin[:9]) if pos == "rope" else None
    q, k, v = attn.heads(x, rope)
    expected = naive_causal_attention(q, k, v).transpose(1, 2).reshape(2, 9, 16)
    assert torch.allclose(attn(x, rope), attn.proj(expected), atol=1e-5)
    assert torch.allclose(F.scaled_dot_product_attention(q, k, v, is_causal=True), naive_causal_attention(q, k, v),
                          atol=1e-5)


@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: "-".join(str(v) for v in s.values()))
def test_future_tokens_do_not_change_past_logits(switches):
    torch.manual_seed(0)
    model = GPT(variant(**switches)).eval()
    idx = torch.randint(11, (1, 12))
    changed = idx.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % 11
    before, _ = model(idx)
    after, _ = model(changed)
    assert torch.allclose(before[0, :8], after[0, :8], atol=1e-6)
    assert not torch.allclose(before[0, 8:], after[0, 8:])


def test_rmsnorm_matches_the_formula_and_torch():
    torch.manual_seed(0)
    norm, x = RMSNorm(8), torch.randn(3, 5, 8)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    expected = x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + 1e-5) * norm.weight
    assert torch.allclose(norm(x), expected, atol=1e-6)
    assert torch.allclose(norm(x), F.rms_norm(x, (8,), norm.weight, eps=1e-5), atol=1e-6)
    assert torch.allclose(norm(3.0 * x), norm(x), atol=1e-4)  # scale invariant (up to eps)


def test_swiglu_matches_the_formula_and_keeps_the_size():
    torch.manual_seed(0)
    mlp, x = MLP(variant(mlp="swiglu")), torch.randn(2, 4, 16)
    a, b = x @ mlp.gate.weight.T + mlp.gate.bias, x @ mlp.up.weight.T + mlp.up.bias
    expected = (a * torch.sigmoid(a) * b) @ mlp.down.weight.T + mlp.down.bias
    assert torch.allclose(mlp(x), expected, atol=1e-6)
    for n_embd in (64, 128, 768, 4096):  # about 8 * n_embd^2 weights, like the GELU MLP
        hidden = GPTConfig(n_embd=n_embd, n_head=1, mlp="swiglu").hidden
        assert hidden % 8 == 0 and abs(3 * n_embd * hidden / (8 * n_embd ** 2) - 1) < 0.05


def rotate(x, position, base=10000.0):
    cos, sin = rope_angles(1, x.size(-1), base, start=position)
    return apply_rope(x, cos, sin)


def test_rope_scores_depend_only_on_the_distance():
    torch.manual_seed(0)
    q, k = torch.randn(1, 8), torch.randn(1, 8)
    for m, n in [(3, 1), (10, 8), (52, 50)]:  # all two apart
        score = (rotate(q, m) * rotate(k, n)).sum()
        assert torch.allclose(score, (rotate(q, 2) * rotate(k, 0)).sum(), atol=1e-4)
    assert not torch.allclose((rotate(q, 5) * rotate(k, 0)).sum(), (rotate(q, 2) * rotate(k, 0)).sum())


def test_rope_is_a_rotation():
    torch.manual_seed(0)
    x = torch.randn(4, 6, 8)
    cos, sin = rope_angles(6, 8)
    assert torch.allclose(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1), atol=1e-5)  # lengths kept
    assert torch.allclose(rotate(x[0], 0), x[0])  # position 0: no rotation
    x1, x2 = x[..., :4], x[..., 4:]  # each pair (x_i, x_{i+4}) turns like a complex number times e^{i angle}
    z = torch.complex(x1, x2) * torch.polar(torch.ones_like(cos), torch.atan2(sin, cos))
    assert torch.allclose(apply_rope(x, cos, sin), torch.cat([z.real, z.imag], -1), atol=1e-5)


@pytest.mark.parametrize("config", [CONFIG, LLAMA], ids=["gpt2", "llama"])
def test_cache_gives_the_same_logits_as_the_full_pass(config):
    torch.manual_seed(0)
    model = GPT(config).eval()
    idx = torch.randint(11, (2, 12))
    full, _ = model(idx)
    cache = model.new_cache()
    first, _ = model(idx[:, :5], cache=cache)  # a prompt of 5 tokens, then one token at a time
    steps = [first] + [model(idx[:, t:t + 1], cache=cache)[0] for t in range(5, 12)]
    assert len(cache) == 12 and torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    with pytest.raises(ValueError, match="longer than block_size"):
        model(torch.zeros(2, 5, dtype=torch.long), cache=cache)


@pytest.mark.parametrize("config", [CONFIG, LLAMA], ids=["gpt2", "llama"])
def test_generation_with_and_without_cache_is_identical(config):
    torch.manual_seed(0)
    model = GPT(config)
    idx = torch.randint(11, (3, 4))
    for temperature in (0.0, 1.0):  # 4 + 20 tokens outgrow block_size = 16: the cropped path is covered too
        runs = [sampling.generate(model, idx, 20, temperature=temperature, use_cache=use_cache,
                                  generator=torch.Generator().manual_seed(1)) for use_cache in (True, False)]
        assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: "-".join(str(v) for v in s.values()))
@pytest.mark.parametrize("bias", [True, False])
def test_param_count_matches_the_model(switches, bias):
    config = variant(**switches, bias=bias)
    assert param_count(config) == GPT(config).num_params(non_embedding=False)


def test_param_count_by_hand():
    c = CONFIG
    per_block = 2 * 2 * c.n_embd + (3 * c.n_embd * c.n_embd + 3 * c.n_embd) + (c.n_embd * c.n_embd + c.n_embd) \
        + (4 * c.n_embd * c.n_embd + 4 * c.n_embd) + (4 * c.n_embd * c.n_embd + c.n_embd)
    expected = c.vocab_size * c.n_embd + c.n_layer * per_block + 2 * c.n_embd  # tied head, final norm
    assert GPT(c).num_params() == expected
    assert GPT(c).num_params(non_embedding=False) == expected + c.block_size * c.n_embd


@pytest.mark.parametrize("config, published", [
    (GPTConfig(vocab_size=40478, block_size=512, n_layer=12, n_head=12, n_embd=768), 117e6),  # GPT-1
    (GPTConfig(vocab_size=50257, block_size=1024, n_layer=48, n_head=25, n_embd=1600), 1542e6),  # GPT-2 XL
    (GPTConfig(vocab_size=50257, block_size=2048, n_layer=96, n_head=96, n_embd=12288), 175e9),  # GPT-3
    (GPTConfig(vocab_size=32000, block_size=2048, n_layer=32, n_head=32, n_embd=4096, norm="rmsnorm",
               mlp="swiglu", pos="rope", tie_weights=False, bias=False, mlp_hidden=11008), 6.74e9),  # LLaMA-7B
])
def test_param_count_reproduces_published_sizes(config, published):
    assert abs(param_count(config) / published - 1) < 0.02


def test_flops_per_token():
    model = GPT(CONFIG)
    n, c = model.num_params(), CONFIG
    assert model.flops_per_token(training=False) == 2 * n + 4 * c.n_layer * c.block_size * c.n_embd
    assert model.flops_per_token() == 3 * model.flops_per_token(training=False)


@pytest.mark.parametrize("config", [CONFIG, LLAMA], ids=["gpt2", "llama"])
def test_overfits_one_batch(config):
    torch.manual_seed(0)
    loss, _, _ = overfit_one_batch(GPT(config), 11, 16, steps=150, lr=1e-2)
    assert loss < 0.1


def test_checkpoint_round_trip_keeps_every_switch(tmp_path):
    torch.manual_seed(0)
    model = GPT(LLAMA)
    loaded, _ = artifacts.load(artifacts.save(model, tmp_path / "llama.pt"))
    idx = torch.randint(11, (1, 8))
    assert loaded.config == LLAMA and torch.equal(loaded(idx)[0], model.eval()(idx)[0])
    assert "rope_cos" not in model.state_dict()  # recomputed from the config, not stored


def test_bad_config_and_input():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="norm"):
        GPTConfig(norm="batchnorm")
    with pytest.raises(ValueError, match="even"):
        GPTConfig(n_embd=12, n_head=4, pos="rope")
    with pytest.raises(ValueError, match="longer than block_size"):
        GPT(CONFIG)(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("config", [CONFIG, LLAMA], ids=["gpt2", "llama"])
def test_attention_maps_are_causal_distributions_that_reproduce_the_output(config):
    torch.manual_seed(0)
    model = GPT(config).eval()
    idx = torch.randint(11, (2, 7))
    maps = model.attention_maps(idx)
    assert maps.shape == (2, 2, 2, 7, 7) and torch.allclose(maps.sum(-1), torch.ones(2, 2, 2, 7))
    assert (maps.triu(diagonal=1) == 0).all()
    x, rope = model.embed(idx)  # layer 0 by hand: the maps times the values give the attention output
    attn = model.blocks[0].attn
    _, _, v = attn.heads(model.blocks[0].ln_1(x), rope)
    y = (maps[0] @ v).transpose(1, 2).reshape(2, 7, 16)
    assert torch.allclose(attn.proj(y), attn(model.blocks[0].ln_1(x), rope), atol=1e-5)


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    model = GPT(dataclasses.replace(CONFIG, dropout=0.5))
    idx = torch.randint(11, (1, 8))
    assert not torch.equal(model.train()(idx)[0], model(idx)[0])
    assert torch.equal(model.eval()(idx)[0], model(idx)[0])


# The notebook's exercises: a learner's plain solution passes the check, a typical mistake does not

def causal_attention(q, k, v, scale=True, mask=True):
    scores = q @ k.transpose(-2, -1) / (math.sqrt(q.size(-1)) if scale else 1.0)
    if mask:
        T = q.size(-2)
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return scores.softmax(-1) @ v


def layer_norm(x, weight, bias, eps=1e-5, unbiased=False):
    mean, var = x.mean(-1, keepdim=True), x.var(-1, keepdim=True, unbiased=unbiased)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def rope_interleaved(x, cos, sin):
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


def rope_interleaved_reference(x, cos, sin):  # the notebook's reference: our layout, dimensions reordered
    order = torch.cat([torch.arange(0, x.size(-1), 2), torch.arange(1, x.size(-1), 2)])
    return apply_rope(x[..., order], cos, sin)[..., torch.argsort(order)]


GEN = torch.Generator().manual_seed(0)
ATTENTION_CASES = [tuple(torch.randn(*shape, generator=GEN) for _ in range(3)) for shape in [(5, 8), (2, 3, 7, 16)]]
NORM_CASES = [(3 * torch.randn(4, 8, generator=GEN) + 2, torch.rand(8, generator=GEN), torch.randn(8, generator=GEN))]
ROPE_CASES = [(torch.randn(2, 3, 7, 16, generator=GEN), *rope_angles(7, 16, start=4))]


@pytest.mark.parametrize("right, wrong, reference, cases", [
    (causal_attention, lambda q, k, v: causal_attention(q, k, v, mask=False),
     lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), ATTENTION_CASES),
    (causal_attention, lambda q, k, v: causal_attention(q, k, v, scale=False),
     lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), ATTENTION_CASES),
    (layer_norm, lambda x, w, b: layer_norm(x, w, b, unbiased=True),
     lambda x, w, b: F.layer_norm(x, (x.size(-1),), w, b, eps=1e-5), NORM_CASES),
    (rope_interleaved, apply_rope, rope_interleaved_reference, ROPE_CASES),
])
def test_exercise_checks(right, wrong, reference, cases):
    assert checks.exercise("exercise", right, reference, cases).passed
    assert checks.exercise("exercise", wrong, reference, cases).status in (checks.WRONG, checks.ERROR)


# ----------------------------------------------------------------------------- against transformers' models
def _copy_gpt2(hf) -> dict:
    """Our state dict from a transformers GPT2LMHeadModel (its Conv1D layers store weights transposed)."""
    sd, out = hf.state_dict(), {"wte.weight": None, "wpe.weight": None}
    out["wte.weight"], out["wpe.weight"] = sd["transformer.wte.weight"], sd["transformer.wpe.weight"]
    names = {"ln_1": "ln_1", "ln_2": "ln_2", "attn.c_attn": "attn.qkv", "attn.c_proj": "attn.proj",
             "mlp.c_fc": "mlp.up", "mlp.c_proj": "mlp.down"}
    for i in range(hf.config.n_layer):
        for theirs, ours in names.items():
            weight, bias = sd[f"transformer.h.{i}.{theirs}.weight"], sd[f"transformer.h.{i}.{theirs}.bias"]
            out[f"blocks.{i}.{ours}.weight"] = weight if theirs.startswith("ln") else weight.T
            out[f"blocks.{i}.{ours}.bias"] = bias
    out["ln_f.weight"], out["ln_f.bias"] = sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"]
    out["lm_head.weight"] = out["wte.weight"]
    return out


def _copy_llama(hf) -> dict:
    """Our state dict from a transformers LlamaForCausalLM (q, k, v stacked into one matrix)."""
    sd = hf.state_dict()
    out = {"wte.weight": sd["model.embed_tokens.weight"], "ln_f.weight": sd["model.norm.weight"],
           "lm_head.weight": sd["lm_head.weight"]}
    for i in range(hf.config.num_hidden_layers):
        p = f"model.layers.{i}."
        out[f"blocks.{i}.ln_1.weight"] = sd[p + "input_layernorm.weight"]
        out[f"blocks.{i}.ln_2.weight"] = sd[p + "post_attention_layernorm.weight"]
        out[f"blocks.{i}.attn.qkv.weight"] = torch.cat([sd[p + f"self_attn.{x}_proj.weight"] for x in "qkv"])
        out[f"blocks.{i}.attn.proj.weight"] = sd[p + "self_attn.o_proj.weight"]
        for theirs, ours in (("gate_proj", "gate"), ("up_proj", "up"), ("down_proj", "down")):
            out[f"blocks.{i}.mlp.{ours}.weight"] = sd[p + f"mlp.{theirs}.weight"]
    return out


def _ours_and_theirs(config: GPTConfig, state_dict: dict, hf) -> tuple[GPT, torch.Tensor, torch.Tensor]:
    """Our GPT with ``state_dict`` loaded, a random batch, and the transformers model's logits on it."""
    ours = GPT(config).eval()
    ours.load_state_dict(state_dict)
    idx = torch.randint(config.vocab_size, (3, config.block_size))
    with torch.no_grad():
        expected = hf(idx).logits
    torch.testing.assert_close(ours(idx)[0], expected, atol=1e-5, rtol=1e-4)
    return ours, idx, expected


def test_gpt2_configuration_equals_transformers_gpt2():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_config = transformers.GPT2Config(vocab_size=101, n_positions=32, n_embd=48, n_layer=2, n_head=4,
                                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                        activation_function="gelu_new", layer_norm_epsilon=1e-5, bos_token_id=0,
                                        eos_token_id=0)
    hf = transformers.GPT2LMHeadModel(hf_config).eval()
    with torch.no_grad():  # random, non-trivial norms and biases, so that every parameter matters
        for name, p in hf.named_parameters():
            if name.endswith("bias") or "ln" in name:
                p.normal_(0.0 if name.endswith("bias") else 1.0, 0.1)
            elif "c_fc" in name:  # pre-activations of order 1, where the two GELUs differ
                p.normal_(0.0, 0.5)
    config = GPTConfig(vocab_size=101, block_size=32, n_layer=2, n_head=4, n_embd=48, gelu_approximate="tanh")
    _, idx, expected = _ours_and_theirs(config, _copy_gpt2(hf), hf)
    exact = GPT(dataclasses.replace(config, gelu_approximate="none")).eval()
    exact.load_state_dict(_copy_gpt2(hf))
    assert not torch.allclose(exact(idx)[0], expected, atol=1e-5, rtol=1e-4)  # GPT-2 needs the tanh GELU


def test_llama_configuration_equals_transformers_llama():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_config = transformers.LlamaConfig(vocab_size=101, hidden_size=48, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=32,
                                         rms_norm_eps=1e-6, rope_theta=500000.0, tie_word_embeddings=False,
                                         attention_bias=False, mlp_bias=False)
    hf = transformers.LlamaForCausalLM(hf_config).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "norm" in name:
                p.normal_(1.0, 0.1)
    config = GPTConfig(vocab_size=101, block_size=32, n_layer=2, n_head=4, n_embd=48, norm="rmsnorm", mlp="swiglu",
                       pos="rope", tie_weights=False, bias=False, mlp_hidden=128, norm_eps=1e-6, rope_base=500000.0)
    ours, idx, expected = _ours_and_theirs(config, _copy_llama(hf), hf)
    cache = ours.new_cache()  # the KV cache path gives the same logits
    steps = [ours(idx[:, :20], cache=cache)[0]] + [ours(idx[:, t:t + 1], cache=cache)[0] for t in range(20, 32)]
    torch.testing.assert_close(torch.cat(steps, dim=1), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("field, value", [("vocab_size", 0), ("block_size", -1), ("n_layer", 0), ("n_head", 0),
                                          ("n_embd", 0), ("n_embd", 2.5), ("block_size", True), ("dropout", 1.0),
                                          ("dropout", -0.1), ("mlp_hidden", 0), ("norm_eps", 0.0),
                                          ("gelu_approximate", "fast"), ("rope_base", 1.0)])
def test_gpt_config_rejects_nonsense_sizes(field, value):
    with pytest.raises(ValueError, match=field):
        GPTConfig(**{field: value})
