"""Fine-tuning on one person (issue 14 item 4): the talking-man sample, first 80 % trained on,
last 20 % held out. Used by `test_personal_finetune.py`, and run alone to refresh the numbers
and the frame strip of docs/results.md:

    python tests/stages/personal_benchmark.py --work /tmp/personal --seed 0 --out r.json \
        --strip docs/images/personal_strip.png

The real path, start to end: `pmfs data preprocess videos --detector dlib --split-by time
--size 128` on the video (dlib's 68-point model: research use only), then `pmfs fit -c
experiments/demo.yaml -c experiments/personal.yaml` at 128² from scratch for a fixed number of
batches (the CPU sizes of demo.yaml; the renderer first: stages 1 and 2 frozen, true landmarks).
Scores on every window of the held-out clip (references spread over the mouth's opening, at least
`reference_gap` frames from the target), mouth box resized to 64²:

- `renderer` PSNR / SSIM: stage 3 drawing the true landmarks of the held-out frames;
- `copy_best_reference`: per window the best of the K references (an oracle choice);
- `warp_best_reference`: the same oracle over the references warped by the landmark flow.

Then the fine-tuned checkpoint drives the whole video with another person's speech through
`pmfs infer` (issue 14 item 5): `seam_ratio` is the gradient energy along the border of the
pasted region ÷ the gradient energy elsewhere in the face (≤ 1.2: no visible seam), and
`outside_shift` the median move (px) of dlib's brow, eye and nose-bridge landmarks.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from PIL import Image
from renderer_benchmark import build_cli, run_environment
from scipy import ndimage
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from pmfs.batch import Batch
from pmfs.commands.data import main as data_main
from pmfs.faces.dlib_detector import DlibLandmarks
from pmfs.landmarks import mouth_box
from pmfs.metrics.image import crop_mouths, image_psnr
from pmfs.networks.landmark_flow import landmark_flow
from pmfs.networks.warping import warp
from pmfs.panels import error_heatmap, image_panels, sketch_panels
from pmfs.sketch import render_sketch
from pmfs.stages import PMFS
from pmfs.video import iter_frames

REPO = Path(__file__).resolve().parents[2]
VIDEO = REPO.parent / "shared" / "samples" / "talking_man_1080x1920.mp4"
SPEECH = REPO.parent / "shared" / "samples" / "other_speech_16k.wav"
OUTSIDE = np.r_[17:29, 36:48]
"""Brows, the top of the nose bridge, eyes: landmarks outside the generated lower face."""
CONFIGS = [REPO / "experiments" / "demo.yaml", REPO / "experiments" / "personal.yaml"]
SIZE = 128
BATCHES = 200
"""Training batches of 16 windows: about 7 minutes on 2 CPU cores (docs/results.md)."""


def build_cache(work: Path) -> Path:
    """The talking-man video preprocessed with dlib at 128², split by time (last 20 % test)."""
    raw, cache = work / "raw", work / "cache"
    raw.mkdir(parents=True, exist_ok=True)
    link = raw / "talking_man.mp4"
    if not link.exists():
        link.symlink_to(VIDEO)
    layout = ["preprocess", "videos", "--root", str(raw), "--out", str(cache)]
    settings = ["--size", str(SIZE), "--detector", "dlib", "--split-by", "time", "--no-progress"]
    code = data_main([*layout, *settings])
    assert code == 0, f"preprocessing the talking man failed with exit code {code}"
    return cache


def train(cache: Path, batches: int, seed: int) -> tuple[PMFS, LightningDataModule]:
    """`pmfs fit -c demo.yaml -c personal.yaml` at 128² for `batches` batches (no validation)."""
    args = [a for config in CONFIGS for a in ("-c", str(config))]
    args += [
        f"--seed_everything={seed}",
        f"--data.init_args.root={cache}",
        f"--data.init_args.image_size={SIZE}",
        "--data.init_args.num_workers=0",
        f"--trainer.default_root_dir={cache.parent}",
        "--trainer.logger=false",
        "--trainer.callbacks=[]",
        "--trainer.enable_checkpointing=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.limit_val_batches=0",
        "--trainer.max_epochs=1000",
        f"--trainer.max_steps={batches * 2}",  # 2 optimizers: the generator and its critic
    ]
    cli = build_cli(args)
    optimizers = len(cli.model._build_optimizers())
    assert optimizers == 2, f"max_steps assumes 2 optimizers per batch, got {optimizers}"
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert int(cli.model.batches_seen) == batches
    cli.trainer.save_checkpoint(cache.parent / "personal.ckpt")
    return cli.model.eval(), cli.datamodule


def _mouths(images: Tensor, boxes: Tensor) -> Tensor:
    return crop_mouths(images, boxes, 64)


def _ssim(images: Tensor, target: Tensor) -> Tensor:
    """(B,) SSIM of each image against its target."""
    pairs = zip(images.split(1), target.split(1), strict=True)
    return torch.stack([structural_similarity_index_measure(a, b) for a, b in pairs])  # type: ignore[misc]


def _scores(images: Tensor, target: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
    """(B,) mouth PSNR and SSIM."""
    a, b = _mouths(images, boxes), _mouths(target, boxes)
    return image_psnr(a, b), _ssim(a, b)


def _best(images: Tensor, target: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
    """(B,) the best mouth PSNR and the best SSIM over K images (B, K, 3, H, W)."""
    scores = [_scores(images[:, k], target, boxes) for k in range(images.shape[1])]
    psnr, ssim = zip(*scores, strict=True)
    return torch.stack(psnr).amax(0), torch.stack(ssim).amax(0)


@torch.no_grad()
def score(
    model: PMFS, datamodule: LightningDataModule, strip: Path | None = None
) -> dict[str, float]:
    """Mean mouth PSNR (dB) and SSIM over every held-out window; optionally the frame strip."""
    datamodule.setup("test")
    sums: dict[str, float] = defaultdict(float)
    count, shown = 0, []
    batch: Batch
    for batch in datamodule.test_dataloader():
        landmarks, target, refs = batch["landmarks"], batch["target"], batch["ref_frames"]
        centre = landmarks[:, landmarks.shape[1] // 2]
        boxes = mouth_box(centre, SIZE)
        encoded = model.renderer.encode_references(refs, batch["ref_landmarks"])
        image = model.renderer.render(landmarks, target, encoded).image.clamp(0, 1)
        flow = landmark_flow(centre, batch["ref_landmarks"], SIZE)
        for name, (psnr, ssim) in {
            "renderer": _scores(image, target, boxes),
            "copy_best_reference": _best(refs, target, boxes),
            "warp_best_reference": _best(warp(refs, flow), target, boxes),
        }.items():
            sums[f"{name}_psnr"] += psnr.sum().item()
            sums[f"{name}_ssim"] += ssim.sum().item()
        count += target.shape[0]
        shown.append((target[:1], image[:1], centre[:1]))
    if strip is not None:
        write_strip(shown, strip)
    return {name: total / count for name, total in sums.items()} | {"windows": float(count)}


def paste_check(ckpt: Path, out: Path, seconds: float = 1.0) -> dict[str, float]:
    """`pmfs infer` of the whole video driven by another voice; the seam and the geometry."""
    from pmfs.inference.options import InferenceOptions
    from pmfs.inference.run import run_inference

    options = InferenceOptions(device="cpu", duration=seconds, detector="dlib", progress=False)
    run_inference(ckpt, SPEECH, VIDEO, out, options)
    generated = list(iter_frames(out))
    source = [f for _, f in zip(range(len(generated)), iter_frames(VIDEO), strict=False)]
    landmarks = DlibLandmarks().track(source).landmarks  # (N, 68, 2)
    after = DlibLandmarks().track(generated).landmarks
    ratios = [seam_ratio(a, b, p) for a, b, p in zip(source, generated, landmarks, strict=True)]
    shift = np.linalg.norm(landmarks[:, OUTSIDE] - after[:, OUTSIDE], axis=-1)
    return {"seam_ratio": float(np.median(ratios)), "outside_shift": float(np.median(shift))}


def seam_ratio(source: np.ndarray, output: np.ndarray, points: np.ndarray) -> float:
    """Gradient energy of `output` in a 6-px band along the border of the pasted region, ÷ its
    gradient energy in the rest of the face (the hull of the 68 `points`, the band excluded).

    The pasted region is where the output differs from the input (grey levels, both blurred
    with σ = 2 px to ignore the video codec's noise, differing by more than 6), its largest
    connected part with holes filled.
    """
    grey_in, grey_out = (ndimage.gaussian_filter(f.mean(-1), 2.0) for f in (source, output))
    changed = np.abs(grey_out - grey_in) > 6.0
    labels, count = ndimage.label(changed)
    if count == 0:
        return 0.0
    sizes = ndimage.sum(changed, labels, range(1, count + 1))
    region = ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))
    band = ndimage.binary_dilation(region, iterations=3) & ~ndimage.binary_erosion(
        region, iterations=3
    )
    face = hull_mask(points, output.shape[:2]) & ~band
    grey = output.mean(-1)
    energy = ndimage.sobel(grey, 0) ** 2 + ndimage.sobel(grey, 1) ** 2
    inside = band & hull_mask(points, output.shape[:2])
    return float(energy[inside].mean() / energy[face].mean())


def hull_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) bool: inside the convex hull of (68, 2) pixel points (x, y)."""
    from scipy.spatial import ConvexHull
    from skimage.draw import polygon

    hull = points[ConvexHull(points).vertices]
    mask = np.zeros(shape[:2], dtype=bool)
    rows, cols = polygon(hull[:, 1], hull[:, 0], shape[:2])
    mask[rows, cols] = True
    return mask


def write_strip(shown: list[tuple[Tensor, Tensor, Tensor]], path: Path) -> None:
    """Rows of ground truth | generated | sketch | error, one per test batch (up to 4)."""
    rows = []
    for target, image, centre in shown[:4]:
        sketch = render_sketch(centre[:, None], SIZE)[:, 0]  # (1, 1, H, W)
        panels = [
            image_panels(target)[0],
            image_panels(image)[0],
            sketch_panels(sketch)[0],
            error_heatmap(image, target)[0].numpy(),
        ]
        rows.append(np.concatenate(panels, axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def run(
    work: Path, seed: int, batches: int = BATCHES, strip: Path | None = None
) -> dict[str, float | str]:
    """Preprocess, fine-tune and score; with the training time and the instruction set."""
    cache = build_cache(work)
    started = time.perf_counter()
    model, datamodule = train(cache, batches, seed)
    result: dict[str, float | str] = {"train_seconds": time.perf_counter() - started}
    result |= score(model, datamodule, strip)
    result |= paste_check(cache.parent / "personal.ckpt", cache.parent / "driven.mp4")
    result["batches"] = batches
    return result | run_environment()


def main(argv: list[str] | None = None) -> int:
    """One run: the result as JSON in `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a scratch folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batches", type=int, default=BATCHES)
    parser.add_argument("--out", type=Path, required=True, help="result JSON")
    parser.add_argument("--strip", type=Path, default=None, help="write the frame strip here")
    args = parser.parse_args(argv)
    result = run(args.work, args.seed, args.batches, args.strip)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
