"""`pmfs bench train`: one training step (forward, backward, every optimizer step: the stage's own
`training_step` under a Lightning `Trainer`) of `AudioToMouth`, `MouthToFace`, `FaceRenderer`
(generator + discriminator) and the whole `PMFS` system, on a synthetic batch of the batch
contract at the config's image size and batch size; median ms/step, samples/s, peak memory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from pmfs.commands.bench.harness import MemoryPeak, format_mb, machine, median, synchronize
from pmfs.commands.bench.model import (
    BenchModel,
    ModelOptions,
    settings,
    settings_line,
    synthetic_batch,
    with_model,
)
from pmfs.options import option

log = logging.getLogger(__name__)

StageName = Literal["audio_to_mouth", "mouth_to_face", "renderer", "pmfs"]
STAGE_NAMES: tuple[StageName, ...] = ("audio_to_mouth", "mouth_to_face", "renderer", "pmfs")
"""What `pmfs bench train` times: each stage alone, then the whole system (`PMFS`)."""
TRAIN_MEMORY_TARGET_GB = 12.0
"""DESIGN §6: stage 3 at 256², batch 8, under 12 GB of GPU memory."""


@dataclass(frozen=True)
class TrainOptions(ModelOptions):
    """Options of `pmfs bench train`: the model's, then the batches' and the stages to time."""

    image_size: int | None = option(None, help="H = W of the batches (default: the config's data)")
    batch_size: int | None = option(None, help="batch size (default: the config's data)")
    stages: tuple[StageName, ...] = option(
        STAGE_NAMES, help="what to time (pmfs: the whole system, all stages in one step)"
    )


def _stage_module(model: Any, name: str) -> Any:
    """The LightningModule `name` of `STAGE_NAMES` inside the `PMFS` system."""
    return model if name == "pmfs" else model.stage(name)


def _step_timer(device: str) -> Any:
    """A Lightning callback recording each training batch's wall and process CPU time (s)."""
    from lightning.pytorch import Callback

    class StepTimer(Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.cpu_seconds: list[float] = []
            self._start = self._start_cpu = 0.0

        def on_train_batch_start(self, *args: Any) -> None:
            synchronize(device)
            self._start, self._start_cpu = time.perf_counter(), time.process_time()

        def on_train_batch_end(self, *args: Any) -> None:
            synchronize(device)
            self.seconds.append(time.perf_counter() - self._start)
            self.cpu_seconds.append(time.process_time() - self._start_cpu)

    return StepTimer()


def time_train_stage(
    module: Any, batch: dict[str, Any], options: ModelOptions
) -> tuple[list[float], list[float], MemoryPeak]:
    """Run `Trainer.fit` on `warmup + repeats` copies of `batch`: the stage's own training_step.

    Forward, backward and every optimizer step of the stage (the renderer: generator and
    discriminator; the system: all of them) are inside each timed batch.

    Returns:
        The timed steps' wall seconds and process CPU seconds (all threads; warm-up excluded),
        and the memory peak of the whole fit.
    """
    import warnings

    from lightning.pytorch import Trainer
    from torch.utils.data import DataLoader

    steps = options.warmup + options.repeats
    timer = _step_timer(options.device)
    trainer = Trainer(
        accelerator="cuda" if options.device == "cuda" else "cpu",
        devices=1,
        precision="32-true" if options.precision == "32" else "bf16-mixed",
        max_epochs=1,
        limit_train_batches=steps,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    batches: list[dict[str, Any]] = [batch] * steps
    loader: DataLoader[dict[str, Any]] = DataLoader(batches, batch_size=None)  # type: ignore[arg-type]
    with MemoryPeak(options.device) as memory, warnings.catch_warnings():
        for message in ("num_workers", "bottleneck", "no `val_dataloader`", "treespec"):
            warnings.filterwarnings("ignore", message=f".*{message}")
        trainer.fit(module, train_dataloaders=loader)
    return timer.seconds[options.warmup :], timer.cpu_seconds[options.warmup :], memory


def train_payload(options: TrainOptions) -> dict[str, Any] | None:
    """`pmfs bench train`: step times and peak memory of each stage; None on a bad setup."""
    return with_model(options, _measure_train)


def _measure_train(options: TrainOptions, bench: BenchModel) -> dict[str, Any]:
    size = options.image_size or bench.image_size
    batch_size = options.batch_size or bench.batch_size
    batch = synthetic_batch(batch_size, bench.window, bench.references, size, options.seed)
    stages = []
    for name in options.stages:
        module = _stage_module(bench.model, name)
        seconds, cpu_seconds, memory = time_train_stage(module, batch, options)
        step = median(seconds)
        stages.append(
            {
                "stage": name,
                "parameters": sum(p.numel() for p in module.parameters()),
                "step_s": seconds,
                "step_ms_median": 1e3 * step,
                "step_cpu_s": cpu_seconds,
                "step_cpu_ms_median": 1e3 * median(cpu_seconds),
                "samples_per_s": batch_size / step,
                **memory.as_dict(),
            }
        )
        log.info("train %s: %.0f ms per step of %d", name, 1e3 * step, batch_size)
    return {
        "benchmark": "train",
        "machine": machine(),
        "settings": {**settings(options, bench), "image_size": size, "batch_size": batch_size},
        "target_renderer_gpu_memory_gb": TRAIN_MEMORY_TARGET_GB,
        "stages": stages,
    }


def train_table(payload: dict[str, Any]) -> str:
    """A Markdown table of the stages' step times and memory."""
    s = payload["settings"]
    lines = [
        f"train step (forward + backward + optimizer steps) at {s['image_size']}², batch "
        f"{s['batch_size']}, T={s['window']}, K={s['references']}, {settings_line(payload)}",
        "",
        "| stage | parameters | ms/step | CPU ms/step | samples/s | peak RSS MB | "
        "RSS increase MB | peak GPU MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in payload["stages"]:
        lines.append(
            f"| {r['stage']} | {r['parameters'] / 1e6:.2f} M | {r['step_ms_median']:,.0f} | "
            f"{r['step_cpu_ms_median']:,.0f} | "
            f"{r['samples_per_s']:.2f} | {format_mb(r['peak_rss_mb'])} | "
            f"{format_mb(r['rss_increase_mb'])} | {format_mb(r['peak_cuda_mb'])} |"
        )
    return "\n".join(lines)
