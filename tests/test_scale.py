import pytest

from helpers import scale


@pytest.mark.parametrize("name", scale.SCALES)
def test_current_reads_the_environment(monkeypatch, name):
    monkeypatch.setenv("COURSE_SCALE", name.upper())
    assert scale.current() == name


def test_default_follows_cuda(monkeypatch):
    import torch

    monkeypatch.delenv("COURSE_SCALE", raising=False)
    assert scale.current() == ("gpu" if torch.cuda.is_available() else "cpu")


def test_pick_returns_the_value_for_the_scale(monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "smoke")
    assert scale.pick(smoke=1, cpu=2, gpu=3) == 1
    assert scale.pick(smoke=1, cpu=2, gpu=3, scale="gpu") == 3


def test_unknown_scale_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "huge")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        scale.current()
    with pytest.raises(ValueError, match="not a scale"):
        scale.pick(smoke=1, cpu=2, gpu=3, scale="tiny")


def test_pick_needs_all_three_scales():
    with pytest.raises(TypeError):
        scale.pick(smoke=1, cpu=2)
