"""Compute accounting: how many FLOPs a training run costs, and how well a GPU is used.

Training a transformer with N parameters on D tokens costs about ``6 * N * D`` floating-point operations:
2 per parameter per token for the forward pass (a multiply and an add) and twice that for the backward pass
(Kaplan et al., 2020, section 2.1; Hoffmann et al., 2022). Model FLOPs utilization (MFU, Chowdhery et al.,
2022, appendix B) is the fraction of the GPU's peak that those FLOPs represent::

    MFU = tokens_per_second * flops_per_token / peak_flops

``GPU_PEAK_FLOPS`` lists dense 16-bit tensor-core peaks from the vendors' data sheets (bf16 where the GPU has
it, fp16 on T4 and V100, which have no bf16 tensor cores). Data sheets often print the figure "with sparsity",
twice the dense one; a dense training run can never reach it, so the table holds the dense figure.

Simplifications: 6ND leaves out attention's own FLOPs (``helpers.gpt.GPT.flops_per_token`` counts them) and
any recomputation (activation checkpointing); real runs also lose time to communication, data loading and
failures, all of which MFU folds into one number.
"""

from __future__ import annotations

import math
import re

import torch

GPU_PEAK_FLOPS = {  # name as in torch.cuda.get_device_name -> dense bf16 (fp16 on T4, V100) FLOP/s per GPU
    "V100": 125e12,  # Volta, fp16 tensor cores
    "T4": 65e12,  # Turing, fp16 tensor cores (Colab's free GPU)
    "A100": 312e12,  # Ampere, SXM and PCIe
    "A10": 125e12,
    "A10G": 70e12,  # AWS's variant of the A10 (G5 instances): fewer tensor FLOPs than the A10
    "RTX 3090": 71e12,  # GeForce Ampere, with fp32 accumulation
    "RTX A6000": 154.8e12,
    "L4": 121e12,  # Ada Lovelace (Colab, GCP G2, AWS G6)
    "L40S": 362e12,
    "RTX 4090": 165.2e12,  # GeForce Ada, with fp32 accumulation
    "H100": 989e12,  # Hopper SXM ("NVIDIA H100 80GB HBM3")
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "H200": 989e12,  # Hopper SXM with more memory: the same peak as H100 SXM
    "H200 NVL": 835e12,
}


def _positive(name: str, value) -> float:
    """``value`` as a float, if it is a finite number > 0; otherwise a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def lookup_peak(gpu_name: str) -> float | None:
    """The peak of the table's GPU that ``gpu_name`` names (e.g. "NVIDIA A100-SXM4-80GB"), or None.

    A table name matches as a whole word, case-insensitively ("A10" does not match "A100"); when several
    match ("H100" and "H100 PCIe"), the longest wins."""
    if not isinstance(gpu_name, str):
        raise TypeError(f"gpu_name must be a str such as 'NVIDIA A100-SXM4-80GB', got {type(gpu_name).__name__}")
    for key in sorted(GPU_PEAK_FLOPS, key=len, reverse=True):
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(key)}(?![A-Za-z0-9])", gpu_name, flags=re.IGNORECASE):
            return GPU_PEAK_FLOPS[key]
    return None


def peak_flops(device: torch.device | str) -> float | None:
    """Dense bf16 peak FLOP/s of a CUDA ``device`` from ``GPU_PEAK_FLOPS``; None on CPU, MPS or an unknown GPU."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return lookup_peak(torch.cuda.get_device_name(device))


def training_flops(params: float, tokens: float) -> float:
    """FLOPs to train ``params`` parameters on ``tokens`` tokens: 6 * N * D."""
    return 6.0 * _positive("params", params) * _positive("tokens", tokens)


def mfu(tokens_per_s: float, flops_per_token: float, peak: float) -> float:
    """Model FLOPs utilization: the FLOP/s the model's arithmetic needs, over the hardware's ``peak``."""
    return _positive("tokens_per_s", tokens_per_s) * _positive("flops_per_token", flops_per_token) \
        / _positive("peak", peak)


def _utilization(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"utilization must be a fraction in (0, 1], such as 0.4 for 40% MFU, got {value!r}")
    return float(value)


def gpu_hours(flops: float, peak: float, utilization: float) -> float:
    """GPU-hours to do ``flops`` on GPUs of ``peak`` FLOP/s used at ``utilization`` (MFU, a fraction)."""
    return _positive("flops", flops) / (_positive("peak", peak) * _utilization(utilization)) / 3600.0


def implied_utilization(flops: float, hours: float, peak: float) -> float:
    """The MFU that a reported ``hours`` GPU-hours imply for a run of ``flops`` on GPUs of ``peak`` FLOP/s."""
    return _positive("flops", flops) / (_positive("hours", hours) * 3600.0 * _positive("peak", peak))


def days_on(gpus: int, hours: float) -> float:
    """Wall-clock days for ``hours`` GPU-hours spread over ``gpus`` GPUs (perfect scaling)."""
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ValueError(f"gpus must be a positive integer, got {gpus!r}")
    return _positive("hours", hours) / gpus / 24.0
