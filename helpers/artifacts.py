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
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from helpers import data

FORMAT = "llm-course-checkpoint/1"
KEYS = {"format", "model_class", "config_class", "config", "state_dict", "metadata"}


class CheckpointError(RuntimeError):
    """A file is not a readable course checkpoint (truncated, foreign, or from an unknown class)."""


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _check_name(kind: str, name) -> str:
    """Stage and scale names become path parts: plain names only, so no path escapes the checkpoint folder."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"{kind} must be a plain name of letters, digits, '_', '-' or '.', such as 'char_gpt', "
                         f"got {name!r}")
    return name


def checkpoint_path(stage: str, scale: str) -> Path:
    """Where the checkpoint of ``stage`` at ``scale`` lives: ``$COURSE_HOME/checkpoints/<scale>/<stage>.pt``."""
    return data.home() / "checkpoints" / _check_name("scale", scale) / f"{_check_name('stage', stage)}.pt"


def _check_plain(value, where: str) -> None:
    """Refuse what ``torch.load(weights_only=True)`` could not read back: only None, bool, int, float, str,
    tensors, and lists, tuples and dicts (with str, int or float keys) of those."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        if type(value) not in (type(None), bool, int, float, str) and not isinstance(value, torch.Tensor):
            raise TypeError(f"{where} is a {type(value).__name__}; convert it to a plain "
                            f"{'int' if isinstance(value, int) else 'float' if isinstance(value, float) else 'str'} "
                            "first (checkpoints hold plain Python values and tensors only)")
        return
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) not in (str, int, float):
                raise TypeError(f"{where} has a key of type {type(key).__name__}; use str keys")
            _check_plain(item, f"{where}[{key!r}]")
        return
    hint = " (call .item() on a numpy number, .tolist() on an array)" if type(value).__module__ == "numpy" else ""
    raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__name__}, which a checkpoint cannot "
                    f"hold{hint}; use plain Python values (None, bool, int, float, str, list, tuple, dict) or tensors")


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
    _check_plain(payload["config"], "the model's config")
    _check_plain(payload["metadata"], "metadata")
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


def _resolve(name, path: Path, kind: str):
    """The class ``name`` ("helpers.module:Class") names, if it is a model (kind "model": an nn.Module subclass)
    or a config (kind "config": a dataclass) defined in the helpers package; anything else is refused."""
    module_name, _, attr = name.partition(":") if isinstance(name, str) else ("", "", "")
    if not (module_name == "helpers" or module_name.startswith("helpers.")) or not attr.isidentifier():
        raise CheckpointError(f"{path} names {kind} class {name!r}, which is not part of the course's helpers package.")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise CheckpointError(f"{path} names {kind} class {name!r}, which this version of helpers does not have.") \
            from err
    ok = isinstance(cls, type) and (issubclass(cls, nn.Module) if kind == "model" else dataclasses.is_dataclass(cls))
    if not ok or not cls.__module__.startswith("helpers"):
        expected = "an nn.Module subclass" if kind == "model" else "a config dataclass"
        raise CheckpointError(f"{path} names {name!r} as its {kind} class, but that is not {expected} of helpers.")
    return cls


def read(path: str | Path) -> dict:
    """Read and validate a checkpoint file; return its dictionary (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds (KeyError on a text file, RuntimeError, UnpicklingError...)
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated, damaged, or not saved by helpers.artifacts): "
            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}. Delete it and build it again."
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not KEYS <= payload.keys():
        raise CheckpointError(f"{path} is not a course checkpoint (expected format {FORMAT!r}).")
    for key, kind in (("config", dict), ("state_dict", dict), ("metadata", dict)):
        if not isinstance(payload[key], kind):
            raise CheckpointError(f"{path} is damaged: its {key!r} is a {type(payload[key]).__name__}, not a dict.")
    return payload


def load(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the saved model on ``device`` (in eval mode); return ``(model, metadata)``."""
    payload = read(path)
    model_cls = _resolve(payload["model_class"], Path(path), "model")
    config_cls = _resolve(payload["config_class"], Path(path), "config")
    try:
        model = model_cls(config_cls(**payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as err:
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
        try:
            model, metadata = load(path, device)
            found = (metadata.get("stage", stage), metadata.get("scale", scale))
            if found != (stage, scale):
                raise CheckpointError(f"{path} holds the stage {found[0]!r} at scale {found[1]!r}, not {stage!r} at "
                                      f"{scale!r}: a file was copied or renamed into the wrong place.")
            return model, metadata
        except CheckpointError as err:
            raise CheckpointError(f"{err} (Or rebuild it: load_or_build({stage!r}, {scale!r}, ..., rebuild=True).)") \
                from err
    model, metadata = build(scale)
    save(model, path, metadata)
    return model.to(device).eval(), metadata
