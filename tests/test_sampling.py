import pytest
import torch

from helpers import checks, sampling
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


def test_generate_stops_once_every_row_has_drawn_the_stop_token():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=3, block_size=64, n_layer=1, n_head=1, n_embd=8))
    idx = torch.zeros(4, 2, dtype=torch.long)
    full = sampling.generate(model, idx, 40, generator=torch.Generator().manual_seed(1))
    short = sampling.generate(model, idx, 40, generator=torch.Generator().manual_seed(1), stop_token=2)
    new = short[:, 2:]
    assert torch.equal(short, full[:, :short.size(1)])  # the same draws, cut short
    assert (new == 2).any(1).all() and short.size(1) < full.size(1)  # every row has it, and it did stop early
    assert not (new[:, :-1] == 2).any(1).all()  # one step earlier, some row had not drawn it yet


def test_generate_greedy_follows_argmax():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=9, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval()
    out = sampling.generate(model, torch.zeros(1, 1, dtype=torch.long), 3, temperature=0.0)
    for t in range(1, 4):
        assert out[0, t] == model(out[:, :t])[0][0, -1].argmax()


@pytest.mark.parametrize("idx, kwargs, error, message", [
    (torch.zeros(3, dtype=torch.long), {}, ValueError, r"shape \(B, T\).*idx\[None\]"),
    ([[1, 2]], {}, TypeError, "torch.Tensor"),
    (torch.zeros(1, 2), {}, TypeError, "integer token ids"),
    (torch.zeros(1, 0, dtype=torch.long), {}, ValueError, "at least one token"),
    (torch.tensor([[1, 9]]), {}, ValueError, r"outside 0..8"),
    (torch.tensor([[1, -1]]), {}, ValueError, r"outside 0..8"),
    (torch.tensor([[1, 2]]), {"max_new_tokens": -1}, ValueError, "max_new_tokens"),
    (torch.tensor([[1, 2]]), {"temperature": float("nan")}, ValueError, "temperature"),
    (torch.tensor([[1, 2]]), {"temperature": -0.5}, ValueError, "temperature"),
    (torch.tensor([[1, 2]]), {"top_k": 0}, ValueError, "top_k"),
    (torch.tensor([[1, 2]]), {"top_p": 1.5}, ValueError, "top_p"),
])
def test_generate_bad_input(idx, kwargs, error, message):
    model = GPT(GPTConfig(vocab_size=9, block_size=4, n_layer=1, n_head=1, n_embd=8))
    kwargs = {"max_new_tokens": 2, **kwargs}
    with pytest.raises(error, match=message):
        sampling.generate(model, idx, **kwargs)


def test_generate_restores_training_mode_even_when_it_raises():
    model = GPT(GPTConfig(vocab_size=9, block_size=4, n_layer=1, n_head=1, n_embd=8)).train()
    sampling.generate(model, torch.tensor([[1]]), 2)
    assert model.training


    class Failing(GPT):
        def forward(self, idx, targets=None, cache=None):
            raise RuntimeError("boom")

    failing = Failing(model.config).train()
    with pytest.raises(RuntimeError, match="boom"):
        sampling.generate(failing, torch.tensor([[1]]), 2)
    assert failing.training


class CountingGPT(GPT):
    """A GPT that records how many tokens each forward call reads."""

    def __init__(self, config):
        super().__init__(config)
        self.lengths = []

    def forward(self, idx, targets=None, cache=None):
        self.lengths.append(idx.size(1))
        return super().forward(idx, targets, cache)


def test_generate_uses_the_cache_while_the_text_fits():
    torch.manual_seed(0)
    model = CountingGPT(GPTConfig(vocab_size=9, block_size=8, n_layer=1, n_head=1, n_embd=8))
    sampling.generate(model, torch.zeros(1, 3, dtype=torch.long), 7)
    assert model.lengths == [3, 1, 1, 1, 1, 1, 8]  # prompt once, then one token; cropped once it outgrows 8
    model.lengths = []
    sampling.generate(model, torch.zeros(1, 3, dtype=torch.long), 3, use_cache=False)
    assert model.lengths == [3, 4, 5]


class Bigram(torch.nn.Module):
    """A model of the contract without a cache: logits depend on the last token only."""

    def __init__(self, vocab_size=5):
        super().__init__()
        self.config = GPTConfig(vocab_size=vocab_size, block_size=4, n_layer=1, n_head=1, n_embd=4)
        self.table = torch.nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx, targets=None):
        return self.table(idx), None


def test_generate_works_for_models_without_a_cache():
    torch.manual_seed(0)
    model = Bigram()
    out = sampling.generate(model, torch.zeros(2, 1, dtype=torch.long), 6, temperature=0.0)
    assert out.shape == (2, 7)
    for t in range(6):
        assert (out[:, t + 1] == model.table.weight[out[:, t]].argmax(-1)).all()


# Notebook 04's exercise: a learner's plain top-p passes the check, typical mistakes do not

def top_p_attempt(logits, p, keep_crossing=True, unsort=True):
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass = probs.cumsum(-1) - probs if keep_crossing else probs.cumsum(-1)  # mass ranked above (or up to) each
    drop = mass >= p if keep_crossing else mass > p
    if unsort:
        drop = drop.scatter(-1, order, drop)
    return logits.masked_fill(drop, float("-inf"))


GEN = torch.Generator().manual_seed(4)
TOP_P_CASES = [(torch.randn(10, generator=GEN), 0.9), (torch.randn(3, 20, generator=GEN) * 2, 0.5),
               (torch.tensor([4.0, 0.0, 1.0, 0.5]), 0.6), (torch.randn(2, 6, generator=GEN), 1.0)]


@pytest.mark.parametrize("wrong", [
    lambda logits, p: top_p_attempt(logits, p, keep_crossing=False),  # drops the token that crosses p
    lambda logits, p: top_p_attempt(logits, p, unsort=False),  # mask left in sorted order
    lambda logits, p: sampling.top_k_filter(logits, 2),  # a fixed number of tokens instead of a mass
])
def test_top_p_exercise_check(wrong):
    assert checks.exercise("top-p", top_p_attempt, sampling.top_p_filter, TOP_P_CASES).passed
    assert checks.exercise("top-p", wrong, sampling.top_p_filter, TOP_P_CASES).status in (checks.WRONG, checks.ERROR)
