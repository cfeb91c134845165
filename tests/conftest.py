"""Fixtures for the unit tests (the environment is set in the root conftest.py)."""

import os
from pathlib import Path

import pytest
import torch

# The unit tests use tiny models, for which one thread is fastest and immune to a busy machine.
torch.set_num_threads(1)


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
