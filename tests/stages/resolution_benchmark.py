"""Issue 15's benchmark: the renderer's network at a working size against the paper's
full-resolution renderer, on the synthetic set's held-out speakers (docs/results.md).

    python tests/stages/resolution_benchmark.py --root R --arm working --seed 0 --out J

Every arm is `experiments/demo.yaml` trained by `renderer_benchmark.train` for the same number of
batches (400, batch 16) on a synthetic set made at 256² (8 speakers × 4 clips; the DataModule
resizes on load):

- `working`: demo.yaml as shipped: 256² frames (shrunk to 128² until batch 200,
  `curriculum.renderer_size`), the network at 64², bicubic reference warps, the `MouthDetail`
  head, the mouth critic and no whole-frame critic;
- `no_mouth_gan`: the same without the mouth critic;
- `single_size`: the same at 256² from the first batch (no coarse-to-fine);
- `switch_300`: the same, at 128² until batch 300 (the demo's switch before it moved to 200);
- `previous`: the demo before the coarse-to-fine sizes (128² frames, the whole-frame critic at
  0.02, no mouth critic);
- `full_resolution`: the paper's renderer at the previous demo's sizes and losses:
  `working_size: null` (the network at 128²), bilinear warps, no mouth head;
- `today`: the demo before issue 15, that renderer at 64² output (image_size 64).

Each is scored on every test window at the output sizes it can make: the working-size arms at
128² and 256² (the same weights: the network stays at 64²), `full_resolution` at 128² (its
training size), and
`today` at 64² upsampled bilinearly to 128² and 256² (what pasting its 64² face into a larger
frame shows). Scores, the renderer drawing the true landmarks:

- mouth PSNR and SSIM (`pmfs.metrics.image`: the true mouth box, crops resized to 64²);
- sharpness: the variance of the Laplacian in the lower face (`pmfs.masks.lower_face_mask` of the
  true landmarks) ÷ the ground truth's (`pmfs.metrics.sharpness`): `sharpness_pooled`, the
  summed variances' ratio over all windows (as `pmfs demo` reports it), and `sharpness`, the
  mean of the per-window ratios (biased up by closed-mouth windows).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningDataModule
from renderer_benchmark import BATCHES, run_environment, train

from pmfs.batch import Batch
from pmfs.data.synth.config import SynthConfig
from pmfs.data.synth.generate import build_synthetic_dataset
from pmfs.landmarks import mouth_box
from pmfs.masks import lower_face_mask
from pmfs.metrics.image import crop_mouths, image_psnr, image_ssim
from pmfs.metrics.sharpness import laplacian_variance
from pmfs.networks.renderer_blocks import resize
from pmfs.stages import PMFS

PREVIOUS = """\
model:
  init_args:
    curriculum:
      renderer_size: null
    renderer:
      init_args:
        loss_weights:
          adversarial: 0.02
          feature_matching: 0.5
          mouth_adversarial: 0.0
          mouth_feature_matching: 0.0
"""
"""An overlay of demo.yaml with the demo's losses before the coarse-to-fine sizes (with
`image_size=128`, `ARMS`)."""
FULL_RESOLUTION = (
    PREVIOUS
    + """\
        network:
          init_args:
            working_size: null
            image_warp: bilinear
            mouth_detail: 0
"""
)
"""The paper's renderer: its network at the output size, the references warped bilinearly, no
`MouthDetail` head (a `working_size=null` command-line argument does not reach a nested
`init_args`)."""
OVERLAYS = {
    "no_mouth_gan": "model:\n  init_args:\n    renderer:\n      init_args:\n        loss_weights:\n"
    "          mouth_adversarial: 0.0\n          mouth_feature_matching: 0.0\n",
    "single_size": "model:\n  init_args:\n    curriculum:\n      renderer_size: null\n",
    "switch_300": "model:\n  init_args:\n    curriculum:\n"
    "      renderer_size: {size: 128, until: 300}\n",
    "previous": PREVIOUS,
    "full_resolution": FULL_RESOLUTION,
    "today": FULL_RESOLUTION,
}
"""Arm → its overlay of demo.yaml (`working`: none)."""
ARMS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "working": ((), (128, 256)),
    "no_mouth_gan": ((), (128, 256)),
    "single_size": ((), (128, 256)),
    "switch_300": ((), (128, 256)),
    "previous": (("--data.init_args.image_size=128",), (128, 256)),
    "full_resolution": (("--data.init_args.image_size=128",), (128,)),
    "today": (("--data.init_args.image_size=64",), (128, 256)),
}
"""Arm → (extra `pmfs fit` arguments after its overlay, output sizes it is scored at)."""


def build_benchmark_data(root: Path) -> Path:
    """8 speakers × 4 clips at 256²; the generator holds out 2 speakers as the test split."""
    build_synthetic_dataset(SynthConfig(out=root, speakers=8, clips=4, size=256, progress=False))
    return root


def _datamodule(trained: LightningDataModule, size: int) -> LightningDataModule:
    """The trained DataModule's data at image size `size`."""
    hparams = {k: v for k, v in trained.hparams.items() if not k.startswith("_")}
    hparams["image_size"] = size
    return type(trained)(**hparams)


@torch.no_grad()
def score_at(model: PMFS, trained: LightningDataModule, size: int) -> dict[str, float]:
    """Mean mouth PSNR/SSIM and lower-face sharpness ratio at output size `size`."""
    model_size = int(trained.hparams["image_size"])
    data = _datamodule(trained, size)
    data.setup("test")
    sums: dict[str, float] = defaultdict(float)
    count = 0
    batch: Batch
    for batch in data.test_dataloader():
        landmarks, target = batch["landmarks"], batch["target"]
        ref_frames, ref_landmarks = batch["ref_frames"], batch["ref_landmarks"]
        inputs = target
        if model.renderer.network.working_size is None and size != model_size:
            # the full-resolution network renders at its own size, then is upsampled
            k = ref_frames.shape[1]
            inputs = resize(target, model_size)
            ref_frames = resize(ref_frames.flatten(0, 1), model_size).unflatten(0, (-1, k))
        refs = model.renderer.encode_references(ref_frames, ref_landmarks)
        image = model.renderer.render(landmarks, inputs, refs).image.clamp(0, 1)
        if image.shape[-1] != size:
            image = F.interpolate(image, size=size, mode="bilinear").clamp(0, 1)
        centre = landmarks[:, landmarks.shape[1] // 2]
        boxes = mouth_box(centre, size)
        mouths, truths = crop_mouths(image, boxes, 64), crop_mouths(target, boxes, 64)
        sums["mouth_psnr"] += image_psnr(mouths, truths).sum().item()
        sums["mouth_ssim"] += image_ssim(mouths, truths).sum().item()
        region = lower_face_mask(centre, size)
        made, true = laplacian_variance(image, region), laplacian_variance(target, region)
        sums["sharpness"] += (made / true).sum().item()  # `sharpness_ratio`, per window
        sums["made_variance"] += made.sum().item()
        sums["true_variance"] += true.sum().item()
        count += target.shape[0]
    scores = {name: total / count for name, total in sums.items()}
    # pooled over windows (as `pmfs demo` reports it): the mean of per-window ratios is pulled up
    # by closed-mouth windows, whose truth has almost no edges to divide by
    scores["sharpness_pooled"] = sums["made_variance"] / sums["true_variance"]
    return scores | {"windows": float(count)}


def blend_probe(model: PMFS, trained: LightningDataModule, size: int) -> dict[str, object]:
    """Where a trained renderer's mouth comes from: scores with its blend α forced to 1 (the
    warped, merged references alone) and to 0 (the decoded RGB alone), on copies whose `to_rgb`
    blend channel is set to a constant."""
    probes: dict[str, object] = {}
    for name, logit in (("references_only", 30.0), ("decoded_only", -30.0)):
        probe = copy.deepcopy(model)
        head = probe.renderer.network.to_rgb[-1]
        assert isinstance(head, torch.nn.Conv2d) and head.bias is not None
        with torch.no_grad():
            head.weight[3].zero_()
            head.bias[3].fill_(logit)  # sigmoid(±30) = 1 or 0 to float precision
        probes[name] = score_at(probe, trained, size)
    return probes


def arm_args(root: Path, arm: str) -> tuple[str, ...]:
    """The `pmfs fit` arguments after demo.yaml that make `arm` (its overlay written into
    `root`)."""
    extra = ARMS[arm][0]
    if arm not in OVERLAYS:
        return extra
    overlay = root / f"{arm}.yaml"
    overlay.write_text(OVERLAYS[arm])
    return ("-c", str(overlay), *extra)


def run_arm(
    root: Path, arm: str, seed: int, save: Path | None = None, probe: bool = False
) -> dict[str, object]:
    """Train one arm at one seed and score it at its output sizes; `save`: also write the
    trained system's state dict there; `probe`: also `blend_probe` at its first size."""
    extra, sizes = arm_args(root, arm), ARMS[arm][1]
    started = time.perf_counter()
    model, data = train(root, None, BATCHES, seed, extra)
    trained_s = time.perf_counter() - started
    if save is not None:
        torch.save(model.state_dict(), save)
    result: dict[str, object] = {"arm": arm, "seed": seed, "train_seconds": trained_s}
    for size in sizes:
        result[str(size)] = score_at(model, data, size)
    if probe:
        result["probe"] = blend_probe(model, data, sizes[0])
    return result | run_environment()


def main(argv: list[str] | None = None) -> int:
    """One arm × seed: train + score, the result as JSON in `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the benchmark's synthetic set")
    parser.add_argument("--arm", choices=list(ARMS), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="result JSON")
    parser.add_argument("--save", type=Path, help="write the trained state dict here too")
    parser.add_argument("--probe", action="store_true", help="score α = 1 and α = 0 too")
    args = parser.parse_args(argv)
    if not (args.root / "manifest.csv").is_file():
        build_benchmark_data(args.root)
    result = run_arm(args.root, args.arm, args.seed, args.save, args.probe)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
