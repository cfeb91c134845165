"""Checkpoints: how one notebook hands a trained model to the next.

A checkpoint is one ``.pt`` file holding a plain dictionary::

    {"format": FORMAT, "model_class": "helpers.gpt:GPT", "config_class": "helpers.gpt:GPTConfig",
     "config": {...}, "state_dict": {...}, "metadata": {...}}

It is read with ``torch.load(..., weights_only=True)``, which only rebuilds tensors and plain Python
values: opening a checkpoint never runs code stored in it. The classes are named as text and resolved
only inside the ``helpers`` package. Files are written to a temporary name and renamed, so an
interrupted save never leaves half a checkpoint behind.

Stages live at ``$COURSE_HOME/checkpoints/<scale>/<stage>.pt``; ``load_or_build`` loads one or, when it
is missing, trains it with the stage's build function and saves it, so every notebook can run alone.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from helpers import data

FORMAT = "llm-course-checkpoint/1"
KEYS = {"format", "model_class", "config_class", "config", "state_dict", "metadata"}


class CheckpointError(RuntimeError):
    """A file is not a readable course checkpoint (truncated, foreign, or from an unknown class)."""


def checkpoint_path(stage: str, scale: str) -> Path:
    return data.home() / "checkpoints" / scale / f"{stage}.pt"


def _qualname(obj) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def save(model: nn.Module, path: str | Path, metadata: dict | None = None) -> Path:
    """Save ``model`` (which must carry a dataclass ``model.config``) and plain-value ``metadata``."""
    config = getattr(model, "config", None)
    if not dataclasses.is_dataclass(config):
        raise TypeError("save() needs a model with a dataclass `config` attribute, like helpers.gpt.GPT.")
    payload = {
        "format": FORMAT,
        "model_class": _qualname(model),
        "config_class": _qualname(config),
        "config": dataclasses.asdict(config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _resolve(name: str, path: Path):
    module_name, _, attr = name.partition(":")
    if module_name != "helpers" and not module_name.startswith("helpers."):
        raise CheckpointError(f"{path} names class {name!r}, which is not part of the course's helpers package.")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise CheckpointError(f"{path} names class {name!r}, which this version of helpers does not have.") from err


def read(path: str | Path) -> dict:
    """Read and validate a checkpoint file; return its dictionary (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated, damaged, or not saved by helpers.artifacts): "
            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}. Delete it and build it again."
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not KEYS <= payload.keys():
        raise CheckpointError(f"{path} is not a course checkpoint (expected format {FORMAT!r}).")
    return payload


def load(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the saved model on ``device`` (in eval mode); return ``(model, metadata)``."""
    payload = read(path)
    model_cls = _resolve(payload["model_class"], Path(path))
    config_cls = _resolve(payload["config_class"], Path(path))
    try:
        model = model_cls(config_cls(**payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path} does not fit {payload['model_class']}: {err}") from err
    return model.to(device).eval(), payload["metadata"]


def load_or_build(
    stage: str,
    scale: str,
    build: Callable[[str], tuple[nn.Module, dict]],
    *,
    device: torch.device | str = "cpu",
    rebuild: bool = False,
) -> tuple[nn.Module, dict]:
    """Load the checkpoint of ``stage`` at ``scale``; if missing (or ``rebuild``), call ``build(scale)``,
    which returns ``(model, metadata)``, save it, and return it. Returns ``(model, metadata)``."""
    path = checkpoint_path(stage, scale)
    if path.exists() and not rebuild:
        return load(path, device)
    model, metadata = build(scale)
    save(model, path, metadata)
    return model.to(device).eval(), metadata
