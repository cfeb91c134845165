import pytest
import torch

from helpers import sampling
from helpers.gpt import GPT, GPTConfig


def test_top_k_keeps_k_largest():
    logits = torch.tensor([[1.0, 4.0, 2.0, 3.0]])
    kept = sampling.top_k_filter(logits, 2)
    assert torch.isinf(kept).tolist() == [[True, False, True, False]]
    assert torch.equal(sampling.top_k_filter(logits, 10), logits)


def test_top_p_keeps_the_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = sampling.top_p_filter(probs.log(), 0.75)
    assert (~torch.isinf(kept)).tolist() == [[True, True, False, False]]
    kept = sampling.top_p_filter(probs.log(), 0.1)  # the top token always stays
    assert (~torch.isinf(kept)).sum().item() == 1


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, None, None), (0.5, 3, None), (2.0, None, 0.9)])
def test_probabilities_sum_to_one(temperature, top_k, top_p):
    logits = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    probs = sampling.next_token_probs(logits, temperature, top_k, top_p)
    assert torch.allclose(probs.sum(-1), torch.ones(4)) and (probs >= 0).all()


def test_temperature_zero_is_greedy_and_low_temperature_sharpens():
    logits = torch.tensor([[1.0, 3.0, 2.0]])
    assert sampling.next_token_probs(logits, 0.0).tolist() == [[0.0, 1.0, 0.0]]
    assert sampling.next_token_probs(logits, 0.5)[0, 1] > sampling.next_token_probs(logits, 1.0)[0, 1]


def test_bad_arguments():
    logits = torch.zeros(1, 3)
    with pytest.raises(ValueError, match="top_k"):
        sampling.top_k_filter(logits, 0)
    with pytest.raises(ValueError, match="top_p"):
        sampling.top_p_filter(logits, 1.5)
    with pytest.raises(ValueError, match="temperature"):
        sampling.next_token_probs(logits, -1.0)


def test_generate_shapes_context_cropping_and_seeding():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=9, block_size=4, n_layer=1, n_head=1, n_embd=8))
    idx = torch.zeros(2, 3, dtype=torch.long)

    def run():
        return sampling.generate(model, idx, 10, generator=torch.Generator().manual_seed(1))

    out = run()
    assert out.shape == (2, 13) and torch.equal(out[:, :3], idx) and torch.equal(out, run())
    assert ((out >= 0) & (out < 9)).all()


def test_generate_greedy_follows_argmax():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=9, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval()
    out = sampling.generate(model, torch.zeros(1, 1, dtype=torch.long), 3, temperature=0.0)
    for t in range(1, 4):
        assert out[0, t] == model(out[:, :t])[0][0, -1].argmax()


def test_generate_bad_input():
    model = GPT(GPTConfig(vocab_size=9, block_size=4, n_layer=1, n_head=1, n_embd=8))
    with pytest.raises(TypeError, match=r"\(B, T\)"):
        sampling.generate(model, torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="at least one token"):
        sampling.generate(model, torch.zeros(1, 0, dtype=torch.long), 2)
