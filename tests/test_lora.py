"""LoRA from scratch: the same function as peft's on identical weights, gradients only in the adapters,
merge and unmerge, and clear errors."""

import copy

import pytest
import torch
import torch.nn as nn

from helpers import gpt, lora


def tiny_gpt(seed=0):
    torch.manual_seed(seed)
    return gpt.GPT(gpt.GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16))


def randomise_b(model, seed=1):
    """LoRA's B starts at zero (no change to the model); give it values so the tests see the update."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, lora.LoRALinear):
                layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen) * 0.1)


def test_a_new_adapter_changes_nothing_and_only_adapters_get_gradients():
    model, idx = tiny_gpt(), torch.randint(0, 50, (2, 10))
    before = model(idx)[0]
    names = lora.add_lora(model, ("qkv", "proj"), rank=2)
    assert names == ["blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.1.attn.qkv", "blocks.1.attn.proj"]
    torch.testing.assert_close(model(idx)[0], before)  # B = 0
    randomise_b(model)
    _, loss = model(idx, idx)
    loss.backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == ("lora_" in name), name
        assert p.requires_grad == ("lora_" in name), name
    adapters = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert lora.trainable_parameters(model) == adapters == 2 * (2 * (16 + 48) + 2 * (16 + 16))


def test_ours_matches_peft_on_identical_weights_and_merges_the_same():
    peft = pytest.importorskip("peft")
    ours, theirs = tiny_gpt(), tiny_gpt()
    lora.add_lora(ours, ("qkv", "up"), rank=4, alpha=8)
    theirs = peft.inject_adapter_in_model(
        peft.LoraConfig(r=4, lora_alpha=8, target_modules=["qkv", "up"], lora_dropout=0.0), theirs)
    randomise_b(ours)
    with torch.no_grad():  # copy our adapters into peft's
        for name, module in ours.named_modules():
            if isinstance(module, lora.LoRALinear):
                other = theirs.get_submodule(name)
                other.lora_A["default"].weight.copy_(module.lora_A)
                other.lora_B["default"].weight.copy_(module.lora_B)
                assert other.scaling["default"] == module.scaling == 2.0
    idx = torch.randint(0, 50, (3, 12))
    plain = tiny_gpt()(idx)[0]
    out = ours(idx)[0]
    assert (out - plain).abs().max() > 1e-3  # the adapters do something
    torch.testing.assert_close(out, theirs(idx)[0])
    lora.merge_lora(ours)
    for name, module in ours.named_modules():
        if isinstance(module, lora.LoRALinear):
            other = theirs.get_submodule(name)
            other.merge()
            torch.testing.assert_close(module.base.weight, other.base_layer.weight)
    torch.testing.assert_close(ours(idx)[0], out)  # merged: the same function
    lora.unmerge_lora(ours)
    torch.testing.assert_close(ours(idx)[0], out)
    torch.testing.assert_close(ours.blocks[0].attn.qkv.base.weight, tiny_gpt().blocks[0].attn.qkv.weight)


def test_remove_lora_leaves_a_plain_model_with_the_merged_weights():
    model, idx = tiny_gpt(), torch.randint(0, 50, (1, 8))
    lora.add_lora(model, "down", rank=3)
    randomise_b(model)
    adapted = model(idx)[0]
    lora.remove_lora(model)
    assert not any(isinstance(m, lora.LoRALinear) for m in model.modules())
    assert isinstance(model.blocks[1].mlp.down, nn.Linear) and all(p.requires_grad for p in model.parameters())
    assert set(model.state_dict()) == set(tiny_gpt().state_dict())
    torch.testing.assert_close(model(idx)[0], adapted)


def test_training_only_the_adapters_learns_a_new_mapping_and_leaves_the_base_weights():
    model, idx = tiny_gpt(), torch.randint(0, 50, (8, 16), generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-2)
    for _ in range(40):  # first a base model: it learns to copy its input token
        optimizer.zero_grad()
        model(idx, idx)[1].backward()
        optimizer.step()
    frozen = copy.deepcopy(model.state_dict())
    shifted = (idx + 1) % 50  # the new task: the next token id
    lora.add_lora(model, ("qkv", "proj", "up", "down"), rank=4, alpha=8)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-2)
    first = model(idx, shifted)[1].item()
    for _ in range(50):
        optimizer.zero_grad()
        model(idx, shifted)[1].backward()
        optimizer.step()
    assert model(idx, shifted)[1].item() < first / 4
    state = model.state_dict()
    for name, value in frozen.items():
        stored = state.get(name, state.get(name.replace(".weight", ".base.weight").replace(".bias", ".base.bias")))
        torch.testing.assert_close(stored, value)


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="rank"):
        lora.LoRALinear(nn.Linear(4, 8), rank=5)
    with pytest.raises(ValueError, match="rank"):
        lora.LoRALinear(nn.Linear(4, 8), rank=0)
    with pytest.raises(TypeError, match="nn.Linear"):
        lora.LoRALinear(nn.Conv1d(1, 1, 1), rank=1)
    with pytest.raises(ValueError, match="alpha"):
        lora.LoRALinear(nn.Linear(4, 8), rank=2, alpha=0)
    model = tiny_gpt()
    with pytest.raises(ValueError, match="named"):
        lora.add_lora(model, ("q_proj",))
    lora.add_lora(model, ("qkv",))
    with pytest.raises(ValueError, match="already"):
        lora.add_lora(model, ("qkv",))


@pytest.mark.parametrize("tied", [True, False])
def test_token_rows_train_only_their_rows_and_merge_into_a_plain_model(tied):
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16, tie_weights=tied))
    reference = copy.deepcopy(model)
    lora.add_lora(model, "qkv", rank=2)
    added = lora.add_token_rows(model, [47, 48, 47])
    assert added == 2 * 16 * (1 if tied else 2)
    idx = torch.tensor([[1, 47, 5, 48, 2]])
    torch.testing.assert_close(model(idx)[0], reference(idx)[0])  # zero change at first
    model(idx, idx)[1].backward()
    grad = model.wte.delta.grad
    assert grad is not None and grad.abs().sum() > 0
    assert model.wte.base.weight.grad is None and model.lm_head.base.weight.grad is None
    with torch.no_grad():
        model.wte.delta.add_(torch.randn_like(model.wte.delta))
        if not tied:
            model.lm_head.delta.add_(torch.randn_like(model.lm_head.delta))
    changed = model(idx)[0]
    assert (changed - reference(idx)[0]).abs().max() > 1e-3
    plain = lora.remove_lora(model)
    assert set(plain.state_dict()) == set(reference.state_dict())
    torch.testing.assert_close(plain(idx)[0], changed)
    untouched = [i for i in range(50) if i not in (47, 48)]
    torch.testing.assert_close(plain.wte.weight[untouched], reference.wte.weight[untouched])
    with pytest.raises(ValueError, match="token ids"):
        lora.add_token_rows(tiny_gpt(), [50])
