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


def test_clipping_bounds_the_update():
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8))
    cfg = train.TrainConfig(max_steps=3, batch_size=4, grad_clip=1e-3, eval_interval=10)
    history = train.train(model, periodic_tokens(), None, cfg, progress=False)
    assert len(history.grad_norm) == 3 and history.val_loss == []


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
