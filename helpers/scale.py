"""Scales: one switch that sizes every experiment in the course.

- ``smoke``: CI. Every code path runs with tiny sizes; numbers are not meaningful.
- ``cpu``:   a laptop with 2+ cores. Minutes per notebook; the effects a notebook claims must show.
- ``gpu``:   one modern GPU. Real results in minutes.

The scale is read from the ``COURSE_SCALE`` environment variable, in this module only. When it is unset,
the course runs at ``gpu`` if CUDA is available and at ``cpu`` otherwise.
"""

from __future__ import annotations

import os
from typing import TypeVar

SCALES = ("smoke", "cpu", "gpu")
ENV_VAR = "COURSE_SCALE"

T = TypeVar("T")


def current() -> str:
    """The scale the course runs at now: ``$COURSE_SCALE``, else ``gpu`` with CUDA, else ``cpu``."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value:
        if value not in SCALES:
            raise ValueError(f"{ENV_VAR}={value!r} is not a scale; expected one of {', '.join(SCALES)}.")
        return value
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def pick(*, smoke: T, cpu: T, gpu: T, scale: str | None = None) -> T:
    """Return the value given for the current scale (or for ``scale`` if given).

    >>> pick(smoke=10, cpu=1_000, gpu=100_000, scale="cpu")
    1000
    """
    name = current() if scale is None else scale
    if name not in SCALES:
        raise ValueError(f"scale={name!r} is not a scale; expected one of {', '.join(SCALES)}.")
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[name]
