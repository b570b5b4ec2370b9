"""`pmfs bench infer`: `PMFS.generate_clip` on a synthetic clip (references encoded once per
clip) at 256² and 512²: frames/s, FLOPs per frame of the whole chain (`torch.utils.flop_counter`)
and of the renderer (`pmfs.networks.renderer_flops`), peak memory, and the efficiency: achieved
GFLOP/s ÷ this machine's GEMM ceiling (`harness.gemm_ceiling`), comparable across machines.
Targets: ≥ 5 frames/s on 2 CPU cores (issue 15; DESIGN §6 asked 0.7) and ≥ 25 on a GPU at 256²,
renderer ≤ 50 GFLOPs per 256² frame, 512² in ≤ 1.5× the 256² time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pmfs.commands.bench.harness import (
    MemoryPeak,
    format_mb,
    gemm_ceiling,
    machine,
    median,
    synchronize,
)
from pmfs.commands.bench.model import (
    BenchModel,
    ModelOptions,
    settings,
    settings_line,
    synthetic_clip,
    with_model,
)
from pmfs.options import option

log = logging.getLogger(__name__)

INFER_TARGET_CPU = 5.0
"""Issue 15: whole-chain frames/s at 256² on 2 CPU cores (DESIGN §6's 0.7, raised 7×)."""
INFER_TARGET_GPU = 25.0
"""DESIGN §6: whole-chain frames/s at 256² on one modern GPU (faster than real time)."""
RENDERER_GFLOPS_TARGET = 50.0
"""DESIGN §6: renderer GFLOPs per 256² frame, references encoded once per clip."""
SIZE_RATIO_TARGET = 1.5
"""Issue 15: a 512² frame takes at most 1.5× a 256² frame (the network runs at its working
size; only warps, blends and one interpolation grow with the output)."""


@dataclass(frozen=True)
class InferOptions(ModelOptions):
    """Options of `pmfs bench infer`: the model's, then the synthetic clip's."""

    sizes: tuple[int, ...] = option((256, 512), help="frame sizes H = W to time")
    frames: int = option(25, help="frames of the synthetic clip")
    chunk: int = option(16, help="frames per forward pass")


def _autocast(options: ModelOptions) -> Any:
    import torch

    enabled = options.precision == "bf16-mixed"
    return torch.autocast(options.device, dtype=torch.bfloat16, enabled=enabled)


def time_generate_clip(
    model: Any, clip: Any, options: InferOptions
) -> tuple[list[float], list[float], int, MemoryPeak]:
    """Time `PMFS.generate_clip` on a whole clip (references encoded once per call).

    The first warm-up call runs under `torch.utils.flop_counter.FlopCounterMode` (a separate
    untimed call when `--warmup 0`), so the FLOPs come from the same code path as the timings.

    Returns:
        Wall and process CPU seconds of each timed call, the FLOPs of one call (whole clip),
        the memory peak.
    """
    from torch.utils.flop_counter import FlopCounterMode

    flops = 0
    with MemoryPeak(options.device) as memory, _autocast(options):
        for i in range(max(options.warmup, 1)):
            if i == 0:
                with FlopCounterMode(display=False) as counter:
                    model.generate_clip(clip, chunk=options.chunk)
                flops = counter.get_total_flops()
            elif i < options.warmup:
                model.generate_clip(clip, chunk=options.chunk)
        seconds, cpu_seconds = [], []
        for _ in range(options.repeats):
            synchronize(options.device)
            start, start_cpu = time.perf_counter(), time.process_time()
            model.generate_clip(clip, chunk=options.chunk)
            synchronize(options.device)
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - start_cpu)
    return seconds, cpu_seconds, flops, memory


def infer_payload(options: InferOptions) -> dict[str, Any] | None:
    """`pmfs bench infer`: whole-chain frames/s, FLOPs and peak memory; None on a bad setup."""
    return with_model(options, _measure_infer)


def _measure_infer(options: InferOptions, bench: BenchModel) -> dict[str, Any]:
    import torch

    from pmfs.networks import renderer_flops

    device = torch.device(options.device)
    ceiling = gemm_ceiling(options.device)
    log.info("GEMM ceiling: %.1f GFLOP/s", ceiling)
    model = bench.model.to(device).eval()
    frames = options.frames
    runs = []
    for size in options.sizes:
        clip = synthetic_clip(frames, bench.references, size, options.seed).to(device)
        seconds, cpu_seconds, flops, memory = time_generate_clip(model, clip, options)
        renderer = renderer_flops(model.renderer.network, size=size, k=bench.references)
        clip_s = median(seconds)
        achieved = flops / clip_s / 1e9
        runs.append(
            {
                "image_size": size,
                "frames": frames,
                "clip_s": seconds,
                "frames_per_s": frames / clip_s,
                "ms_per_frame": 1e3 * clip_s / frames,
                "clip_cpu_s": cpu_seconds,
                "cpu_ms_per_frame": 1e3 * median(cpu_seconds) / frames,
                "chain_gflops_per_frame": flops / frames / 1e9,
                "achieved_gflops_per_s": achieved,
                "efficiency": achieved / ceiling,
                "renderer_gflops_per_frame": renderer["forward"] / 1e9,
                "renderer_encode_references_gflops": renderer["encode_references"] / 1e9,
                **memory.as_dict(),
            }
        )
        log.info("infer %d²: %.2f frames/s", size, frames / clip_s)
    return {
        "benchmark": "infer",
        "machine": machine(),
        "settings": {**settings(options, bench), "chunk": options.chunk},
        "gemm_ceiling_gflops_per_s": ceiling,
        "targets": {
            "frames_per_s_256_cpu_2_cores": INFER_TARGET_CPU,
            "frames_per_s_256_gpu": INFER_TARGET_GPU,
            "renderer_gflops_per_frame_256": RENDERER_GFLOPS_TARGET,
            "time_ratio_512_to_256": SIZE_RATIO_TARGET,
        },
        "runs": runs,
    }


def infer_table(payload: dict[str, Any]) -> str:
    """A Markdown table of frames/s, FLOPs and memory per frame size, and the targets."""
    s = payload["settings"]
    target = INFER_TARGET_GPU if s["device"] == "cuda" else INFER_TARGET_CPU
    lines = [
        f"whole chain (PMFS.generate_clip: audio → landmarks → frames, K={s['references']} "
        f"references encoded once per clip, chunks of {s['chunk']}), {settings_line(payload)}",
        "",
        "| size | frames | frames/s | ms/frame | CPU ms/frame | chain GFLOPs/frame | "
        "renderer GFLOPs/frame | encode refs GFLOPs/clip | GFLOP/s | efficiency | "
        "peak RSS MB | peak GPU MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in payload["runs"]:
        lines.append(
            f"| {r['image_size']}² | {r['frames']} | {r['frames_per_s']:.2f} | "
            f"{r['ms_per_frame']:,.0f} | {r['cpu_ms_per_frame']:,.0f} | "
            f"{r['chain_gflops_per_frame']:.1f} | "
            f"{r['renderer_gflops_per_frame']:.1f} | "
            f"{r['renderer_encode_references_gflops']:.1f} | "
            f"{r['achieved_gflops_per_s']:.1f} | {r['efficiency']:.0%} | "
            f"{format_mb(r['peak_rss_mb'])} | {format_mb(r['peak_cuda_mb'])} |"
        )
    lines.append(
        f"\nGEMM ceiling (2048³ fp32): {payload['gemm_ceiling_gflops_per_s']:.1f} GFLOP/s; "
        "efficiency = the chain's GFLOP/s ÷ the ceiling"
    )
    ms = {r["image_size"]: r["ms_per_frame"] for r in payload["runs"]}
    if 256 in ms and 512 in ms:
        lines.append(f"512² ÷ 256² time: {ms[512] / ms[256]:.2f}× (target ≤ {SIZE_RATIO_TARGET})")
    lines.append(
        f"targets at 256²: ≥ {target} frames/s ({s['device']}), renderer ≤ "
        f"{RENDERER_GFLOPS_TARGET:.0f} GFLOPs/frame"
    )
    return "\n".join(lines)
