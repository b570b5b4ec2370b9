"""`LandmarkVideoLogger`: per validation epoch, a landmark-sketch video of one clip with its audio.

The video shows the stage's prediction next to the ground truth (predicted | true), drawn with
`render_sketch` (black strokes on white), with the clip's audio muxed. It is written into
`trainer.log_dir/media/` and logged to every `WandbLogger` as `wandb.Video` under
`val/landmark_video`; the stages only provide `predict_clip_landmarks` and never see a logger.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor

from data_modules.talking_face import TalkingFaceDataModule
from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, mel_windows
from pmfs.data.cache import ClipRecord
from pmfs.data.dataset import TalkingFaceDataset
from pmfs.landmarks import pixels_to_normalized, render_sketch
from pmfs.video import write_video

log = logging.getLogger(__name__)

VIDEO_KEY = "val/landmark_video"


@runtime_checkable
class ClipLandmarkPredictor(Protocol):
    """A stage that predicts a whole clip's 68 landmarks (`AudioToMouth`, `MouthToFace`)."""

    def predict_clip_landmarks(
        self,
        mel_windows: Tensor,
        ref_landmarks: Tensor,
        landmarks: Tensor,
        emotion: int | None = None,
        level: int | None = None,
        *,
        window: int = 5,
    ) -> Tensor:
        """(N, 80, 16), (K, 68, 2), (N, 68, 2) normalized → (N, 68, 2) normalized."""
        ...


class LandmarkVideoLogger(Callback):
    """Write and log a predicted | true landmark-sketch video with audio every few val epochs.

    Args:
        every_n_epochs: log after the validation of every n-th epoch (1: every epoch).
        clip: id of the validation clip to show; None: the first validation clip.
        max_frames: at most this many frames from the clip's start (25 fps).
        size: side of each sketch panel in pixels; the video is (size, 2·size).
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        clip: str | None = None,
        max_frames: int = 100,
        size: int = 256,
    ) -> None:
        super().__init__()
        if every_n_epochs < 1 or max_frames < 1 or size < 2:
            raise ValueError(
                f"need every_n_epochs >= 1, max_frames >= 1 and size >= 2, got {every_n_epochs}, "
                f"{max_frames} and {size}"
            )
        self.every_n_epochs = every_n_epochs
        self.clip = clip
        self.max_frames = max_frames
        self.size = size

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not isinstance(pl_module, ClipLandmarkPredictor):
            raise ValueError(
                f"{type(pl_module).__name__} has no predict_clip_landmarks; LandmarkVideoLogger "
                f"works with the landmark stages (AudioToMouth, MouthToFace)"
            )

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        log_dir = trainer.log_dir or trainer.default_root_dir  # a collective call: every rank
        path = Path(log_dir) / "media" / f"landmark_video_epoch{trainer.current_epoch:04d}.mp4"
        self._write_and_log(trainer, pl_module, path)

    @rank_zero_only
    def _write_and_log(self, trainer: Trainer, pl_module: LightningModule, path: Path) -> None:
        """Predict, render and write the video on rank zero, then log it to W&B."""
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                frames, audio = self.render(trainer, pl_module)
        finally:
            pl_module.train(was_training)
        write_video(path, frames, VIDEO_FPS, audio, SAMPLE_RATE, preset="veryfast")
        log.info("wrote the landmark video of epoch %d to %s", trainer.current_epoch, path)
        wandb_loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if wandb_loggers:
            import wandb  # only with a WandbLogger, which needs it anyway

            video = wandb.Video(str(path), format="mp4")
            for logger in wandb_loggers:
                logger.experiment.log(
                    {VIDEO_KEY: video, "trainer/global_step": trainer.global_step}
                )

    def render(self, trainer: Trainer, pl_module: LightningModule) -> tuple[np.ndarray, np.ndarray]:
        """The video's frames and audio.

        Returns:
            (N, size, 2·size, 3) uint8 RGB frames (predicted | true sketches) and the (S,)
            float32 16 kHz audio of those N frames.
        """
        assert isinstance(pl_module, ClipLandmarkPredictor)
        dataset = _val_dataset(trainer)
        index, record = self._clip_item(dataset)
        item = dataset[index]  # the validation item's references and labels
        reader = dataset.cache.open(record.clip)
        try:
            count = min(reader.num_frames, self.max_frames)
            windows = mel_windows(reader.mel, reader.num_frames)[:count]
            truth = pixels_to_normalized(reader.landmarks[:count].astype(np.float32), reader.size)
            audio = np.asarray(reader.audio[: count * SAMPLE_RATE // VIDEO_FPS], dtype=np.float32)
        finally:
            reader.close()
        device = pl_module.device
        truth_t = torch.from_numpy(np.ascontiguousarray(truth)).to(device)
        pred = pl_module.predict_clip_landmarks(
            torch.from_numpy(windows).to(device),
            item["ref_landmarks"].to(device),
            truth_t,
            int(item["emotion"]),
            int(item["level"]),
            window=dataset.spec.window,
        )
        return _side_by_side(pred, truth_t, self.size), audio

    def _clip_item(self, dataset: TalkingFaceDataset) -> tuple[int, ClipRecord]:
        """Index of the first dataset item of the chosen clip, and the clip's record."""
        if not dataset.clips:
            raise ValueError("the validation split is empty; LandmarkVideoLogger needs a clip")
        names = [record.clip for record in dataset.clips]
        if self.clip is not None and self.clip not in names:
            raise ValueError(
                f"clip {self.clip!r} is not in the validation split; pick one of {names[:5]}…"
            )
        position = 0 if self.clip is None else names.index(self.clip)
        per_clip = dataset.samples_per_clip
        index = sum(r.frames if per_clip is None else per_clip for r in dataset.clips[:position])
        return index, dataset.clips[position]


def _val_dataset(trainer: Trainer) -> TalkingFaceDataset:
    """The validation dataset of the trainer's `TalkingFaceDataModule`."""
    datamodule = getattr(trainer, "datamodule", None)  # set by fit, not declared
    if not isinstance(datamodule, TalkingFaceDataModule) or datamodule.val_set is None:
        raise ValueError(
            f"LandmarkVideoLogger needs a set-up TalkingFaceDataModule as trainer.datamodule, "
            f"got {type(datamodule).__name__}; pass datamodule= to Trainer.fit"
        )
    return datamodule.val_set


def _side_by_side(pred: Tensor, truth: Tensor, size: int) -> np.ndarray:
    """(N, 68, 2) predicted and true normalized landmarks → (N, size, 2·size, 3) uint8 RGB."""
    ink = render_sketch(torch.stack([pred, truth], dim=1).float(), size)  # (N, 2, 1, H, W)
    panels = torch.cat([ink[:, 0, 0], ink[:, 1, 0]], dim=-1)  # (N, H, 2W), 1 = ink
    gray = ((1.0 - panels.clamp(0.0, 1.0)) * 255.0).round().to(torch.uint8).cpu().numpy()
    return np.repeat(gray[..., None], 3, axis=-1)
