"""What every `pmfs bench` benchmark shares: the machine it ran on, timing, peak memory, and the
report (a Markdown table printed, the numbers written as JSON).

Imports no torch at import time (`pmfs bench --help` stays quick).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def machine() -> dict[str, Any]:
    """CPU model, core count and accelerator of this machine (for the tables)."""
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": gpu,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def machine_line(machine: dict[str, Any]) -> str:
    """One line describing the `machine()` a table was measured on."""
    gpu = f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU"
    return (
        f"{machine['cpu']} ({machine['cores']} cores, {machine['torch_threads']} torch threads)"
        f"{gpu}, torch {machine['torch']}"
    )


def format_mb(value: float | None) -> str:
    """Megabytes for a table cell ("–" when not measured)."""
    return "–" if value is None else f"{value:,.0f}"


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    """Write a benchmark's numbers to `path` (nothing when None)."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=1))
        log.info("wrote %s", path)


def report(
    payload: dict[str, Any] | None, table: Callable[[dict[str, Any]], str], path: str | None
) -> int:
    """Print a benchmark's table and write its JSON; exit code 2 when it could not run."""
    if payload is None:
        return 2
    print(table(payload))
    write_json(path, payload)
    return 0


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work (so that a wall-clock time covers it); nothing on a CPU."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def median(values: list[float]) -> float:
    """The median of the timed repeats."""
    import statistics

    return float(statistics.median(values))


def gemm_ceiling(device: str, size: int = 2048, repeats: int = 3) -> float:
    """This machine's practical fp32 compute ceiling: GFLOP/s of the fastest of `repeats`
    `size`³ matrix products (2·size³ FLOPs each) after one warm-up, with torch's threads.

    A network cannot run faster than its FLOPs at this rate, so achieved GFLOP/s ÷ ceiling (the
    efficiency `pmfs bench infer` prints) compares numbers measured on different machines.
    """
    import torch

    a = torch.rand(size, size, device=device)
    b = torch.rand(size, size, device=device)
    best = float("inf")
    for i in range(repeats + 1):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        if i > 0:
            best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def _rss_bytes() -> int:
    """This process's resident set size now (Linux /proc), else its high-water mark."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _release_memory() -> None:
    """Collect garbage and give freed heap back to the OS, so a baseline RSS means something."""
    import ctypes
    import gc
    from contextlib import suppress

    gc.collect()
    with suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class MemoryPeak:
    """Peak memory while a block runs: process RSS sampled every 5 ms, and CUDA's allocator.

    Attributes (after the block): `baseline_mb` (RSS before), `peak_mb` (highest RSS seen),
    `cuda_peak_mb` (`torch.cuda.max_memory_allocated`, None on the CPU).
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.baseline_mb = 0.0
        self.peak_mb = 0.0
        self.cuda_peak_mb: float | None = None
        self._stop = False
        self._thread: Any = None

    def _sample(self) -> None:
        while not self._stop:
            self.peak_mb = max(self.peak_mb, _rss_bytes() / 2**20)
            time.sleep(0.005)

    def __enter__(self) -> MemoryPeak:
        import threading

        import torch

        _release_memory()
        if self.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        self.baseline_mb = self.peak_mb = _rss_bytes() / 2**20
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        self._stop = True
        self._thread.join()
        self.peak_mb = max(self.peak_mb, _rss_bytes() / 2**20)
        if self.device == "cuda":
            self.cuda_peak_mb = torch.cuda.max_memory_allocated() / 2**20

    def as_dict(self) -> dict[str, float | None]:
        return {
            "peak_rss_mb": self.peak_mb,
            "rss_increase_mb": self.peak_mb - self.baseline_mb,
            "peak_cuda_mb": self.cuda_peak_mb,
        }
