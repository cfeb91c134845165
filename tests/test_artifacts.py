import dataclasses

import pytest
import torch

from helpers import artifacts
from helpers.gpt import GPT, GPTConfig

CONFIG = GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=8)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = GPT(CONFIG)
    path = artifacts.save(model, tmp_path / "m.pt", {"val_loss": 1.5, "chars": "abc"})
    loaded, metadata = artifacts.load(path)
    assert isinstance(loaded, GPT) and loaded.config == CONFIG
    assert metadata == {"val_loss": 1.5, "chars": "abc"}
    idx = torch.randint(7, (2, 8))
    assert torch.equal(model.eval()(idx)[0], loaded(idx)[0])
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary files left


def test_truncated_checkpoint_is_named(tmp_path):
    path = artifacts.save(GPT(CONFIG), tmp_path / "m.pt")
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(artifacts.CheckpointError, match="m.pt.*not a readable checkpoint"):
        artifacts.load(path)


class Boom:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_foreign_pickle_is_refused_without_running_it(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"x": Boom()}, path, pickle_protocol=2)
    with pytest.raises(artifacts.CheckpointError, match="evil.pt"):
        artifacts.load(path)
    assert "must never run" not in capsys.readouterr().out


def test_foreign_but_valid_file_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(artifacts.CheckpointError, match="not a course checkpoint"):
        artifacts.load(path)


def test_classes_outside_helpers_are_refused(tmp_path):
    path = artifacts.save(GPT(CONFIG), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["model_class"] = "os:system"
    torch.save(payload, path)
    with pytest.raises(artifacts.CheckpointError, match="not part of the course"):
        artifacts.load(path)


def test_missing_file_and_bad_model():
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        artifacts.load("/nonexistent/x.pt")
    with pytest.raises(TypeError, match="dataclass `config`"):
        artifacts.save(torch.nn.Linear(2, 2), "/tmp/never.pt")


def test_load_or_build_builds_once(course_home):
    calls = []

    def build(scale):
        calls.append(scale)
        return GPT(dataclasses.replace(CONFIG, n_embd=4)), {"scale": scale}

    model, meta = artifacts.load_or_build("demo", "smoke", build)
    assert calls == ["smoke"] and meta == {"scale": "smoke"}
    assert artifacts.checkpoint_path("demo", "smoke") == course_home / "checkpoints" / "smoke" / "demo.pt"
    again, meta = artifacts.load_or_build("demo", "smoke", build)
    assert calls == ["smoke"] and again.config == model.config  # loaded, not rebuilt
    artifacts.load_or_build("demo", "smoke", build, rebuild=True)
    assert calls == ["smoke", "smoke"]
