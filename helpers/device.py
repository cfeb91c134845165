"""Where the course computes: device choice, mixed precision and seeding.

Preference is CUDA, then Apple's MPS, then CPU. On CUDA with bfloat16 support, ``autocast`` runs the
forward pass in bf16 (no loss scaling needed); elsewhere it does nothing, so the same training code runs
everywhere. Nothing is detected at import time: call the functions.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random

import numpy as np
import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """The best available device: cuda > mps > cpu, or ``prefer`` if given (e.g. ``"cpu"``)."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_cpu_threads(threads: int | None = None) -> int:
    """Set how many threads PyTorch uses on the CPU, and return the number.

    By default one fewer than the machine's cores (at least 1, at most 8). The course's models are small, so
    extra threads gain little, and a thread that has to wait for a core another program is using stalls every
    operation: on a 2-core machine with one core busy, two threads trained notebook 04's model about 4 times
    slower than one thread (the README's results give the measurement).
    """
    if threads is None:
        threads = max(1, min(8, (os.cpu_count() or 1) - 1))
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None (automatic), got {threads!r}")
    torch.set_num_threads(threads)
    return threads


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """bf16 on a CUDA device that supports it, otherwise None (full float32)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: torch.device | str) -> contextlib.AbstractContextManager:
    """A context manager for the forward pass: bf16 autocast on CUDA, a no-op elsewhere."""
    device = torch.device(device)
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded the same way."""
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def describe(device: torch.device | str | None = None) -> dict[str, str]:
    """A short report of the machine, for the environment check in notebook 00."""
    device = pick_device() if device is None else torch.device(device)
    report = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "mixed precision": str(autocast_dtype(device) or "off (float32)"),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        report["gpu"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB"
    return report
