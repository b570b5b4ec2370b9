"""`LandmarkVideoLogger`: per validation epoch, a landmark-sketch video of one clip with its audio.

The video shows the stage's prediction next to the ground truth (predicted | true), drawn with
`render_sketch` (black strokes on white, `pmfs.panels.sketch_panels`), with the clip's audio
muxed. It is written into `trainer.log_dir/media/` and logged to every `WandbLogger` as
`wandb.Video` under `val/landmark_video`; the stages only provide `predict_clip_landmarks` and
never see a logger. The schedule, rank zero, eval mode and logging are `ValidationMediaLogger`'s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from callbacks.media import MediaFile, ValidationMediaLogger
from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, mel_windows
from pmfs.data.cache import ClipRecord
from pmfs.data.dataset import TalkingFaceDataset
from pmfs.landmarks import pixels_to_normalized
from pmfs.panels import sketch_panels
from pmfs.sketch import render_sketch

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


class LandmarkVideoLogger(ValidationMediaLogger):
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
        if every_n_epochs < 1 or max_frames < 1 or size < 2:
            raise ValueError(
                f"need every_n_epochs >= 1, max_frames >= 1 and size >= 2, got {every_n_epochs}, "
                f"{max_frames} and {size}"
            )
        super().__init__(every_n_epochs, clip, max_frames)
        self.size = size

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not isinstance(pl_module, ClipLandmarkPredictor):
            raise ValueError(
                f"{type(pl_module).__name__} has no predict_clip_landmarks; LandmarkVideoLogger "
                f"works with the landmark stages (AudioToMouth, MouthToFace)"
            )

    def write(
        self, media: Path, epoch: int, frames: np.ndarray, audio: np.ndarray | None
    ) -> list[MediaFile]:
        """`landmark_video_epoch<epoch>.mp4`."""
        path = media / f"landmark_video_epoch{epoch:04d}.mp4"
        self.write_clip_video(path, frames, audio)
        log.info("wrote the landmark video of epoch %d to %s", epoch, path)
        return [MediaFile(VIDEO_KEY, path, "video")]

    def render(self, trainer: Trainer, pl_module: LightningModule) -> tuple[np.ndarray, np.ndarray]:
        """The video's frames and audio.

        Returns:
            (N, size, 2·size, 3) uint8 RGB frames (predicted | true sketches) and the (S,)
            float32 16 kHz audio of those N frames.
        """
        assert isinstance(pl_module, ClipLandmarkPredictor)
        dataset = self.datamodule(trainer).val_set
        assert dataset is not None  # checked by datamodule()
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
        position = self.clip_position(dataset)
        per_clip = dataset.samples_per_clip
        index = sum(r.frames if per_clip is None else per_clip for r in dataset.clips[:position])
        return index, dataset.clips[position]


def _side_by_side(pred: Tensor, truth: Tensor, size: int) -> np.ndarray:
    """(N, 68, 2) predicted and true normalized landmarks → (N, size, 2·size, 3) uint8 RGB."""
    ink = render_sketch(torch.stack([pred, truth], dim=1).float(), size)  # (N, 2, 1, H, W)
    return np.concatenate([sketch_panels(ink[:, 0]), sketch_panels(ink[:, 1])], axis=2)
