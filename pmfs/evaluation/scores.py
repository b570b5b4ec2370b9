"""Per-clip metrics of `pmfs evaluate` (DESIGN §5), along each path a model can be run.

Each clip is run whole (`pmfs.clip.ClipInputs`) along two paths (`PATHS`):

- `from_audio`: the whole chain, audio → mouth → face landmarks → frames (`PMFS` checkpoints),
  the landmarks post-processed exactly as `pmfs infer` does (`pmfs.inference.temporal`:
  smoothing, the voice-activity gate; `EvaluateOptions.temporal`);
- `from_landmarks`: the renderer alone drawing the ground-truth landmarks (`PMFS` and
  `FaceRenderer` checkpoints). Its landmarks *are* the truth, so it has no landmark metrics.

Metrics per path (`METRICS` gives the table legend):

- `m_lmd`, `f_lmd`, `v_lmd`: M-LMD, F-LMD and mouth velocity LMD in pixels of the 256 crop;
- `jitter`, `gt_jitter`: the lips' mean acceleration (px/frame² of the 256 crop) of the
  prediction and of the ground truth of the same frames (`pmfs.metrics.jitter`);
- `sync_corr`, `sync_offset`, `sync_abs_offset`: mouth-opening sync (clips of ≥ 12 frames);
- `psnr`, `ssim`, `mouth_psnr`, `mouth_ssim`: over the crop and over the true mouth box;
- `lpips`, `fid`, `lse_d`, `lse_c`: only with user-supplied weights (a path, or the standard file
  in the torch hub cache); absent weights skip the metric with one line ("LPIPS skipped: …").

`ClipEvaluator` scores one clip: path → metric → (value, weight). Torch is imported inside the
functions.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule
    from torch import Tensor

    from pmfs.clip import ClipInputs, ClipOutput
    from pmfs.evaluation.options import EvaluateOptions
    from pmfs.inference.options import TemporalOptions
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
    "jitter": "lip acceleration |x[t+1] − 2x[t] + x[t−1]|, px/frame² of the 256 crop, lower is "
    "better down to gt_jitter",
    "gt_jitter": "the same of the ground-truth landmarks (what real motion has)",
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


def landmark_scores(preds: Tensor, target: Tensor) -> dict[str, Score]:
    """M-LMD, F-LMD, velocity M-LMD, jitter and mouth-opening sync of one clip.

    Args:
        preds: (N, 68, 2) predicted landmarks, normalized [-1, 1] `(x, y)`.
        target: (N, 68, 2) true landmarks, same convention.

    Returns:
        metric → (value, weight): LMDs and jitters in pixels of the 256 crop weighted by frames
        (N − 1 for the velocity, N − 2 for the jitters), sync values weighted 1; velocity needs
        N ≥ 2, jitter N ≥ 3, sync N ≥ 12.
    """
    from pmfs.metrics import face_lmd, mouth_lmd, mouth_opening_sync, velocity_lmd
    from pmfs.metrics.jitter import mouth_jitter

    n = preds.shape[0]
    pred, true = preds[None].float(), target[None].float()  # (1, N, 68, 2)
    scores: dict[str, Score] = {
        "m_lmd": (float(mouth_lmd(pred, true)), n),
        "f_lmd": (float(face_lmd(pred, true)), n),
    }
    if n >= 2:
        scores["v_lmd"] = (float(velocity_lmd(pred, true)), n - 1)
    if n >= 3:
        scores["jitter"] = (float(mouth_jitter(pred)), n - 2)
        scores["gt_jitter"] = (float(mouth_jitter(true)), n - 2)
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
    from pmfs.metrics.syncnet_model import SYNCNET_WEIGHTS_FILE, SYNCNET_WEIGHTS_URL
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
# Models and paths
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
    model: LightningModule,
    clip: ClipInputs,
    path: str,
    window: int,
    chunk: int,
    temporal: TemporalOptions | None = None,
) -> ClipOutput:
    """Run `model` over every frame of `clip` along `path` ("from_audio" / "from_landmarks").

    Along `from_audio` the landmarks are `pmfs infer`'s: predicted, then post-processed by
    `pmfs.inference.temporal.generated_landmarks` with `temporal` (None: inference's defaults).
    """
    from pmfs.inference.options import TemporalOptions
    from pmfs.inference.temporal import generated_landmarks
    from pmfs.stages import PMFS, FaceRenderer

    if isinstance(model, PMFS) and path == "from_audio":
        landmarks = generated_landmarks(model, clip, temporal or TemporalOptions(), chunk=chunk)
        return model.renderer.generate_clip(clip, landmarks, window=model.window, chunk=chunk)
    if isinstance(model, PMFS):
        return model.generate_clip(clip, from_audio=False, chunk=chunk)
    assert isinstance(model, FaceRenderer) and path == "from_landmarks"
    return model.generate_clip(clip, None, window=window, chunk=chunk)


# ----------------------------------------------------------------------------------------------
# One clip
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
        temporal: the post-processing of the `from_audio` landmarks (None: `pmfs infer`'s
            defaults).
    """

    model: LightningModule
    paths: tuple[str, ...]
    metrics: OptionalMetrics
    device: str
    window: int = 5
    chunk: int = 16
    temporal: TemporalOptions | None = None

    def __call__(self, clip: ClipInputs) -> PathScores:
        """path → metric → (value, weight) of one clip; FID statistics are updated too."""
        import torch

        with torch.no_grad():
            return self._score(clip.to(self.device))

    def _score(self, clip: ClipInputs) -> PathScores:
        scores: PathScores = {}
        for path in self.paths:
            out = generate(self.model, clip, path, self.window, self.chunk, self.temporal)
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
