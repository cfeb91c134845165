"""Fixtures for the unit tests (the environment is set in the root conftest.py)."""

import os
import re
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


def overfit_one_batch(model, vocab_size: int, T: int, *, steps: int, lr: float):
    """Train ``model`` on one fixed random batch (4, T); return (final loss, x, y)."""
    torch.manual_seed(0)
    x = torch.randint(vocab_size, (4, T))
    y = torch.roll(x, -1, dims=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(steps):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item(), x, y


def evaluate(expression: str) -> int:
    """An arithmetic chain such as '3+5*2' evaluated left to right, as the mini-web does ((3+5)*2), without eval."""
    tokens = re.findall(r"\d+|[-+*]", expression)
    assert "".join(tokens) == expression
    value = int(tokens[0])
    for op, number in zip(tokens[1::2], tokens[2::2]):
        value = value + int(number) if op == "+" else value - int(number) if op == "-" else value * int(number)
    return value
