import dataclasses
import math

import pytest
import torch

from helpers import artifacts, checkpointing, data, train
from helpers.artifacts import CheckpointError
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


def test_a_run_with_progress_leaves_one_summary_line(capsys):
    model = GPT(GPTConfig(vocab_size=7, block_size=16, n_layer=1, n_head=2, n_embd=32))
    cfg = train.TrainConfig(max_steps=3, batch_size=2, eval_interval=2, eval_iters=1)
    history = train.train(model, periodic_tokens(), periodic_tokens(200), cfg, progress=True)
    out = capsys.readouterr().out
    assert out.count("training: 3 steps in") == 1 and f"held-out loss {history.val_loss[-1]:.3f}" in out
    train.train(model, periodic_tokens(), None, cfg, progress=False)
    assert capsys.readouterr().out == ""


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


def batches_until(tokens, block_size, batch_size, stop_at=None, error=KeyboardInterrupt):
    """Random windows, like train()'s own batches; the call numbered ``stop_at`` (from 0) raises ``error``
    (a Ctrl-C by default)."""
    calls = []

    def get_batch(gen):
        if stop_at is not None and len(calls) == stop_at:
            raise error("get_batch was called")
        calls.append(1)
        return data.get_batch(tokens, block_size, batch_size, generator=gen)
    return get_batch


RESUME_MODEL = GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.1)  # dropout: RNG
RESUME_CONFIG = train.TrainConfig(max_steps=12, batch_size=4, learning_rate=1e-2, warmup_steps=3, eval_interval=5,
                                  eval_iters=2)


def fresh_model():
    torch.manual_seed(0)
    return GPT(RESUME_MODEL)


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path):
    tokens, val = periodic_tokens(500), periodic_tokens(100)
    a = fresh_model()
    whole = train.train(a, None, val, RESUME_CONFIG, progress=False, get_batch=batches_until(tokens, 8, 4))
    b, path = fresh_model(), tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C during step 6: the last save was after step 3
        train.train(b, None, val, RESUME_CONFIG, progress=False, get_batch=batches_until(tokens, 8, 4, stop_at=6),
                    checkpoint=path, checkpoint_interval=4)
    assert torch.load(path, weights_only=True)["step"] == 4
    torch.manual_seed(123)  # the global generator (dropout) is restored from the file, whatever its state now
    b = GPT(RESUME_MODEL)  # a new process would build a new model: the file holds everything else
    resumed = train.train(b, None, val, RESUME_CONFIG, progress=False, get_batch=batches_until(tokens, 8, 4),
                          checkpoint=path, checkpoint_interval=4)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    for name in ("step", "train_loss", "lr", "grad_norm", "eval_step", "val_loss", "tokens"):
        assert getattr(resumed, name) == getattr(whole, name), name
    assert len(resumed.step_seconds) == 12 and not b.training


def test_training_in_segments_equals_one_run(tmp_path):
    tokens, val, path = periodic_tokens(500), periodic_tokens(100), tmp_path / "run.pt"
    a = fresh_model()
    whole = train.train(a, tokens, val, RESUME_CONFIG, progress=False)
    b = fresh_model()
    for stop in (5, 5, 9, None):  # the second call finds the run at step 5 already: nothing to do
        segment = train.train(b, tokens, val, RESUME_CONFIG, progress=False, checkpoint=path, stop_after=stop)
        assert segment.step == list(range(stop or 12)) and not b.training
    for name in ("step", "train_loss", "eval_step", "val_loss", "tokens"):
        assert getattr(segment, name) == getattr(whole, name), name
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.state_dict().values(), b.state_dict().values()))
    short = train.train(fresh_model(), tokens, None, RESUME_CONFIG, progress=False, stop_after=3)
    assert short.step == [0, 1, 2] and short.lr == whole.lr[:3]  # the schedule of the 12-step run


def test_a_finished_run_loads_without_training(tmp_path):
    tokens, path = periodic_tokens(500), tmp_path / "run.pt"
    a = fresh_model()
    first = train.train(a, tokens, None, RESUME_CONFIG, progress=False, checkpoint=path)
    b = GPT(RESUME_MODEL)
    again = train.train(b, None, None, RESUME_CONFIG, progress=False, checkpoint=path,
                        get_batch=batches_until(tokens, 8, 4, stop_at=0, error=AssertionError))  # no step may run
    assert again == first and not b.training
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_run_out_of_time_stays_finished(tmp_path):
    tokens, path = periodic_tokens(500), tmp_path / "run.pt"
    cfg = train.TrainConfig(max_steps=1000, batch_size=2, time_budget_s=0.0)
    first = train.train(fresh_model(), tokens, None, cfg, progress=False, checkpoint=path)
    again = train.train(fresh_model(), None, None, cfg, progress=False, checkpoint=path,
                        get_batch=batches_until(tokens, 8, 2, stop_at=0, error=AssertionError))
    assert first.step == again.step == [0]


def test_the_resume_file_holds_plain_values_only(tmp_path):
    path = tmp_path / "run.pt"
    history = train.train(fresh_model(), periodic_tokens(500), None, RESUME_CONFIG, progress=False, checkpoint=path)
    state = torch.load(path, weights_only=True)  # would raise on anything but tensors and plain values
    assert state["format"] == checkpointing.RESUME_FORMAT and state["step"] == 12 and state["finished"]
    assert state["config"] == {**dataclasses.asdict(RESUME_CONFIG), "seed": 0}
    assert state["history"]["train_loss"] == history.train_loss and "state" in state["optimizer"]
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary file left behind


@pytest.mark.parametrize("change, message", [({"learning_rate": 2e-2}, r"learning_rate: 0\.01 -> 0\.02"),
                                             ({"max_steps": 20}, "max_steps: 12 -> 20")])
def test_resume_refuses_other_settings(tmp_path, change, message):
    path = tmp_path / "run.pt"
    train.train(fresh_model(), periodic_tokens(500), None, RESUME_CONFIG, progress=False, checkpoint=path)
    other = dataclasses.replace(RESUME_CONFIG, **change)
    with pytest.raises(ValueError, match=message):
        train.train(fresh_model(), periodic_tokens(500), None, other, progress=False, checkpoint=path)
    with pytest.raises(ValueError, match="seed: 0 -> 1"):
        train.train(fresh_model(), periodic_tokens(500), None, RESUME_CONFIG, progress=False, checkpoint=path, seed=1)


def test_a_damaged_or_foreign_resume_file_is_named(tmp_path):
    damaged = tmp_path / "damaged.pt"
    train.train(fresh_model(), periodic_tokens(500), None, RESUME_CONFIG, progress=False, checkpoint=damaged)
    damaged.write_bytes(damaged.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="damaged.pt is not a readable resume file"):
        train.train(fresh_model(), periodic_tokens(500), None, RESUME_CONFIG, progress=False, checkpoint=damaged)
    foreign = artifacts.save(fresh_model(), tmp_path / "model.pt")  # a model checkpoint, not a resume file
    with pytest.raises(CheckpointError, match="model.pt is not a training resume file"):
        train.train(fresh_model(), periodic_tokens(500), None, RESUME_CONFIG, progress=False, checkpoint=foreign)


def test_a_resume_file_of_another_model_is_named(tmp_path):
    path = tmp_path / "run.pt"
    train.train(fresh_model(), periodic_tokens(500), None, RESUME_CONFIG, progress=False, checkpoint=path)
    wider = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(CheckpointError, match="does not fit this model"):
        train.train(wider, periodic_tokens(500), None, RESUME_CONFIG, progress=False, checkpoint=path)


@pytest.mark.parametrize("checkpoint, interval, stop, message", [(None, 5, None, "checkpoint is None"),
                                                                 ("run.pt", 0, None, "checkpoint_interval"),
                                                                 ("run.pt", 2.5, None, "checkpoint_interval"),
                                                                 ("run.pt", None, 0, "stop_after")])
def test_checkpoint_interval_and_stop_after_are_checked(tmp_path, checkpoint, interval, stop, message):
    path = None if checkpoint is None else tmp_path / checkpoint
    with pytest.raises(ValueError, match=message):
        train.train(fresh_model(), periodic_tokens(500), None, RESUME_CONFIG, progress=False, checkpoint=path,
                    checkpoint_interval=interval, stop_after=stop)


def test_throughput_is_tokens_per_step_over_the_median_step_time():
    history = train.History(step=[0, 1, 2, 3], step_seconds=[5.0, 1.0, 1.0, 2.0], tokens=400)
    assert train.throughput(history) == pytest.approx(100 / 1.5)  # the slow first step does not count
    assert train.throughput(train.History()) == 0.0
    run = train.train(fresh_model(), periodic_tokens(500), None, RESUME_CONFIG, progress=False)
    assert len(run.step_seconds) == 12 and run.tokens_per_s == pytest.approx(train.throughput(run))
    assert 0 < sum(run.step_seconds) <= run.seconds and run.tokens_per_s > 0


def test_compile_saves_the_plain_models_weights(tmp_path, monkeypatch):
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model: real_compile(model, backend="eager"))  # no C compiler
    cfg = dataclasses.replace(RESUME_CONFIG, max_steps=3)
    torch.manual_seed(0)
    a = GPT(dataclasses.replace(RESUME_MODEL, dropout=0.0))  # compiled dropout draws its random numbers otherwise
    b, path = GPT(a.config), tmp_path / "run.pt"
    b.load_state_dict(a.state_dict())
    train.train(a, periodic_tokens(500), None, cfg, progress=False)
    train.train(b, periodic_tokens(500), None, cfg, progress=False, compile=True, checkpoint=path)
    saved = torch.load(path, weights_only=True)["model"]
    assert saved.keys() == a.state_dict().keys()  # no "_orig_mod." prefix
    for pa, pb in zip(a.state_dict().values(), saved.values()):
        torch.testing.assert_close(pa, pb)


def test_a_parameter_with_lr_scale_gets_its_own_learning_rate():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    model[1].weight.lr_scale = 0.1
    config = train.TrainConfig(learning_rate=1e-2, weight_decay=0.0)
    optimizer = train.make_optimizer(model, config)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == 4

    def get_batch(_):
        return torch.randn(4, 3), None

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x, y):
            return None, self.net(x).pow(2).mean()

    train.optimizer_step(Wrapped(), optimizer, get_batch, torch.Generator(), 0.5, config)
    rates = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert rates[id(model[1].weight)] == pytest.approx(0.05) and rates[id(model[0].weight)] == 0.5
