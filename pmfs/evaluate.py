"""`pmfs evaluate`: DESIGN §5 metrics of a checkpoint on a split, overall, per emotion and level.

Every clip of the split is taken from `TalkingFaceDataModule`'s own split rules, so "test" is
exactly what training held out: MEAD's test speakers, the synthetic cache's `test_speakers`, all
of CREMA-D (zero-shot). Each clip is run whole (`pmfs.clip.ClipInputs` at the checkpoint's image
size, references spread over mouth opening, the checkpoint's background) along two paths:

- `from_audio`: the whole chain, audio → mouth → face landmarks → frames (`PMFS` checkpoints);
- `from_landmarks`: the renderer alone drawing the ground-truth landmarks (`PMFS` and
  `FaceRenderer` checkpoints). Its landmarks *are* the truth, so it has no landmark metrics.

Metrics per path (`METRICS` gives the table legend):

- `m_lmd`, `f_lmd`, `v_lmd`: M-LMD, F-LMD and mouth velocity LMD in pixels of the 256 crop;
- `sync_corr`, `sync_offset`, `sync_abs_offset`: mouth-opening sync (clips of ≥ 12 frames);
- `psnr`, `ssim`, `mouth_psnr`, `mouth_ssim`: over the crop and over the true mouth box;
- `lpips`, `fid`, `lse_d`, `lse_c`: only with user-supplied weights (a path, or the standard file
  in the torch hub cache); absent weights skip the metric with one line ("LPIPS skipped: …"),
  recorded under "skipped" in the JSON.

Aggregation: per-frame metrics are means over frames (every frame of the group counts once, as
the sum states of `pmfs.metrics`), per-clip metrics (sync, LSE) means over clips. FID is computed
over the whole split only: a per-group FID of a few dozen frames says little, and every group
would need its own 2048² feature statistics.

Outputs: `<out>/metrics.json` (overall, per_emotion, per_level, per_clip, skipped, counts, ...),
`<out>/metrics.md` (Markdown tables), and with `--wandb` (or inside an active W&B run) one
`wandb.Table` per grouping. This module imports no torch at import time (`pmfs evaluate --help`).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmfs.batch import Split

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule
    from torch import Tensor

    from data_modules import TalkingFaceDataModule
    from pmfs.clip import ClipInputs, ClipOutput
    from pmfs.data.cache import ClipRecord
    from pmfs.metrics import LPIPS, ImageMetric
    from pmfs.metrics.fid import FID
    from pmfs.metrics.syncnet import SyncNetScore

log = logging.getLogger(__name__)

Score = tuple[float, float]
"""A clip's value of a metric and its weight (frames, or 1 for per-clip metrics)."""
PathScores = dict[str, dict[str, Score]]
"""path ("from_audio" / "from_landmarks") → metric → score, for one clip."""

PATHS: dict[str, str] = {
    "from_audio": "whole chain from the audio (audio → mouth → face landmarks → frames)",
    "from_landmarks": "renderer alone on the ground-truth landmarks",
}
METRICS: dict[str, str] = {
    "m_lmd": "M-LMD: lip landmarks (48–67), px of the 256 crop, lower is better",
    "f_lmd": "F-LMD: all 68 landmarks, px of the 256 crop, lower is better",
    "v_lmd": "velocity M-LMD: frame-to-frame lip motion, px of the 256 crop, lower is better",
    "sync_corr": "mouth-opening correlation with the truth at offset 0, higher is better",
    "sync_offset": "A/V offset maximising that correlation, frames (positive: prediction lags)",
    "sync_abs_offset": "|A/V offset|, frames, lower is better",
    "psnr": "PSNR of the crop, dB, higher is better",
    "ssim": "SSIM of the crop, higher is better",
    "mouth_psnr": "PSNR of the true mouth box (resized to 64²), dB, higher is better",
    "mouth_ssim": "SSIM of the true mouth box (resized to 64²), higher is better",
    "lpips": "LPIPS v0.1 AlexNet, lower is better",
    "fid": "FID (Inception pool3 features, whole split only), lower is better",
    "lse_d": "SyncNet LSE-D, lower is better",
    "lse_c": "SyncNet LSE-C, higher is better",
}
SYNC_MAX_OFFSET = 5
"""Offsets searched by mouth-opening sync, ± frames; clips need ≥ 2·5 + 2 = 12 frames."""
GROUPINGS = ("overall", "per_emotion", "per_level")


@dataclass
class EvaluateOptions:
    """What `pmfs evaluate` evaluates and where it writes (the command line's options).

    Attributes:
        ckpt: a `pmfs fit` checkpoint of `PMFS` or of a `FaceRenderer`.
        data: the cache folder.
        dataset: "mead", "cremad" or "synthetic"; None: what the cache says it holds.
        split: the DataModule split evaluated ("test" for CREMA-D, which has nothing else).
        out: folder of metrics.json / metrics.md (and the W&B run folder).
        max_clips: evaluate the first clips only (None: all).
        max_frames: first frames of each clip only (None: all).
        device: torch device; None: CUDA when available, else CPU.
        chunk: frames per forward pass.
        lpips_weights: the lpips package's v0.1 `alex.pth`; None: the torch hub cache's.
        alexnet_weights: torchvision's `alexnet-owt-7be5be79.pth`; None: the hub cache's.
        fid_weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`; None: the hub cache's.
        syncnet_weights: `syncnet_v2.model`; None: the hub cache's.
        wandb: log the tables to a W&B run (also done whenever a run is active).
        wandb_project: project of that run.
        per_clip: keep every clip's metrics in the JSON.
        progress: show a progress bar.
    """

    ckpt: Path
    data: Path
    dataset: str | None = None
    split: Split = "test"
    out: Path = Path("evaluation")
    max_clips: int | None = None
    max_frames: int | None = None
    device: str | None = None
    chunk: int = 16
    lpips_weights: Path | None = None
    alexnet_weights: Path | None = None
    fid_weights: Path | None = None
    syncnet_weights: Path | None = None
    wandb: bool = False
    wandb_project: str = "pmfs"
    per_clip: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("max_clips", "max_frames"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive number or None, got {value}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be >= 1 frame, got {self.chunk}")


# ----------------------------------------------------------------------------------------------
# Aggregation
# ----------------------------------------------------------------------------------------------


@dataclass
class GroupSums:
    """Weighted sums of every metric of a group of clips (one row of a table).

    Attributes:
        clips: clips added.
        frames: frames of those clips.
        sums: path → metric → [Σ value·weight, Σ weight].
    """

    clips: int = 0
    frames: int = 0
    sums: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, frames: int, scores: PathScores) -> None:
        """Add one clip of `frames` frames and its scores."""
        self.clips += 1
        self.frames += frames
        for path, metrics in scores.items():
            sums = self.sums.setdefault(path, {})
            for name, (value, weight) in metrics.items():
                total = sums.setdefault(name, [0.0, 0.0])
                total[0] += value * weight
                total[1] += weight

    def means(self) -> dict[str, dict[str, float]]:
        """path → metric → weighted mean, metrics in `METRICS` order."""
        return {
            path: {name: sums[name][0] / sums[name][1] for name in METRICS if name in sums}
            for path, sums in self.sums.items()
        }

    def summary(self) -> dict[str, Any]:
        """{"clips", "frames", <path>: {metric: mean}} as written to metrics.json."""
        return {"clips": self.clips, "frames": self.frames, **self.means()}


@dataclass
class Aggregate:
    """The sums of the whole split, per emotion and per (emotion, level), and per-clip values."""

    overall: GroupSums = field(default_factory=GroupSums)
    per_emotion: dict[str, GroupSums] = field(default_factory=dict)
    per_level: dict[str, GroupSums] = field(default_factory=dict)
    per_clip: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, record: ClipRecord, frames: int, scores: PathScores) -> None:
        """Add one clip to the overall, its emotion's and its (emotion, level)'s groups."""
        self.overall.add(frames, scores)
        self.per_emotion.setdefault(record.emotion, GroupSums()).add(frames, scores)
        key = level_key(record.emotion, record.level)
        self.per_level.setdefault(key, GroupSums()).add(frames, scores)
        values = {path: {k: v for k, (v, _) in s.items()} for path, s in scores.items()}
        self.per_clip[record.clip] = {
            "speaker": record.speaker,
            "emotion": record.emotion,
            "level": record.level,
            "frames": frames,
            **values,
        }


def level_key(emotion: str, level: int) -> str:
    """Key of an (emotion, level) group in metrics.json, e.g. "angry/3"."""
    return f"{emotion}/{level}"


# ----------------------------------------------------------------------------------------------
# Per-clip metrics
# ----------------------------------------------------------------------------------------------


def landmark_scores(preds: Tensor, target: Tensor) -> dict[str, Score]:
    """M-LMD, F-LMD, velocity M-LMD and mouth-opening sync of one clip.

    Args:
        preds: (N, 68, 2) predicted landmarks, normalized [-1, 1] `(x, y)`.
        target: (N, 68, 2) true landmarks, same convention.

    Returns:
        metric → (value, weight): LMDs in pixels of the 256 crop weighted by frames (N − 1 for
        the velocity), sync values weighted 1; velocity needs N ≥ 2, sync N ≥ 12.
    """
    from pmfs.metrics import face_lmd, mouth_lmd, mouth_opening_sync, velocity_lmd

    n = preds.shape[0]
    pred, true = preds[None].float(), target[None].float()  # (1, N, 68, 2)
    scores: dict[str, Score] = {
        "m_lmd": (float(mouth_lmd(pred, true)), n),
        "f_lmd": (float(face_lmd(pred, true)), n),
    }
    if n >= 2:
        scores["v_lmd"] = (float(velocity_lmd(pred, true)), n - 1)
    if n >= 2 * SYNC_MAX_OFFSET + 2:
        corr, offset = mouth_opening_sync(pred, true, SYNC_MAX_OFFSET)
        scores["sync_corr"] = (float(corr[0]), 1)
        scores["sync_offset"] = (float(offset[0]), 1)
        scores["sync_abs_offset"] = (float(offset[0].abs()), 1)
    return scores


def image_scores(
    preds: Tensor, clip: ClipInputs, lpips: LPIPS | None = None, chunk: int = 16
) -> dict[str, Score]:
    """PSNR / SSIM over the crop and the true mouth box (and LPIPS) of one clip.

    Args:
        preds: (N, 3, H, W) generated frames in [0, 1], on the clip's device.
        clip: the clip; `clip.frames` are the targets, `clip.landmarks` give the mouth boxes.
        lpips: the LPIPS metric (reset here), or None to skip it.
        chunk: frames per update.

    Returns:
        metric → (mean over frames, frames).
    """
    from pmfs.metrics import FramePSNR, FrameSSIM, MouthPSNR, MouthSSIM

    metrics: dict[str, ImageMetric] = {
        "psnr": FramePSNR(),
        "ssim": FrameSSIM(),
        "mouth_psnr": MouthPSNR(),
        "mouth_ssim": MouthSSIM(),
    }
    for metric in metrics.values():
        metric.to(preds.device)
    if lpips is not None:
        lpips.reset()
    for start in range(0, preds.shape[0], chunk):
        part = slice(start, start + chunk)
        pred, target, landmarks = preds[part], clip.frames[part], clip.landmarks[part]
        for metric in metrics.values():
            metric.update(pred, target, landmarks)
        if lpips is not None:
            lpips.update(pred, target)
    states = {name: (m.total, m.count) for name, m in metrics.items()}
    if lpips is not None:
        states["lpips"] = (lpips.total, lpips.count)
    return {name: (float(total / count), float(count)) for name, (total, count) in states.items()}


def syncnet_scores(syncnet: SyncNetScore, frames: Tensor, clip: ClipInputs) -> dict[str, Score]:
    """SyncNet LSE-D / LSE-C of one generated clip against its audio (weight 1 per clip).

    Args:
        syncnet: the loaded SyncNet metric.
        frames: (N, 3, H, W) generated frames in [0, 1].
        clip: the clip whose `audio` (16 kHz) the frames should follow.

    Returns:
        {"lse_d", "lse_c"}, or {} (with a warning) when the clip has no audio or is shorter
        than SyncNet's 6 frames.
    """
    if clip.audio is None:
        log.warning("LSE skipped for a clip without audio")
        return {}
    try:
        scores = syncnet.score(frames, clip.audio)
    except ValueError as err:  # too short for one 5-frame window
        log.warning("LSE skipped for a clip: %s", err)
        return {}
    return {"lse_d": (float(scores["lse_d"]), 1.0), "lse_c": (float(scores["lse_c"]), 1.0)}


# ----------------------------------------------------------------------------------------------
# Optional metrics (user-supplied weights)
# ----------------------------------------------------------------------------------------------


@dataclass
class OptionalMetrics:
    """The metrics that need pretrained weights, None where skipped.

    Attributes:
        lpips: one LPIPS metric, reset per clip and path.
        fid: path → FID over the whole split.
        syncnet: the SyncNet metric (its `score` is used per clip).
        skipped: metric → the one-line reason it was skipped.
    """

    lpips: LPIPS | None = None
    fid: dict[str, FID] = field(default_factory=dict)
    syncnet: SyncNetScore | None = None
    skipped: dict[str, str] = field(default_factory=dict)


def optional_metric_reasons(options: EvaluateOptions) -> dict[str, str]:
    """metric ("LPIPS", "FID", "SyncNet") → why it must be skipped, for those lacking weights."""
    from pmfs.metrics import lpips_skip_reason
    from pmfs.metrics.fid import FID_WEIGHTS_FILE, FID_WEIGHTS_URL
    from pmfs.metrics.syncnet import SYNCNET_WEIGHTS_FILE, SYNCNET_WEIGHTS_URL
    from pmfs.metrics.weights import cached_weights, check_weights

    fid = options.fid_weights or cached_weights(FID_WEIGHTS_FILE)
    syncnet = options.syncnet_weights or cached_weights(SYNCNET_WEIGHTS_FILE)
    reasons = {
        "LPIPS": lpips_skip_reason(options.alexnet_weights, options.lpips_weights),
        "FID": check_weights(fid, f"FID Inception ({FID_WEIGHTS_FILE})", FID_WEIGHTS_URL),
        "SyncNet": check_weights(syncnet, f"SyncNet ({SYNCNET_WEIGHTS_FILE})", SYNCNET_WEIGHTS_URL),
    }
    return {name: reason.removeprefix("skipping ") for name, reason in reasons.items() if reason}


def load_optional_metrics(
    options: EvaluateOptions, paths: Sequence[str], device: str, say: Callable[[str], None]
) -> OptionalMetrics:
    """Load the metrics whose weights exist; say one line for each one skipped.

    Raises:
        ValueError: a weights file exists but is not the right network's (the message names it).
    """
    from pmfs.metrics import LPIPS
    from pmfs.metrics.fid import FID
    from pmfs.metrics.syncnet import SyncNetScore

    metrics = OptionalMetrics(skipped=optional_metric_reasons(options))
    for name, reason in metrics.skipped.items():
        say(f"{name} skipped: {reason}")
    if "LPIPS" not in metrics.skipped:
        metrics.lpips = LPIPS(options.alexnet_weights, options.lpips_weights).to(device)
    if "FID" not in metrics.skipped:
        fid = FID(options.fid_weights).to(device)
        metrics.fid = {path: fid if i == 0 else copy.deepcopy(fid) for i, path in enumerate(paths)}
    if "SyncNet" not in metrics.skipped:
        metrics.syncnet = SyncNetScore(options.syncnet_weights).to(device)
    return metrics


def share_real_statistics(source: FID, target: FID) -> None:
    """Give `target` the real frames' feature statistics of `source`.

    Every path is compared with the same real frames, so their Inception features are computed
    once (for the first path's FID) and copied: the states `real_features_sum`,
    `real_features_cov_sum` and `real_features_num_samples` of torchmetrics' FID.
    """
    for name in ("real_features_sum", "real_features_cov_sum", "real_features_num_samples"):
        setattr(target, name, getattr(source, name).clone())


def compute_fid(fid: FID) -> float | None:
    """The FID over the split, or None (with a warning) when fewer than 2 frames were seen."""
    if int(fid.fake_features_num_samples) < 2 or int(fid.real_features_num_samples) < 2:
        log.warning("FID skipped: it needs at least 2 generated and 2 real frames")
        return None
    return float(fid.compute())


# ----------------------------------------------------------------------------------------------
# Model, clips, paths
# ----------------------------------------------------------------------------------------------


def model_paths(model: LightningModule, ckpt: Path) -> tuple[str, ...]:
    """The paths a model can be evaluated along: both for `PMFS`, the renderer's for a renderer.

    Raises:
        ValueError: a landmark stage (`AudioToMouth`, `MouthToFace`) makes no frames.
    """
    from pmfs.stages import PMFS, FaceRenderer

    if isinstance(model, PMFS):
        return ("from_audio", "from_landmarks")
    if isinstance(model, FaceRenderer):
        return ("from_landmarks",)
    raise ValueError(
        f"{ckpt} holds a {type(model).__name__}, a landmark stage that makes no frames: "
        f"`pmfs evaluate` needs a PMFS or FaceRenderer checkpoint. A landmark stage's M-LMD / "
        f"F-LMD come from its test loop: `pmfs test -c <its config> --ckpt_path {ckpt}`"
    )


def generate(
    model: LightningModule, clip: ClipInputs, path: str, window: int, chunk: int
) -> ClipOutput:
    """Run `model` over every frame of `clip` along `path` ("from_audio" / "from_landmarks")."""
    from pmfs.stages import PMFS, FaceRenderer

    if isinstance(model, PMFS):
        return model.generate_clip(clip, from_audio=path == "from_audio", chunk=chunk)
    assert isinstance(model, FaceRenderer) and path == "from_landmarks"
    return model.generate_clip(clip, None, window=window, chunk=chunk)


def split_datamodule(
    options: EvaluateOptions, config: dict[str, Any], size: int, background: str
) -> TalkingFaceDataModule:
    """The DataModule over `options.data` with the checkpoint's split settings, set up.

    The training run's `test_speakers`, `val_fraction` and `seed` are reused when it trained on
    the same dataset, so that its held-out clips are exactly the ones evaluated.
    """
    from data_modules import TalkingFaceDataModule
    from pmfs.data.cache import Cache, CacheNotFoundError

    dataset = options.dataset
    if dataset is None:
        try:
            dataset = Cache(Path(options.data)).dataset
        except CacheNotFoundError:  # the DataModule says which command builds it
            dataset = str(config.get("dataset", "synthetic"))
    same = dataset == config.get("dataset") and dataset != "cremad"
    datamodule = TalkingFaceDataModule(
        root=str(options.data),
        dataset=dataset,  # type: ignore[arg-type]  # checked by the DataModule
        image_size=size,
        num_references=int(config.get("num_references", 3)),
        background=background,  # type: ignore[arg-type]
        num_workers=0,
        test_speakers=config.get("test_speakers") if same else None,
        val_fraction=float(config.get("val_fraction", 0.1)) if same else 0.1,
        seed=int(config.get("seed", 0)) if same else 0,
    )
    datamodule.setup("test")
    return datamodule


def split_records(datamodule: TalkingFaceDataModule, split: Split) -> list[ClipRecord]:
    """The clips of `split`, as the DataModule splits them.

    Raises:
        ValueError: the split is empty (e.g. "val" of CREMA-D, which is test-only).
    """
    assert datamodule.splits is not None
    records: list[ClipRecord] = getattr(datamodule.splits, split)
    if not records:
        hint = " (CREMA-D is test-only: use --split test)" if datamodule.dataset == "cremad" else ""
        raise ValueError(
            f"the {split} split of the {datamodule.dataset} cache at {datamodule.root} has no "
            f"clip{hint}"
        )
    return records


# ----------------------------------------------------------------------------------------------
# The evaluation
# ----------------------------------------------------------------------------------------------


@dataclass
class ClipEvaluator:
    """Scores one clip along every path of a model.

    Attributes:
        model: `PMFS` or `FaceRenderer`, in eval mode on `device`.
        paths: from `model_paths`.
        metrics: the optional metrics (LPIPS, FID, SyncNet) that could be loaded.
        device: where the clip is moved.
        window: T of the renderer's sketches (a `FaceRenderer` alone).
        chunk: frames per forward pass.
    """

    model: LightningModule
    paths: tuple[str, ...]
    metrics: OptionalMetrics
    device: str
    window: int = 5
    chunk: int = 16

    def __call__(self, clip: ClipInputs) -> PathScores:
        """path → metric → (value, weight) of one clip; FID statistics are updated too."""
        import torch

        with torch.no_grad():
            return self._score(clip.to(self.device))

    def _score(self, clip: ClipInputs) -> PathScores:
        scores: PathScores = {}
        for path in self.paths:
            out = generate(self.model, clip, path, self.window, self.chunk)
            path_scores: dict[str, Score] = {}
            if path == "from_audio":
                path_scores.update(landmark_scores(out.landmarks, clip.landmarks))
            path_scores.update(image_scores(out.frames, clip, self.metrics.lpips, self.chunk))
            if self.metrics.syncnet is not None:
                path_scores.update(syncnet_scores(self.metrics.syncnet, out.frames, clip))
            if path in self.metrics.fid:
                real = clip.frames if path == self.paths[0] else None
                self._update_fid(self.metrics.fid[path], out.frames, real)
            scores[path] = path_scores
        return scores

    def _update_fid(self, fid: FID, fake: Tensor, real: Tensor | None) -> None:
        """Add generated (and real) frames; the real ones go to the first path's FID only."""
        for start in range(0, fake.shape[0], self.chunk):
            if real is not None:
                fid.update(real[start : start + self.chunk], real=True)
            fid.update(fake[start : start + self.chunk], real=False)


def evaluate(options: EvaluateOptions, say: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Evaluate a checkpoint on a split and write metrics.json and metrics.md into `options.out`.

    Args:
        options: what to evaluate.
        say: where the one-line notes go (skipped metrics, W&B mode); `print` in the CLI.

    Returns:
        The content of metrics.json.

    Raises:
        FileNotFoundError: the checkpoint or the cache is missing.
        ValueError: a landmark-stage checkpoint, an empty split, a wrong weights file.
    """
    from pmfs.checkpoints import data_config, load_model, resolve_device

    device = str(resolve_device(options.device))
    model = load_model(options.ckpt, map_location=device)
    paths = model_paths(model, options.ckpt)
    config = data_config(options.ckpt)
    renderer = getattr(model, "renderer", model)
    size = int(config.get("image_size", 256))
    background = str(config.get("background", renderer.background))
    datamodule = split_datamodule(options, config, size, background)
    records = split_records(datamodule, options.split)[: options.max_clips]
    metrics = load_optional_metrics(options, paths, device, say)
    evaluator = ClipEvaluator(
        model, paths, metrics, device, int(config.get("window", 5)), options.chunk
    )
    started = time.perf_counter()
    aggregate = run_clips(datamodule, records, evaluator, options, size, background)
    results = results_dict(options, model, datamodule, aggregate, metrics, paths)
    results["settings"].update(image_size=size, background=background, device=device)
    results["seconds"] = round(time.perf_counter() - started, 3)
    write_results(results, Path(options.out))
    datamodule.teardown()
    return results


def run_clips(
    datamodule: TalkingFaceDataModule,
    records: list[ClipRecord],
    evaluator: ClipEvaluator,
    options: EvaluateOptions,
    size: int,
    background: str,
) -> Aggregate:
    """Score every clip of `records`, with a progress bar of clips and frames per second."""
    from tqdm import tqdm

    from pmfs.clip import clip_inputs_from_cache

    cache = datamodule.open_cache()
    num_references = datamodule.spec.num_references
    aggregate = Aggregate()
    started = time.perf_counter()
    bar = tqdm(records, unit="clip", desc="evaluate", disable=not options.progress)
    for record in bar:
        reader = cache.open(record.clip)
        try:
            clip = clip_inputs_from_cache(
                reader, size, num_references, options.max_frames, background
            )
        finally:
            reader.close()
        aggregate.add(record, clip.num_frames, evaluator(clip))
        rate = aggregate.overall.frames / max(time.perf_counter() - started, 1e-9)
        bar.set_postfix_str(f"{rate:.1f} frames/s")
    return aggregate


def results_dict(
    options: EvaluateOptions,
    model: LightningModule,
    datamodule: TalkingFaceDataModule,
    aggregate: Aggregate,
    metrics: OptionalMetrics,
    paths: tuple[str, ...],
) -> dict[str, Any]:
    """The content of metrics.json (FID computed here, over the whole split)."""
    overall = aggregate.overall.summary()
    for path, fid in metrics.fid.items():
        share_real_statistics(metrics.fid[paths[0]], fid)
        value = compute_fid(fid)
        if value is not None:
            overall[path]["fid"] = value
    per_emotion = {e: g.summary() for e, g in sorted(aggregate.per_emotion.items(), key=_order)}
    per_level = {k: g.summary() for k, g in sorted(aggregate.per_level.items(), key=_order)}
    return {
        "checkpoint": str(options.ckpt),
        "model": type(model).__name__,
        "cache": str(options.data),
        "dataset": datamodule.dataset,
        "split": options.split,
        "paths": {path: PATHS[path] for path in paths},
        "counts": {
            "clips": aggregate.overall.clips,
            "frames": aggregate.overall.frames,
            "per_emotion": {e: g["clips"] for e, g in per_emotion.items()},
        },
        "overall": overall,
        "per_emotion": per_emotion,
        "per_level": per_level,
        "per_clip": aggregate.per_clip if options.per_clip else {},
        "skipped": dict(metrics.skipped),
        "metrics": {name: METRICS[name] for name in METRICS},
        "settings": {"max_clips": options.max_clips, "max_frames": options.max_frames},
    }


def _order(item: tuple[str, GroupSums]) -> tuple[int, str]:
    """Sort key of a group: MEAD's emotion order, then the level."""
    from pmfs.batch import EMOTIONS

    emotion, _, level = item[0].partition("/")
    rank = EMOTIONS.index(emotion) if emotion in EMOTIONS else len(EMOTIONS)
    return rank, level


# ----------------------------------------------------------------------------------------------
# Outputs: JSON, Markdown, W&B
# ----------------------------------------------------------------------------------------------


def write_results(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write `<out>/metrics.json` and `<out>/metrics.md`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "metrics.json", out / "metrics.md"
    json_path.write_text(json.dumps(results, indent=2, allow_nan=True) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def _metric_names(groups: dict[str, dict[str, Any]], path: str) -> list[str]:
    present = {name for group in groups.values() for name in group.get(path, {})}
    return [name for name in METRICS if name in present]


def markdown(results: dict[str, Any]) -> str:
    """metrics.md: the overall table, then per emotion and per (emotion, level) for each path."""
    paths = list(results["paths"])
    counts = results["counts"]
    lines = [
        f"# Evaluation of `{Path(results['checkpoint']).name}`",
        "",
        f"{results['model']} checkpoint `{results['checkpoint']}` on the {results['split']} "
        f"split of the {results['dataset']} cache `{results['cache']}`: {counts['clips']} clips, "
        f"{counts['frames']} frames.",
        "",
        *[f"- `{path}`: {text}" for path, text in results["paths"].items()],
        *[f"- {name} skipped: {reason}" for name, reason in results["skipped"].items()],
        "",
        "## Overall",
        "",
    ]
    overall = results["overall"]
    names = [n for n in METRICS if any(n in overall.get(p, {}) for p in paths)]
    lines += _table(["metric", *paths], [[n, *(overall[p].get(n) for p in paths)] for n in names])
    for grouping, title in (("per_emotion", "emotion"), ("per_level", "emotion/level")):
        groups = results[grouping]
        for path in paths:
            cols = _metric_names(groups, path)
            rows = [[k, g["clips"], g["frames"], *(g[path].get(n) for n in cols)]
                    for k, g in groups.items()]  # fmt: skip
            heading = f"## Per {title.replace('/', ' and ')} — `{path}`"
            lines += ["", heading, "", *_table([title, "clips", "frames", *cols], rows)]
    lines += ["", "## Metrics", "", *[f"- `{n}`: {text}" for n, text in METRICS.items()], ""]
    return "\n".join(lines)


def wandb_tables(results: dict[str, Any]) -> dict[str, Any]:
    """One `wandb.Table` per grouping: rows (group, path), columns clips, frames and metrics."""
    import wandb

    paths = list(results["paths"])
    groups_of = {
        "overall": {"all": results["overall"]},
        "per_emotion": results["per_emotion"],
        "per_level": results["per_level"],
    }
    tables = {}
    for grouping, groups in groups_of.items():
        names = [
            n for n in METRICS if any(n in g.get(p, {}) for g in groups.values() for p in paths)
        ]
        rows = [
            [key, path, group["clips"], group["frames"], *(group[path].get(n) for n in names)]
            for key, group in groups.items()
            for path in paths
        ]
        columns: list[str | int] = ["group", "path", "clips", "frames", *names]
        tables[f"evaluate/{grouping}"] = wandb.Table(columns=columns, data=rows)
    return tables


def wandb_mode(out: Path, say: Callable[[str], None]) -> str:
    """`WANDB_MODE` when set, else online with W&B credentials and offline (one line) without."""
    from pmfs.loggers import MODE_ENV, wandb_credentials_source

    if env_mode := os.environ.get(MODE_ENV):
        return env_mode
    if wandb_credentials_source() is None:
        say(
            "W&B: no credentials found: logging offline; upload later with "
            f"`wandb sync {out / 'wandb' / 'offline-run-*'}`"
        )
        return "offline"
    return "online"


def log_to_wandb(
    results: dict[str, Any], options: EvaluateOptions, say: Callable[[str], None] = log.info
) -> str | None:
    """Log the tables (and the overall numbers as summary) to the active W&B run or a new one.

    A new run (only with `options.wandb`) goes to `<out>/wandb` and is finished here; an active
    run is left open. Returns the run's folder, or None when nothing was logged.
    """
    import wandb

    run = wandb.run
    owned = run is None
    if run is None:
        if not options.wandb:
            return None
        out = Path(options.out)
        out.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=options.wandb_project,
            dir=str(out),
            mode=wandb_mode(out, say),  # type: ignore[arg-type]
            job_type="evaluate",
            name=f"evaluate-{Path(options.ckpt).stem}-{results['dataset']}-{options.split}",
            config={k: results[k] for k in ("checkpoint", "model", "dataset", "split", "cache")},
        )
    run.log(wandb_tables(results))
    prefix = f"evaluate/{results['dataset']}/{options.split}"
    for path, values in results["overall"].items():
        if isinstance(values, dict):
            run.summary.update({f"{prefix}/{path}/{k}": v for k, v in values.items()})
    run_dir = str(Path(run.dir).parent)
    if owned:
        run.finish()
    return run_dir


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The parser of `pmfs evaluate` (imports nothing heavy)."""
    parser = argparse.ArgumentParser(
        prog="pmfs evaluate",
        description="Metrics of a checkpoint on a split (DESIGN §5), overall, per emotion and "
        "per level, from audio (the whole chain) and from ground-truth landmarks (the renderer): "
        "<out>/metrics.json, <out>/metrics.md, W&B tables.",
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="PMFS or FaceRenderer .ckpt")
    parser.add_argument("--data", type=Path, required=True, help="the cache folder")
    parser.add_argument(
        "--dataset",
        choices=["mead", "cremad", "synthetic"],
        help="what the cache holds (default: read from its cache.json)",
    )
    parser.add_argument("--split", choices=["train", "val", "test"], default="test")
    parser.add_argument("--out", type=Path, default=Path("evaluation"), help="output folder")
    parser.add_argument("--max-clips", type=int, help="first N clips of the split only")
    parser.add_argument("--max-frames", type=int, help="first N frames of each clip only")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--chunk", type=int, default=16, help="frames per forward pass")
    hub = "default: the file in the torch hub cache, <torch hub dir>/checkpoints/"
    weights = parser.add_argument_group("optional metrics (skipped when the weights are absent)")
    weights.add_argument("--lpips-weights", type=Path, help=f"LPIPS v0.1 alex.pth ({hub})")
    weights.add_argument(
        "--alexnet-weights", type=Path, help=f"alexnet-owt-7be5be79.pth for LPIPS ({hub})"
    )
    weights.add_argument(
        "--fid-weights", type=Path, help=f"pt_inception-2015-12-05-6726825d.pth ({hub})"
    )
    weights.add_argument("--syncnet-weights", type=Path, help=f"syncnet_v2.model ({hub})")
    parser.add_argument("--wandb", action="store_true", help="log the tables to a W&B run")
    parser.add_argument("--wandb-project", default="pmfs", help="W&B project (default: pmfs)")
    parser.add_argument("--no-per-clip", action="store_true", help="leave per_clip out")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def options_from_args(args: argparse.Namespace) -> EvaluateOptions:
    """`EvaluateOptions` from the parsed command line."""
    return EvaluateOptions(
        ckpt=args.ckpt,
        data=args.data,
        dataset=args.dataset,
        split=args.split,
        out=args.out,
        max_clips=args.max_clips,
        max_frames=args.max_frames,
        device=args.device,
        chunk=args.chunk,
        lpips_weights=args.lpips_weights,
        alexnet_weights=args.alexnet_weights,
        fid_weights=args.fid_weights,
        syncnet_weights=args.syncnet_weights,
        wandb=args.wandb,
        wandb_project=args.wandb_project,
        per_clip=not args.no_per_clip,
        progress=not args.no_progress,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`pmfs evaluate ...`: evaluate, write the outputs, print the overall table. Returns 0."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        options = options_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    results = evaluate(options, say=print)
    run_dir = log_to_wandb(results, options, say=print)
    overall = markdown(results).split("## Overall\n\n", 1)[1].split("\n\n", 1)[0]
    print(overall)
    print(f"wrote {options.out / 'metrics.json'} and {options.out / 'metrics.md'}")
    if run_dir is not None:
        print(f"W&B tables logged to {run_dir}")
    return 0
