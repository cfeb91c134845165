import pytest
import torch

from helpers.gpt import GPT, GPTConfig

CONFIG = GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16)


def test_shapes_and_loss():
    torch.manual_seed(0)
    model = GPT(CONFIG)
    idx = torch.randint(11, (3, 16))
    logits, loss = model(idx)
    assert logits.shape == (3, 16, 11) and loss is None
    _, loss = model(idx, idx)
    # a fresh model is close to uniform: loss near log(vocab_size)
    assert abs(loss.item() - torch.log(torch.tensor(11.0)).item()) < 0.3


def test_future_tokens_do_not_change_past_logits():
    torch.manual_seed(0)
    model = GPT(CONFIG).eval()
    idx = torch.randint(11, (1, 12))
    changed = idx.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % 11
    before, _ = model(idx)
    after, _ = model(changed)
    assert torch.allclose(before[0, :8], after[0, :8], atol=1e-6)
    assert not torch.allclose(before[0, 8:], after[0, 8:])


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = GPT(CONFIG)
    x = torch.randint(11, (4, 16))
    y = torch.roll(x, -1, dims=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1


def test_param_count_by_hand():
    c = CONFIG
    per_block = 2 * 2 * c.n_embd + (3 * c.n_embd * c.n_embd + 3 * c.n_embd) + (c.n_embd * c.n_embd + c.n_embd) \
        + (4 * c.n_embd * c.n_embd + 4 * c.n_embd) + (4 * c.n_embd * c.n_embd + c.n_embd)
    expected = c.vocab_size * c.n_embd + c.n_layer * per_block + 2 * c.n_embd  # tied head, final norm
    assert GPT(c).num_params() == expected
    assert GPT(c).num_params(non_embedding=False) == expected + c.block_size * c.n_embd


def test_bad_config_and_input():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="longer than block_size"):
        GPT(CONFIG)(torch.zeros(1, 17, dtype=torch.long))
