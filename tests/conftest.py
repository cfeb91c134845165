"""Test set-up: smoke scale, a throw-away COURSE_HOME, and an absolute COURSE_DATA.

These are set before any notebook kernel starts, so nbval's kernels inherit them too.
"""

import os
import tempfile
from pathlib import Path

import pytest
import torch


def pytest_configure(config):
    os.environ.setdefault("COURSE_SCALE", "smoke")
    os.environ["COURSE_HOME"] = tempfile.mkdtemp(prefix="llm-course-home-")
    if os.environ.get("COURSE_DATA"):
        os.environ["COURSE_DATA"] = str(Path(os.environ["COURSE_DATA"]).expanduser().resolve())
    os.environ.setdefault("MPLBACKEND", "Agg")
    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def course_home(tmp_path, monkeypatch):
    """A fresh, empty COURSE_HOME for one test."""
    monkeypatch.setenv("COURSE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def has_data(name: str) -> bool:
    """True when the registered file is available without the network."""
    from helpers import data

    spec = data.REGISTRY[name]
    local = Path(os.environ.get("COURSE_DATA", "/nonexistent")) / spec.filename
    return local.exists() or (data.cache_dir() / spec.filename).exists()
