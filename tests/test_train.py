import math

import pytest
import torch

from helpers import train
from helpers.gpt import GPT, GPTConfig


def test_lr_schedule_warmup_peak_and_floor():
    cfg = train.TrainConfig(max_steps=100, learning_rate=1.0, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [train.lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # never rises after warmup
    assert train.lr_at(100, cfg) == pytest.approx(0.1) and train.lr_at(55, cfg) == pytest.approx(0.55)


def test_weight_decay_only_on_matrices():
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    decay, no_decay = train.make_optimizer(model, train.TrainConfig()).param_groups
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    n = sum(p.numel() for g in (decay, no_decay) for p in g["params"])
    assert n == sum(p.numel() for p in model.parameters())


def periodic_tokens(n=4000):
    return torch.tensor([i % 7 for i in range(n)])  # a perfectly predictable sequence


def test_training_learns_a_pattern():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=7, block_size=16, n_layer=1, n_head=2, n_embd=32))
    cfg = train.TrainConfig(max_steps=60, batch_size=8, learning_rate=1e-2, warmup_steps=5, eval_interval=20)
    history = train.train(model, periodic_tokens(), periodic_tokens(700), cfg, progress=False)
    assert history.val_loss[0] > 1.0 and history.val_loss[-1] < 0.2
    assert history.eval_step == [0, 20, 40, 59] and len(history.train_loss) == 60
    assert history.tokens == 60 * 8 * 16 and not model.training


def test_evaluate_matches_uniform_for_an_untrained_model():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8))
    loss = train.evaluate(model, periodic_tokens(), iters=3, generator=torch.Generator().manual_seed(0))
    assert abs(loss - math.log(7)) < 0.2


@pytest.mark.parametrize("clip", [1e-3, None])
def test_clipping_bounds_the_update(clip):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8))
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    cfg = train.TrainConfig(max_steps=1, batch_size=4, optimizer="sgd", learning_rate=1.0, warmup_steps=0,
                            weight_decay=0.0, grad_clip=clip, eval_interval=10)
    history = train.train(model, periodic_tokens(), None, cfg, progress=False)
    moved = (torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm().item()
    assert history.grad_norm[0] > 0.1  # the raw gradient is far above the clipping threshold ...
    if clip is None:  # ... so without clipping one SGD step at learning rate 1 moves the weights by its norm
        assert moved == pytest.approx(history.grad_norm[0], rel=1e-3)
    else:  # ... and with it, by at most the threshold
        assert moved <= clip * (1 + 1e-3)


def test_divergence_stops_the_run():
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8))
    with torch.no_grad():
        model.wte.weight.fill_(float("nan"))
    cfg = train.TrainConfig(max_steps=10, batch_size=2)
    history = train.train(model, periodic_tokens(), None, cfg, progress=False)
    assert history.diverged_at == 0 and history.train_loss == []


def test_time_budget_stops_early():
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8))
    cfg = train.TrainConfig(max_steps=10_000, batch_size=2, time_budget_s=0.0, eval_interval=1000)
    history = train.train(model, periodic_tokens(), periodic_tokens(100), cfg, progress=False)
    assert len(history.step) == 1 and history.eval_step == [0]


def test_bad_tokens_are_a_clear_error():
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8))
    with pytest.raises(TypeError, match="1-D tensor"):
        train.train(model, [1, 2, 3], None, train.TrainConfig(max_steps=1), progress=False)


def test_optimizer_choice():
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    assert isinstance(train.make_optimizer(model, train.TrainConfig(optimizer="sgd")), torch.optim.SGD)
    with pytest.raises(ValueError, match="adamw' or 'sgd"):
        train.make_optimizer(model, train.TrainConfig(optimizer="adam"))


def test_schedule_follows_the_clock_under_a_time_budget():
    cfg = train.TrainConfig(max_steps=1000, warmup_steps=10, time_budget_s=10.0)
    assert train._schedule_step(5, 9.0, cfg) == 5  # warmup counts steps
    assert train._schedule_step(50, 5.0, cfg) == 500  # half the time gone: half-way down the cosine
    assert train._schedule_step(50, 5.0, train.TrainConfig(max_steps=1000)) == 50


@pytest.mark.parametrize("field, value", [("grad_accum_steps", 0), ("eval_interval", 0), ("max_steps", 0),
                                          ("batch_size", -2), ("eval_iters", 0), ("warmup_steps", -1),
                                          ("learning_rate", 0.0), ("learning_rate", float("nan")),
                                          ("min_lr_ratio", 2.0), ("grad_clip", 0.0), ("optimizer", "adam"),
                                          ("betas", (0.9, 1.0)),
                                          ("batch_size", 2.0), ("time_budget_s", -1.0)])
def test_train_config_rejects_nonsense(field, value):
    with pytest.raises(ValueError, match=field):
        train.TrainConfig(**{field: value})


def test_gradient_accumulation_equals_one_big_batch():
    torch.manual_seed(0)
    a = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8))
    b = GPT(a.config)
    b.load_state_dict(a.state_dict())
    batches = [(torch.randint(7, (4, 8)), torch.randint(7, (4, 8))) for _ in range(2)]
    whole = (torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches]))
    big = train.TrainConfig(max_steps=1, batch_size=8, optimizer="sgd", learning_rate=0.5, warmup_steps=0,
                            weight_decay=0.0, grad_clip=None)
    small = train.TrainConfig(max_steps=1, batch_size=4, grad_accum_steps=2, optimizer="sgd", learning_rate=0.5,
                              warmup_steps=0, weight_decay=0.0, grad_clip=None)
    train.train(a, None, None, big, progress=False, get_batch=lambda gen: whole)
    it = iter(batches)
    history = train.train(b, None, None, small, progress=False, get_batch=lambda gen: next(it))
    assert history.tokens == 64
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=1e-6, rtol=1e-5)


def test_evaluate_restores_training_mode_even_when_it_raises():
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8)).train()
    with pytest.raises(ValueError, match="outside 0..6"):
        train.evaluate(model, torch.tensor([9] * 50), iters=1)
    assert model.training
