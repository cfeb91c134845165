import pytest
import torch

from helpers import checkpointing
from helpers.artifacts import CheckpointError


def state(**changes):
    base = {"model": {"w": torch.ones(2)}, "optimizer": {"state": {}, "param_groups": []}, "step": 3,
            "finished": False, "batch_generator": torch.Generator().manual_seed(1).get_state(),
            "rng": checkpointing.rng_state("cpu"), "history": {"train_loss": [1.5]}, "config": {"betas": (0.9, 0.95)}}
    return {**base, **changes}


def test_round_trip_keeps_every_value(tmp_path):
    path = checkpointing.save_resume(state(), tmp_path / "sub" / "run.pt")
    loaded = checkpointing.load_resume(path)
    assert loaded["step"] == 3 and loaded["history"] == {"train_loss": [1.5]}
    assert loaded["config"]["betas"] == (0.9, 0.95)
    assert torch.equal(loaded["batch_generator"], state()["batch_generator"])
    assert [p.name for p in path.parent.iterdir()] == ["run.pt"]


def test_rng_state_puts_dropout_noise_back():
    saved = checkpointing.rng_state("cpu")
    first = torch.rand(3)
    checkpointing.set_rng_state(saved, "cpu")
    assert torch.equal(torch.rand(3), first)


def test_config_differences_names_each_field():
    saved = {"learning_rate": 1e-3, "betas": (0.9, 0.95), "max_steps": 10}
    assert checkpointing.config_differences(saved, {**saved, "betas": [0.9, 0.95]}) == []  # tuple == list here
    assert checkpointing.config_differences(saved, {**saved, "max_steps": 20, "seed": 1}) == [
        "max_steps: 10 -> 20", "seed: '<missing>' -> 1"]


def test_missing_or_wrong_parts_are_refused(tmp_path):
    with pytest.raises(ValueError, match="lacks.*'rng'"):
        checkpointing.save_resume({k: v for k, v in state().items() if k != "rng"}, tmp_path / "a.pt")
    path = checkpointing.save_resume(state(step="3"), tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="b.pt is damaged: its 'step' is a str"):
        checkpointing.load_resume(path)
    (tmp_path / "c.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="c.pt is not a readable resume file"):
        checkpointing.load_resume(tmp_path / "c.pt")
