"""Shared pieces of the stages: targets in the canonical frame, metrics, config saving, the
non-finite loss check, the manual-optimization step, and `LandmarkStage`, the training loop both
landmark stages share (their losses are in `pmfs.losses.landmarks`)."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import OptimizerCallable

# Lightning's own hand-over of the CLI config to `save_hyperparameters` (see `save_config`).
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import MetricCollection

from pmfs.batch import Batch, Split
from pmfs.landmarks import CONTENT_INDICES, from_canonical, to_canonical
from pmfs.losses.landmarks import LandmarkLossWeights, landmark_losses
from pmfs.metrics import FaceLMD, MouthLMD, VelocityLMD

log = logging.getLogger(__name__)


def canonical_content(landmarks: Tensor) -> Tensor:
    """(..., 68, 2) normalized landmarks → (..., 31, 2) content points in the canonical frame."""
    return to_canonical(landmarks)[0][..., CONTENT_INDICES, :]


def place_content(content: Tensor, landmarks: Tensor) -> Tensor:
    """Put canonical content points into a frame's landmarks, for metrics of stage 1.

    Args:
        content: (..., 31, 2) canonical content points.
        landmarks: (..., 68, 2) normalized landmarks whose canonical frame `content` is in.

    Returns:
        (..., 68, 2) `landmarks` with the content points replaced by `content` mapped back into
        the image through the inverse of the landmarks' own canonical similarity.
    """
    placed = landmarks.clone()
    placed[..., CONTENT_INDICES, :] = from_canonical(content, to_canonical(landmarks)[1])
    return placed


def landmark_metrics(prefix: str, face: bool) -> MetricCollection:
    """M-LMD and mouth velocity LMD (+ F-LMD if `face`), pixels of the 256 crop, keys `prefix…`."""
    metrics = {"m_lmd": MouthLMD(), "v_lmd": VelocityLMD(region="mouth")}
    if face:
        metrics["f_lmd"] = FaceLMD()
    return MetricCollection(metrics, prefix=prefix)  # type: ignore[arg-type]


def save_config(module: LightningModule, objects: list[str]) -> None:
    """`save_hyperparameters` from the caller's `__init__`, keeping checkpoints rebuildable.

    Built by LightningCLI (`pmfs fit`), the hyperparameters are the model's whole config,
    nested `class_path`s of networks, stages and optimizers included, so that
    `load_from_checkpoint` (and `pmfs.checkpoints.load_model`) rebuild the model from the
    checkpoint alone. Built in Python, the arguments named in `objects` (modules, callables) are
    left out, since they are objects rather than configuration.

    Args:
        module: the LightningModule being built.
        objects: names of its `__init__` arguments that hold objects.
    """
    given = _given_hyperparameters.get()  # set by LightningCLI while it instantiates the model
    caller = inspect.currentframe()
    frame = caller.f_back if caller is not None else None
    module.save_hyperparameters(ignore=None if given is not None else objects, frame=frame)


def load_stage_checkpoint(
    stage: LightningModule, checkpoint: str, argument: str = "stage checkpoint", prefix: str = ""
) -> None:
    """Load a stage's Lightning checkpoint (`state_dict`, strict) into `stage`.

    Args:
        stage: the stage (or its model) to load into.
        checkpoint: path of the `.ckpt` (or of a bare `state_dict`).
        argument: the config argument that named the file, for the error message.
        prefix: load only the entries under this key prefix, without it (e.g. "renderer." to
            take stage 3 out of a `PMFS` checkpoint).
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(
            f"{argument} {path} does not exist; give the .ckpt of a trained "
            f"{type(stage).__name__} (e.g. lightning_logs/version_N/checkpoints/last.ckpt)"
        )
    state = torch.load(path, map_location="cpu", weights_only=False)
    state = state.get("state_dict", state)
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise ValueError(f"{argument} {path} has no {prefix.rstrip('.')} weights")
    stage.load_state_dict(state)
    log.info("loaded %s from %s%s", type(stage).__name__, path, f" ({prefix}*)" if prefix else "")


NonFinite = Literal["raise", "skip"]


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the message names the batch's samples."""


def batch_identity(batch: Batch, limit: int = 8) -> str:
    """`speaker/clip@frame` of a batch's first `limit` samples, for error messages."""
    speakers, clips = batch.get("speaker", []), batch.get("clip", [])
    frames = batch.get("frame_index")
    frame_list = [] if frames is None else [int(f) for f in frames.reshape(-1)[:limit]]
    items = [
        f"{speaker}/{clip}@{frame}"
        for speaker, clip, frame in zip(speakers[:limit], clips[:limit], frame_list, strict=False)
    ]
    more = len(clips) - limit
    return ", ".join(items) + (f" (+{more} more)" if more > 0 else "") if items else "unknown"


def check_finite(
    losses: dict[str, Tensor], batch: Batch, step: int, policy: NonFinite, stage: str
) -> bool:
    """Whether every loss is finite; otherwise raise (`policy="raise"`) or warn and say skip.

    Args:
        losses: name → scalar loss.
        batch: the batch they came from (its `speaker`, `clip`, `frame_index` name the samples).
        step: the trainer's global step, for the message.
        policy: "raise" → `NonFiniteLossError`; "skip" → a warning and False (the caller skips
            the update; under DDP every rank must skip the same batch, so prefer "raise" there).
        stage: name of the stage, for the message.

    Returns:
        True when all losses are finite.
    """
    bad = {k: float(v.detach()) for k, v in losses.items() if not bool(torch.isfinite(v).all())}
    if not bad:
        return True
    message = (
        f"{stage}: non-finite loss {bad} at step {step} on samples {batch_identity(batch)} "
        f"(speaker/clip@frame)"
    )
    if policy == "raise":
        raise NonFiniteLossError(message + "; set nonfinite: skip to skip such batches")
    log.warning("%s; skipping the update", message)
    return False


def clip_window_index(frames: int, window: int, landmark_sets: int, device: torch.device) -> Tensor:
    """Frame indices of the `window` frames centred on each of a clip's frames.

    Ends are clamped (the edge frame repeats), as in the dataset.

    Args:
        frames: N, the clip's number of frames (mel windows).
        window: T, odd.
        landmark_sets: number of landmark sets given with the clip (must equal N).
        device: device of the result.

    Returns:
        (N, T) int64 indices into the clip's frames.
    """
    if window < 1 or window % 2 == 0 or landmark_sets != frames:
        raise ValueError(
            f"need an odd window >= 1 and one landmark set per mel window, got window="
            f"{window}, {frames} mel windows and {landmark_sets} landmark sets"
        )
    offsets = torch.arange(window, device=device) - window // 2
    return (torch.arange(frames, device=device)[:, None] + offsets).clamp(0, frames - 1)


class LandmarkStage(LightningModule):
    """The loop both landmark stages share: losses and metrics per split, one optimizer.

    Subclasses set `network`, `optimizer`, `loss_weights`, `val_metrics`, `test_metrics` and
    implement `_predict` (what the losses compare) and `_face` (the 68 points the metrics see).
    """

    network: nn.Module
    optimizer: OptimizerCallable
    loss_weights: LandmarkLossWeights
    val_metrics: MetricCollection
    test_metrics: MetricCollection

    def _predict(self, batch: Batch, split: Split) -> tuple[Tensor, Tensor]:
        """(prediction, target) of one batch, in the space the losses compare them."""
        raise NotImplementedError

    def _face(self, pred: Tensor, batch: Batch) -> Tensor:
        """The prediction as (B, T, 68, 2) normalized image landmarks, for the metrics."""
        raise NotImplementedError

    def _shared_step(self, batch: Batch, split: Split) -> dict[str, Tensor]:
        pred, target = self._predict(batch, split)
        losses = landmark_losses(pred, target, self.loss_weights)
        check_finite(losses, batch, self.global_step, "raise", type(self).__name__)
        self.log_dict(
            {f"{split}/{name}": value for name, value in losses.items()},
            prog_bar=split != "test",
            batch_size=pred.shape[0],
            sync_dist=split != "train",  # epoch values over all DDP processes
        )
        if split != "train":
            metrics = self.val_metrics if split == "val" else self.test_metrics
            metrics.update(self._face(pred, batch), batch["landmarks"])
            self.log_dict(metrics, batch_size=pred.shape[0])
        return losses

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def configure_optimizers(self) -> Optimizer:
        return self.optimizer(self.network.parameters())
