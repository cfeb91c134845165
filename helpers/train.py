"""One training loop for every model of the course's language-model contract.

Any ``model`` with ``forward(idx, targets) -> (logits, loss)`` and ``model.config.block_size`` trains
here: AdamW (decoupled weight decay, Loshchilov & Hutter 2019), linear warmup then cosine decay of the
learning rate, gradient clipping by global norm, gradient accumulation, bf16 autocast on CUDA, and a
periodic evaluation on held-out data. It returns a ``History`` of plain lists, for plots and tables.

At scale it also resumes: with ``checkpoint=path`` it saves a resume file every ``checkpoint_interval``
steps (``helpers.checkpointing``), and a run started again with the same path continues where the last save
left it, with the same weights, optimizer moments, schedule position and batches. It measures throughput
(``History.tokens_per_s``, from which ``helpers.compute.mfu`` gives the model FLOPs utilization), and it can
``torch.compile`` the model. Flash attention needs nothing here: ``helpers.gpt`` calls PyTorch's
``scaled_dot_product_attention``, which runs a fused flash kernel on CUDA under bf16 autocast.

Simplifications: weight decay applies to matrices only (not biases, norms or 1-D tensors); batches are
random windows of one long token tensor (``helpers.data.get_batch``) unless you pass ``get_batch``; one
process (``scripts/pretrain.py`` runs the same steps data-parallel under torchrun).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from helpers import checkpointing, data, lm
from helpers import device as devices


@dataclass(frozen=True)
class TrainConfig:
    max_steps: int = 200  # optimizer steps
    batch_size: int = 32  # sequences per micro-batch
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    learning_rate: float = 1e-3  # peak learning rate, reached after warmup
    min_lr_ratio: float = 0.1  # final learning rate as a fraction of the peak
    warmup_steps: int = 20  # linear warmup: step s < warmup_steps uses peak * (s + 1) / warmup_steps
    weight_decay: float = 0.1  # AdamW decay on weight matrices
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW moment coefficients
    optimizer: str = "adamw"  # "adamw", or "sgd" (plain stochastic gradient descent, for comparisons)
    grad_clip: float | None = 1.0  # max global gradient norm (None: no clipping)
    eval_interval: int = 50  # evaluate every this many steps (and at the end)
    eval_iters: int = 10  # batches per evaluation
    time_budget_s: float | None = None  # stop after this many seconds; the cosine decay then follows the clock

    def __post_init__(self):
        for name in ("max_steps", "batch_size", "grad_accum_steps", "eval_interval", "eval_iters"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"TrainConfig.warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        checks = {"learning_rate": self.learning_rate > 0, "min_lr_ratio": 0 <= self.min_lr_ratio <= 1,
                  "weight_decay": self.weight_decay >= 0, "betas": all(0 <= b < 1 for b in self.betas),
                  "grad_clip": self.grad_clip is None or self.grad_clip > 0,
                  "time_budget_s": self.time_budget_s is None or self.time_budget_s >= 0,
                  "optimizer": self.optimizer in ("adamw", "sgd")}
        expected = {"learning_rate": "> 0", "min_lr_ratio": "in [0, 1]", "weight_decay": ">= 0",
                    "betas": "two numbers in [0, 1)", "grad_clip": "> 0 or None", "time_budget_s": ">= 0 or None",
                    "optimizer": "'adamw' or 'sgd'"}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"TrainConfig.{name} must be {expected[name]}, got {getattr(self, name)!r}")


@dataclass
class History:
    step: list[int] = field(default_factory=list)  # steps at which train_loss was recorded
    train_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)  # before clipping
    eval_step: list[int] = field(default_factory=list)  # steps at which val_loss was measured
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0  # wall-clock time of the whole run (summed over resumed sessions)
    tokens: int = 0  # training tokens processed
    diverged_at: int | None = None  # step at which the loss became NaN or infinite, if it did
    step_seconds: list[float] = field(default_factory=list)  # time of each optimizer step in `step`, no evaluation
    tokens_per_s: float = 0.0  # throughput of a typical step: see throughput()


def throughput(history: History) -> float:
    """Training tokens per second of a typical optimizer step: tokens per step over the median step time.

    Evaluation is never timed, and the median ignores the slow first step of a run (where torch.compile
    compiles and CUDA warms up) and a few unlucky ones. 0.0 before any step."""
    if not history.step_seconds:
        return 0.0
    steps = len(history.step_seconds) + (history.diverged_at is not None)  # the steps whose tokens were counted
    median = statistics.median(history.step_seconds)
    return history.tokens / steps / median if median > 0 else 0.0


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate at ``step``: linear warmup to the peak, then cosine decay to min_lr_ratio * peak.

    The warmup starts at peak / warmup_steps on step 0, not at 0 (a zero rate would waste the first step), and
    reaches the peak on step warmup_steps - 1; the decay runs from there to ``max_steps``."""
    peak, floor = config.learning_rate, config.learning_rate * config.min_lr_ratio
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    span = max(1, config.max_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


def _schedule_step(step: int, elapsed: float, config: TrainConfig) -> int:
    """With a time budget, the schedule follows whichever runs out first: steps or seconds."""
    if config.time_budget_s is None or step < config.warmup_steps:
        return step
    return max(step, int(elapsed / config.time_budget_s * config.max_steps))


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (or SGD) over the trainable parameters: weight decay on matrices only. A parameter with an
    ``lr_scale`` attribute (e.g. LoRA's token rows) gets its own group, at that multiple of the learning rate."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = []
    for scale in sorted({getattr(p, "lr_scale", 1.0) for p in params}):
        mine = [p for p in params if getattr(p, "lr_scale", 1.0) == scale]
        groups += [{"params": [p for p in mine if p.dim() >= 2], "weight_decay": config.weight_decay,
                    "lr_scale": scale},
                   {"params": [p for p in mine if p.dim() < 2], "weight_decay": 0.0, "lr_scale": scale}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.learning_rate)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.learning_rate, betas=config.betas)
    raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {config.optimizer!r}")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    tokens: torch.Tensor,
    *,
    batch_size: int = 32,
    iters: int = 10,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    get_batch: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> float:
    """Mean next-token cross-entropy (nats per token) of ``model`` on ``iters`` random batches of ``tokens``
    (or on ``iters`` batches ``get_batch(generator) -> (x, y)``, e.g. padded conversations)."""
    if not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be a positive integer, got {iters!r}")
    losses = []
    with lm.eval_mode(model):
        for _ in range(iters):
            if get_batch is not None:
                x, y = get_batch(generator)
            else:
                x, y = data.get_batch(tokens, model.config.block_size, batch_size, generator=generator, device=device)
            with devices.autocast(device):
                _, loss = model(x, y)
            losses.append(loss.item())
    return sum(losses) / len(losses)


def _window_batches(model: nn.Module, tokens, config: TrainConfig, device) -> Callable:
    """The default batches: random windows of one long 1-D tensor of token ids."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1:
        raise TypeError("train() needs train_tokens as a 1-D tensor of token ids (or a get_batch function).")
    return lambda gen: data.get_batch(tokens, model.config.block_size, config.batch_size, generator=gen, device=device)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group: ``lr`` times the group's ``lr_scale`` (1 by default)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def update(model: nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float | None,
           lr: float | None = None) -> float:
    """One update from one loss (the reward model's, DPO's and PPO's loops): set the learning rate (unless None),
    backpropagate, clip the gradient norm to ``grad_clip`` (None: no clipping), step, clear the gradients.
    Returns the gradient norm before clipping."""
    if lr is not None:
        set_lr(optimizer, lr)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), math.inf if grad_clip is None else grad_clip).item()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norm


def optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer,
                   get_batch: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]],
                   generator: torch.Generator, lr: float, config: TrainConfig,
                   device: torch.device | str = "cpu") -> tuple[float, float, int]:
    """One optimizer step over ``grad_accum_steps`` micro-batches drawn with ``get_batch(generator)``;
    returns (mean loss, gradient norm before clipping, tokens). A non-finite loss returns at once, before any
    update, with gradient norm NaN. ``model`` may be a torch.compile or DistributedDataParallel wrapper."""
    set_lr(optimizer, lr)
    loss_sum, tokens = 0.0, 0
    for _ in range(config.grad_accum_steps):
        x, y = get_batch(generator)
        with devices.autocast(device):
            _, loss = model(x, y)
        (loss / config.grad_accum_steps).backward()
        loss_sum += loss.item() / config.grad_accum_steps
        tokens += x.numel()
    if not math.isfinite(loss_sum):  # diverged: report, rather than train on NaNs
        optimizer.zero_grad(set_to_none=True)
        return loss_sum, math.nan, tokens
    max_norm = config.grad_clip if config.grad_clip is not None else math.inf
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm).item()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum, grad_norm, tokens


def _record_eval(model: nn.Module, val_tokens: torch.Tensor | None, history: History, step: int,
                 config: TrainConfig, seed: int, device, get_val_batch=None) -> None:
    gen = torch.Generator().manual_seed(seed + 1)  # the same batches at every evaluation
    history.eval_step.append(step)
    history.val_loss.append(evaluate(model, val_tokens, batch_size=config.batch_size, iters=config.eval_iters,
                                     generator=gen, device=device, get_batch=get_val_batch))


def _check_steps(checkpoint, interval, stop_after, config: TrainConfig) -> tuple[int, int]:
    """(checkpoint interval, step to stop before) after checking both arguments."""
    if checkpoint is None and interval is not None:
        raise ValueError("checkpoint_interval is set but checkpoint is None: pass checkpoint=<path of a file>")
    for name, value in (("checkpoint_interval", interval), ("stop_after", stop_after)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer (steps) or None, got {value!r}")
    return interval or config.eval_interval, min(stop_after or config.max_steps, config.max_steps)


def train(
    model: nn.Module,
    train_tokens: torch.Tensor | None,
    val_tokens: torch.Tensor | None,
    config: TrainConfig,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
    get_batch: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None = None,
    get_val_batch: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_interval: int | None = None,
    stop_after: int | None = None,
    compile: bool = False,
) -> History:
    """Train ``model`` in place on ``train_tokens`` (or on ``get_batch(generator) -> (x, y)``); evaluate on
    ``val_tokens`` (or on batches ``get_val_batch(generator)``) every ``eval_interval`` steps and at the end;
    return the History. The model ends in eval mode.

    ``checkpoint``: a resume file, saved every ``checkpoint_interval`` steps (default: ``eval_interval``) and
    when the call ends. If it exists, training resumes from it (same TrainConfig and seed required) and the
    History returned covers the whole run; if it holds a finished run, train() loads it and returns at once.
    A run that is killed loses at most ``checkpoint_interval`` steps. ``stop_after``: end this call once the
    run has done that many steps (of ``max_steps``; the schedule is unchanged), to continue in a later call
    with the same checkpoint: train in segments, e.g. to look at samples in between.
    A time budget covers the whole run across resumes: the saved clock (``History.seconds``) carries on, so a
    resumed run has only the time the stopped one had left; a run that ran out of time is finished.
    ``compile``: run the model through ``torch.compile`` (worth it on CUDA; compiling takes a while, and the
    saved weights are those of the plain model, without ``_orig_mod.`` in their names)."""
    from tqdm.auto import tqdm

    interval, last = _check_steps(checkpoint, checkpoint_interval, stop_after, config)
    get_batch = get_batch or _window_batches(model, train_tokens, config, device)
    model.to(device).train()
    optimizer = make_optimizer(model, config)
    batch_gen, history, next_step = torch.Generator().manual_seed(seed), History(), 0
    run_config = {**dataclasses.asdict(config), "seed": seed}  # what a resumed run must share with this one
    if checkpoint is not None and Path(checkpoint).exists():
        next_step, finished, saved = checkpointing.restore_run(checkpoint, model, optimizer, batch_gen, run_config,
                                                               device)
        history = History(**saved)
        if finished:  # nothing left to train: the weights are the finished run's
            model.eval()
            return history
    net, out_of_time = torch.compile(model) if compile else model, False
    start = time.perf_counter() - history.seconds  # a resumed run's clock carries on from the saved one
    bar = tqdm(range(next_step, last), desc="training", disable=not progress, leave=False, initial=next_step,
               total=config.max_steps)
    for step in bar:
        lr = lr_at(_schedule_step(step, time.perf_counter() - start, config), config)
        step_start = time.perf_counter()
        loss, grad_norm, tokens = optimizer_step(net, optimizer, get_batch, batch_gen, lr, config, device)
        history.tokens, next_step = history.tokens + tokens, step + 1
        if not math.isfinite(loss):
            history.diverged_at = step
            break
        for name, value in (("step", step), ("train_loss", loss), ("lr", lr), ("grad_norm", grad_norm),
                            ("step_seconds", time.perf_counter() - step_start)):
            getattr(history, name).append(value)
        out_of_time = config.time_budget_s is not None and time.perf_counter() - start > config.time_budget_s
        evaluating = val_tokens is not None or get_val_batch is not None
        if evaluating and (step % config.eval_interval == 0 or step == config.max_steps - 1 or out_of_time):
            _record_eval(net, val_tokens, history, step, config, seed, device, get_val_batch)
            bar.set_postfix(train=f"{loss:.3f}", val=f"{history.val_loss[-1]:.3f}")
        if out_of_time:
            break
        if checkpoint is not None and next_step % interval == 0 and next_step < last:
            history.seconds, history.tokens_per_s = time.perf_counter() - start, throughput(history)
            checkpointing.save_run(checkpoint, model, optimizer, next_step, False, batch_gen,
                                   dataclasses.asdict(history), run_config, device)
    history.seconds, history.tokens_per_s = time.perf_counter() - start, throughput(history)
    bar.close()
    if progress and history.train_loss:  # the bar does not stay on screen (leave=False): one line that does
        held = f", held-out loss {history.val_loss[-1]:.3f}" if history.val_loss else ""
        print(f"training: {len(history.step)} steps in {history.seconds:.0f} s, training loss "
              f"{history.train_loss[-1]:.3f}{held}")
    if checkpoint is not None:
        finished = next_step >= config.max_steps or out_of_time or history.diverged_at is not None
        checkpointing.save_run(checkpoint, model, optimizer, next_step, finished, batch_gen,
                               dataclasses.asdict(history), run_config, device)
    model.eval()
    return history
