"""Resume files: what a stopped training run needs to continue exactly where it stopped.

A long run can die (a closed laptop, a preempted cloud GPU, a Ctrl-C). So ``helpers.train.train`` saves,
every few steps, one ``.pt`` file holding a plain dictionary::

    {"format": RESUME_FORMAT, "model": state_dict, "optimizer": state_dict, "step": next step to run,
     "finished": bool, "batch_generator": torch.Generator state, "rng": {"cpu": ..., "cuda": ...},
     "history": {...}, "config": {TrainConfig's fields and the seed}}

Weights alone are not enough to continue the same run: AdamW's moment estimates, the position in the
learning-rate schedule and the state of the random generator that draws the batches are part of it too.
With all of them, a run stopped at step k and resumed gives bit-for-bit the weights of a run never stopped
(on the CPU; on a GPU some kernels add in a varying order, so two runs, stopped or not, differ in the last bits).

As with ``helpers.artifacts``, the file is written to a temporary name and renamed into place (a crash
during a save leaves the previous file intact), and read with ``torch.load(weights_only=True)`` (only
tensors and plain values: reading it runs no code).

Simplifications: one process writes the file (no sharded or asynchronous checkpoints, no keeping the last
few), and the data order is reproduced by the generator's state rather than by a data-loader position.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

from helpers.artifacts import CheckpointError

RESUME_FORMAT = "llm-course-resume/1"
RESUME_KEYS = {"format", "model", "optimizer", "step", "finished", "batch_generator", "rng", "history", "config"}


def rng_state(device: torch.device | str) -> dict[str, torch.Tensor]:
    """The global generators that dropout draws from: the CPU one, and the CUDA one when ``device`` is CUDA."""
    state = {"cpu": torch.get_rng_state()}
    if torch.device(device).type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device | str) -> None:
    """Put back what ``rng_state`` saved (the CUDA part only when ``device`` is CUDA and it was saved)."""
    torch.set_rng_state(state["cpu"])
    if torch.device(device).type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_resume(state: dict, path: str | Path) -> Path:
    """Write ``state`` (the keys of ``RESUME_KEYS`` but ``format``) to ``path`` atomically; return the path."""
    missing = RESUME_KEYS - {"format"} - state.keys()
    if missing:
        raise ValueError(f"save_resume: state lacks {sorted(missing)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": RESUME_FORMAT, **state}, f)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_resume(path: str | Path) -> dict:
    """Read and check a resume file written by ``save_resume``; a damaged or foreign file is a CheckpointError."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds (UnpicklingError, RuntimeError, EOFError, ...)
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{path} is not a readable resume file (truncated, damaged, or not written by "
                              f"helpers.train): {first}. Delete it to start the run afresh.") from err
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT or not RESUME_KEYS <= state.keys():
        raise CheckpointError(f"{path} is not a training resume file (expected format {RESUME_FORMAT!r}); "
                              "pass another checkpoint path, or delete it to start afresh.")
    for key, kind in (("model", dict), ("optimizer", dict), ("history", dict), ("config", dict), ("rng", dict),
                      ("step", int), ("batch_generator", torch.Tensor)):
        if not isinstance(state[key], kind):
            raise CheckpointError(f"{path} is damaged: its {key!r} is a {type(state[key]).__name__}.")
    return state


def config_differences(saved: dict, current: dict) -> list[str]:
    """Fields whose values differ between two configs given as dicts, as "name: saved -> current" lines."""
    lines = []
    for name in sorted(saved.keys() | current.keys()):
        old, new = saved.get(name, "<missing>"), current.get(name, "<missing>")
        if (list(old) if isinstance(old, tuple) else old) != (list(new) if isinstance(new, tuple) else new):
            lines.append(f"{name}: {old!r} -> {new!r}")
    return lines


def save_run(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, next_step: int, finished: bool,
             batch_generator: torch.Generator, history: dict, config: dict, device: torch.device | str) -> Path:
    """Save a run's whole state; ``model`` must be the plain module (not a torch.compile or DDP wrapper, whose
    weights carry other names). ``history`` and ``config`` are plain dicts (dataclasses.asdict)."""
    return save_resume({
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "optimizer": optimizer.state_dict(),
        "step": next_step, "finished": finished, "batch_generator": batch_generator.get_state(),
        "rng": rng_state(device), "history": history, "config": config}, path)


def restore_run(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                batch_generator: torch.Generator, config: dict, device: torch.device | str) -> tuple[int, bool, dict]:
    """Load a saved run into ``model``, ``optimizer`` and the generators; return (next step, finished, history).
    ``config`` must equal the saved one (a ValueError names the fields that differ)."""
    state = load_resume(path)
    differences = config_differences(state["config"], config)
    if differences:
        raise ValueError(f"{path} was saved by a run with other settings ({'; '.join(differences)}). Pass the "
                         "same TrainConfig and seed to resume it, or another checkpoint path to start afresh.")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        batch_generator.set_state(state["batch_generator"])
    except (RuntimeError, ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path} does not fit this model and optimizer: {str(err).splitlines()[0]}") from err
    set_rng_state(state["rng"], device)
    return state["step"], bool(state["finished"]), state["history"]
