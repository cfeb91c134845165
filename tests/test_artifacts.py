import dataclasses

import numpy as np
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


def test_a_text_file_is_a_named_checkpoint_error(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello, this is not a checkpoint\n")
    with pytest.raises(artifacts.CheckpointError, match="notes.pt.*not a readable checkpoint"):
        artifacts.load(path)


def test_an_empty_file_is_a_named_checkpoint_error(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(artifacts.CheckpointError, match="empty.pt"):
        artifacts.load(path)


@pytest.mark.parametrize("metadata, where", [
    ({"val_loss": np.float64(1.5)}, r"metadata\['val_loss'\].*float"),
    ({"losses": np.array([1.0, 2.0])}, r"metadata\['losses'\].*tolist"),
    ({"history": {"steps": [1, 2, np.int64(3)]}}, r"metadata\['history'\]\['steps'\]\[2\]"),
    ({"when": object()}, r"metadata\['when'\]"),
    ({("a", "b"): 1}, "key of type tuple"),
])
def test_save_refuses_what_load_cannot_read(tmp_path, metadata, where):
    with pytest.raises(TypeError, match=where):
        artifacts.save(GPT(CONFIG), tmp_path / "m.pt", metadata)
    assert not (tmp_path / "m.pt").exists()


def test_plain_metadata_round_trips(tmp_path):
    metadata = {"a": None, "b": True, "c": 3, "d": 2.5, "e": "x", "f": [1, (2, 3)], "g": {"h": torch.ones(2)}, 4: "k"}
    path = artifacts.save(GPT(CONFIG), tmp_path / "m.pt", metadata)
    _, loaded = artifacts.load(path)
    assert loaded.keys() == metadata.keys() and torch.equal(loaded["g"]["h"], torch.ones(2))


@pytest.mark.parametrize("field, name, message", [
    ("model_class", "helpers.artifacts:save", "not an nn.Module subclass"),
    ("model_class", "helpers.gpt:GPTConfig", "not an nn.Module subclass"),
    ("model_class", "helpers.data:fetch", "not an nn.Module subclass"),
    ("config_class", "helpers.data:fetch", "not a config dataclass"),
    ("config_class", "helpers.gpt:GPT", "not a config dataclass"),
    ("model_class", "helpers.gpt:torch", "not an nn.Module subclass"),  # a module imported into helpers
    ("model_class", "helpers.gpt:nn.Linear", "not part of the course"),
    ("model_class", "helpers.nothing:GPT", "does not have"),
    ("model_class", 42, "not part of the course"),
])
def test_only_model_and_config_classes_of_helpers_resolve(tmp_path, field, name, message, capsys):
    path = artifacts.save(GPT(CONFIG), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload[field] = name
    torch.save(payload, path)
    with pytest.raises(artifacts.CheckpointError, match=message):
        artifacts.load(path)


def test_a_helpers_class_that_is_not_a_model_is_refused(tmp_path):
    path = artifacts.save(GPT(CONFIG), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["model_class"] = "helpers.gpt:KVCache"  # defined in helpers, but not a model
    torch.save(payload, path)
    with pytest.raises(artifacts.CheckpointError, match="not an nn.Module subclass"):
        artifacts.load(path)


def test_a_damaged_payload_is_named(tmp_path):
    path = artifacts.save(GPT(CONFIG), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"] = [1, 2]
    torch.save(payload, path)
    with pytest.raises(artifacts.CheckpointError, match="'config' is a list"):
        artifacts.load(path)
    payload["config"] = {"vocab_size": 7, "n_embd": 9}  # 9 is not divisible by n_head
    torch.save(payload, path)
    with pytest.raises(artifacts.CheckpointError, match="does not fit"):
        artifacts.load(path)


@pytest.mark.parametrize("stage, scale", [("../../etc/x", "smoke"), ("demo", "../cpu"), ("/abs", "cpu"),
                                          ("", "cpu"), ("a/b", "cpu"), ("demo", ".."), (None, "cpu")])
def test_stage_and_scale_names_cannot_escape_the_folder(course_home, stage, scale):
    with pytest.raises(ValueError, match="plain name"):
        artifacts.checkpoint_path(stage, scale)


def test_a_damaged_stage_says_how_to_rebuild_it(course_home):
    def build(scale):
        return GPT(CONFIG), {"scale": scale}

    artifacts.load_or_build("demo", "smoke", build)
    artifacts.checkpoint_path("demo", "smoke").write_text("garbage")
    with pytest.raises(artifacts.CheckpointError, match=r"demo.pt.*rebuild=True"):
        artifacts.load_or_build("demo", "smoke", build)
    model, meta = artifacts.load_or_build("demo", "smoke", build, rebuild=True)
    assert meta == {"scale": "smoke"} and artifacts.load(artifacts.checkpoint_path("demo", "smoke"))[1] == meta
