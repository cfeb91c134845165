import random

import pytest
import torch

from helpers import device


def test_pick_device_prefers_what_is_there():
    d = device.pick_device()
    if torch.cuda.is_available():
        assert d.type == "cuda"
    else:
        assert d.type in {"mps", "cpu"}
    assert device.pick_device("cpu") == torch.device("cpu")


def test_autocast_is_a_no_op_on_cpu():
    assert device.autocast_dtype("cpu") is None
    with device.autocast("cpu"):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_autocast_uses_bf16_on_cuda():
    with device.autocast("cuda"):
        y = torch.ones(2, 2, device="cuda") @ torch.ones(2, 2, device="cuda")
    assert y.dtype == torch.bfloat16


def test_seed_everything_repeats_all_generators():
    def draw():
        g = device.seed_everything(7)
        return random.random(), torch.rand(3).tolist(), torch.rand(3, generator=g).tolist()

    assert draw() == draw()


def test_seed_must_be_an_int():
    with pytest.raises(TypeError, match="int"):
        device.seed_everything("7")


def test_describe_names_the_device():
    report = device.describe("cpu")
    assert report["device"] == "cpu" and report["torch"] == torch.__version__


def test_set_cpu_threads_leaves_a_core_free(monkeypatch):
    before = torch.get_num_threads()
    try:
        for cores, expected in [(1, 1), (2, 1), (4, 3), (64, 8), (None, 1)]:
            monkeypatch.setattr(device.os, "cpu_count", lambda cores=cores: cores)
            assert device.set_cpu_threads() == expected == torch.get_num_threads()
        assert device.set_cpu_threads(2) == 2 == torch.get_num_threads()
        with pytest.raises(ValueError, match="threads"):
            device.set_cpu_threads(0)
    finally:
        torch.set_num_threads(before)
