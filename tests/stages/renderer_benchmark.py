"""The synthetic renderer benchmark of docs/results.md: train `experiments/demo.yaml` briefly on
the CPU, score it on the held-out speakers. Used by `test_renderer_learns.py`, and run alone (in a
subprocess, so an instruction set can be chosen before torch loads) for one cell of the
seed × instruction-set matrix:

    ATEN_CPU_CAPABILITY=avx2 python tests/stages/renderer_benchmark.py --root R --seed 1 --out J

The model is built and trained exactly as `pmfs fit -c experiments/demo.yaml [-c overlay]` builds
it (the real config parser, DataModule and `PMFS` system, the ablation overlays of
`experiments/ablations/`), at 64², for a fixed number of batches. Scores are computed on every
test window of the held-out speakers (driven references, at least `reference_gap` frames from the
target), with `pmfs.metrics.image`'s mouth crop (the box of the true landmarks resized to 64²):

- `renderer`: stage 3 drawing the ground-truth landmarks (what stage 3 learns);
- `chain`: the whole chain from the audio (stages 1–2 predict the landmarks, true head pose);
- `copy_best_reference`: per sample, the reference frame whose mouth box is closest to the
  target's (the best PSNR of the K references — an oracle choice no model can make);
- `warp_best_reference`: the same oracle over the references warped by the landmark flow
  (`pmfs.networks.landmark_flow`, true landmarks): the analytic placement the renderer starts
  from.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from lightning.pytorch import LightningDataModule

from pmfs.batch import Batch
from pmfs.commands.lightning import PMFSLightningCLI
from pmfs.data.synth.config import SynthConfig
from pmfs.data.synth.generate import build_synthetic_dataset
from pmfs.landmarks import mouth_box
from pmfs.metrics.image import crop_mouths, image_psnr
from pmfs.networks.landmark_flow import landmark_flow
from pmfs.networks.warping import warp
from pmfs.stages import PMFS

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "experiments" / "demo.yaml"
ABLATIONS = REPO / "experiments" / "ablations"
BATCHES = 400
"""Training batches of every run (batch 16, 64²): about 3–4 minutes on 2 CPU cores."""
ISA_ENV: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    },
    "default": {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    },
}
"""Environment that makes PyTorch (ATen), oneDNN and MKL use an instruction set: what a CPU
without AVX-512 (avx2) or without AVX (default) runs. Set before torch is imported."""


def build_benchmark_data(root: Path) -> Path:
    """8 speakers × 4 clips at 64²; the generator holds out 2 speakers as the test split."""
    build_synthetic_dataset(SynthConfig(out=root, speakers=8, clips=4, size=64, progress=False))
    return root


def build_cli(args: list[str]) -> PMFSLightningCLI:
    """`PMFSLightningCLI(args, run=False)`: the configured model, data and trainer, built with
    `sys.argv` cleared (LightningCLI must not read the caller's, e.g. pytest's, arguments)."""
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        cli = PMFSLightningCLI(args=args, run=False)
    finally:
        sys.argv = argv
    assert isinstance(cli.model, PMFS)
    return cli


def train(
    root: Path,
    overlay: str | None,
    batches: int,
    seed: int = 0,
    extra: tuple[str, ...] = ("--data.init_args.image_size=64",),
) -> tuple[PMFS, LightningDataModule]:
    """`pmfs fit -c experiments/demo.yaml [-c experiments/ablations/<overlay>.yaml] [extra]` for
    `batches` training batches (no validation, logger or checkpoints); the model and its data.
    The resolved config is written into `root` (LightningCLI saves it in the log dir). By default
    at 64² (demo.yaml's renderer network works at 64²: at 64² output the whole renderer runs at
    the output size, as this benchmark did before issue 15)."""
    args = ["-c", str(DEMO)]
    if overlay is not None:
        args += ["-c", str(ABLATIONS / f"{overlay}.yaml")]
    args += [*extra]
    args += [
        f"--seed_everything={seed}",
        f"--data.init_args.root={root}",
        "--data.init_args.num_workers=0",
        "--data.init_args.samples_per_clip=64",
        f"--trainer.default_root_dir={root}",
        "--trainer.logger=false",
        "--trainer.callbacks=[]",
        "--trainer.enable_checkpointing=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.limit_val_batches=0",
        "--trainer.max_epochs=1000",
        f"--trainer.max_steps={batches * 4}",  # set below from the model's optimizers
    ]
    cli = build_cli(args)
    assert isinstance(cli.datamodule, LightningDataModule)
    optimizers = len(cli.model._build_optimizers())  # stages 1, 2, generator (+ its critics)
    cli.trainer.fit_loop.epoch_loop.max_steps = batches * optimizers
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert int(cli.model.batches_seen) == batches
    return cli.model.eval(), cli.datamodule


def _mouth_psnr(images: torch.Tensor, target: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR of the mouth boxes of `images` against `target`'s, crops resized to 64²."""
    return image_psnr(crop_mouths(images, boxes, 64), crop_mouths(target, boxes, 64))


def _best_of(images: torch.Tensor, target: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(B,) the best mouth PSNR over the K images (B, K, 3, H, W)."""
    k = images.shape[1]
    return torch.stack([_mouth_psnr(images[:, i], target, boxes) for i in range(k)]).amax(dim=0)


@torch.no_grad()
def score(model: PMFS, datamodule: LightningDataModule) -> dict[str, float]:
    """Mean mouth PSNR (dB) over every test window: renderer, chain and the two oracles."""
    datamodule.setup("test")
    sums: dict[str, float] = defaultdict(float)
    count = 0
    batch: Batch
    for batch in datamodule.test_dataloader():
        landmarks, target, ref_frames = batch["landmarks"], batch["target"], batch["ref_frames"]
        centre = landmarks[:, landmarks.shape[1] // 2]  # (B, 68, 2)
        boxes = mouth_box(centre, target.shape[-1])  # (B, 4)
        refs = model.renderer.encode_references(ref_frames, batch["ref_landmarks"])
        renderer = model.renderer.render(landmarks, target, refs).image.clamp(0, 1)
        chain = model(batch)["image"]
        flow = landmark_flow(centre, batch["ref_landmarks"], target.shape[-1])
        sums["renderer"] += _mouth_psnr(renderer, target, boxes).sum().item()
        sums["chain"] += _mouth_psnr(chain, target, boxes).sum().item()
        sums["copy_best_reference"] += _best_of(ref_frames, target, boxes).sum().item()
        sums["warp_best_reference"] += _best_of(warp(ref_frames, flow), target, boxes).sum().item()
        count += target.shape[0]
    return {name: total / count for name, total in sums.items()} | {"windows": float(count)}


def run_environment() -> dict[str, str | int]:
    """The instruction set and thread count a benchmark run used (for its JSON)."""
    return {"isa": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}


def run_cell(
    root: Path, seed: int, overlay: str | None = None, batches: int = BATCHES
) -> dict[str, float | str]:
    """Train and score one run; with the instruction set and thread count it ran with."""
    started = time.perf_counter()
    result: dict[str, float | str] = dict(score(*train(root, overlay, batches, seed)))
    result["seconds"] = time.perf_counter() - started
    result["batches"] = float(batches)
    return result | run_environment()


def main(argv: list[str] | None = None) -> int:
    """One cell: train + score, the result as JSON in `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the benchmark's synthetic set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overlay", default=None, help="an experiments/ablations/ overlay")
    parser.add_argument("--out", type=Path, required=True, help="result JSON")
    args = parser.parse_args(argv)
    if not (args.root / "manifest.csv").is_file():
        build_benchmark_data(args.root)
    result = run_cell(args.root, args.seed, args.overlay)
    args.out.write_text(json.dumps(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
