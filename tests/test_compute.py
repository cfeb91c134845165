import pytest

from helpers import compute
from helpers.gpt import GPT, GPTConfig


def test_training_flops_is_six_n_d():
    assert compute.training_flops(70e9, 2e12) == pytest.approx(8.4e23)  # LLaMA 2 70B: 6 * 70e9 * 2e12
    assert compute.training_flops(1, 1) == 6.0


def test_llama2_70b_on_a100s():
    flops = compute.training_flops(70e9, 2e12)
    hours = compute.gpu_hours(flops, compute.GPU_PEAK_FLOPS["A100"], 0.4)
    assert hours == pytest.approx(8.4e23 / (312e12 * 0.4) / 3600)  # 1.87 million A100-hours by hand
    assert 1.86e6 < hours < 1.88e6
    # Touvron et al. (2023) report 1,720,320 A100-hours for the 70B model: that is about 43% MFU
    assert compute.implied_utilization(flops, 1_720_320, 312e12) == pytest.approx(0.4348, abs=1e-4)
    assert compute.days_on(2048, hours) == pytest.approx(hours / 2048 / 24)


def test_gpu_hours_and_implied_utilization_invert_each_other():
    hours = compute.gpu_hours(3.6e18, 1e15, 0.5)
    assert hours == pytest.approx(2.0)  # 3.6e18 FLOPs at 5e14 FLOP/s: 7,200 s
    assert compute.implied_utilization(3.6e18, hours, 1e15) == pytest.approx(0.5)


def test_mfu_by_hand():
    assert compute.mfu(1000.0, 6e9, 1e13) == pytest.approx(0.6)  # 6e12 FLOP/s needed of 1e13
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=8))
    per_token = model.flops_per_token()
    assert compute.mfu(2.0, per_token, per_token) == pytest.approx(2.0)  # exactly twice the peak


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA A100-SXM4-80GB", 312e12), ("NVIDIA A100 80GB PCIe", 312e12), ("NVIDIA A10G", 70e12),
    ("NVIDIA A10", 125e12), ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12),
    ("NVIDIA H200", 989e12), ("Tesla T4", 65e12), ("NVIDIA L4", 121e12), ("NVIDIA L40S", 362e12),
    ("NVIDIA GeForce RTX 4090", 165.2e12), ("Tesla V100-SXM2-16GB", 125e12),
    ("NVIDIA RTX A1000", None), ("NVIDIA GeForce RTX 4080", None), ("AMD Instinct MI300X", None)])
def test_lookup_peak_matches_whole_names(name, peak):
    assert compute.lookup_peak(name) == peak


def test_table_holds_dense_figures_in_a_sane_range():
    assert all(10e12 < peak < 2e15 for peak in compute.GPU_PEAK_FLOPS.values())
    assert compute.GPU_PEAK_FLOPS["H100"] == compute.GPU_PEAK_FLOPS["H200"] == 989e12  # not 1979e12 (sparse)


def test_peak_flops_is_none_off_cuda():
    assert compute.peak_flops("cpu") is None


@pytest.mark.parametrize("call, name", [
    (lambda: compute.training_flops(0, 1e9), "params"), (lambda: compute.training_flops(1e9, -5), "tokens"),
    (lambda: compute.mfu(-1.0, 1.0, 1.0), "tokens_per_s"), (lambda: compute.mfu(1.0, 0, 1.0), "flops_per_token"),
    (lambda: compute.mfu(1.0, 1.0, float("nan")), "peak"), (lambda: compute.gpu_hours(1e20, 1e14, 0), "utilization"),
    (lambda: compute.gpu_hours(1e20, 1e14, 40), "utilization"), (lambda: compute.gpu_hours(1e20, 0, 0.4), "peak"),
    (lambda: compute.implied_utilization(1e20, 0, 1e14), "hours"), (lambda: compute.days_on(0, 10.0), "gpus"),
    (lambda: compute.training_flops(True, 1e9), "params")])
def test_bad_values_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_lookup_peak_wants_a_name():
    with pytest.raises(TypeError, match="gpu_name"):
        compute.lookup_peak(None)
