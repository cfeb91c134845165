"""Which PyTorch build ``make setup`` installs, printed as extra pip flags (one line, possibly empty).

- Linux without an NVIDIA GPU: PyTorch's CPU wheels, from PyTorch's own index added as an extra index when it
  answers within a few seconds. The pin ``torch==2.13.0`` then resolves to ``2.13.0+cpu`` (a local version sorts
  after the plain one), a download of a few hundred MB instead of PyPI's CUDA build, which brings the ``nvidia-*``
  packages and triton (several GB). When the index does not answer (offline, a closed network), no flag is printed
  and pip uses the package index it is configured with, at once.
- Linux with an NVIDIA GPU: PyPI's default build, with CUDA.
- macOS and Windows: PyPI's wheels (no CUDA packages exist for them).

``python scripts/torch_index.py --explain`` also says on stderr which case applied.
"""

from __future__ import annotations

import platform
import shutil
import sys
import time
import urllib.request
from pathlib import Path

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_SECONDS = 3.0


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver is installed (its tool on PATH or its kernel module loaded)."""
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia/version").exists()


def reachable(url: str = CPU_INDEX + "/torch/", timeout: float = PROBE_SECONDS) -> bool:
    """The index answers a HEAD request within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as response:
            return response.status < 400
    except (OSError, ValueError):
        return False


def flags(system: str, gpu: bool, index_reachable: bool) -> list[str]:
    """The pip flags for a machine: ``system`` as ``platform.system()`` names it."""
    if system == "Linux" and not gpu and index_reachable:
        return ["--extra-index-url", CPU_INDEX]
    return []


def main(argv: list[str]) -> int:
    system, gpu = platform.system(), has_nvidia_gpu()
    start = time.perf_counter()
    online = system == "Linux" and not gpu and reachable()
    chosen = flags(system, gpu, online)
    if "--explain" in argv:
        why = ("PyTorch's CPU index" if chosen else
               "PyPI's default build (" + ("NVIDIA GPU found" if gpu else
                                           "not Linux" if system != "Linux" else
                                           f"the CPU index did not answer in {time.perf_counter() - start:.1f} s")
               + ")")
        print(f"torch: {why}", file=sys.stderr)
    print(" ".join(chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
