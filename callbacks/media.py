"""`ValidationMediaLogger`: the skeleton every validation media callback shares.

After the validation of every `every_n_epochs`-th epoch (never during the sanity check), rank
zero puts the model in eval mode, renders one validation clip without gradients (`render`),
restores the model's mode, writes the media into `<trainer.log_dir>/media/` (`write`) and logs
them to every `WandbLogger`. A subclass keeps only what it draws: `render` and `write` (and its
model check in `setup`); the models never see a logger.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from data_modules.talking_face import TalkingFaceDataModule
from pmfs.audio import SAMPLE_RATE, VIDEO_FPS
from pmfs.data.dataset import TalkingFaceDataset
from pmfs.video_writer import write_video


@dataclass(frozen=True)
class MediaFile:
    """A written media file and how it is logged to W&B.

    Attributes:
        key: the W&B key, e.g. "val/face_video".
        path: the file (mp4 or png).
        kind: "video" (`wandb.Video`) or "image" (`wandb.Image`).
        caption: shown under the media in W&B.
    """

    key: str
    path: Path
    kind: Literal["video", "image"]
    caption: str | None = None


class ValidationMediaLogger(Callback):
    """Base class: schedule, rank zero, eval mode, clip choice, files and W&B logging.

    Args:
        every_n_epochs: log after the validation of every n-th epoch (1: every epoch).
        clip: id of the validation clip to show; None: the first validation clip.
        max_frames: at most this many frames from the clip's start (25 fps).
    """

    def __init__(
        self, every_n_epochs: int = 1, clip: str | None = None, max_frames: int = 100
    ) -> None:
        super().__init__()
        self.every_n_epochs = every_n_epochs
        self.clip = clip
        self.max_frames = max_frames

    # -- what a subclass draws --------------------------------------------------------------------

    def render(
        self, trainer: Trainer, pl_module: LightningModule
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The video's (N, H, W, 3) uint8 RGB frames and (S,) float32 16 kHz audio (or None);
        called on rank zero, in eval mode, without gradients."""
        raise NotImplementedError

    def write(
        self, media: Path, epoch: int, frames: np.ndarray, audio: np.ndarray | None
    ) -> list[MediaFile]:
        """Write the epoch's media files into the folder `media`; returns what to log to W&B."""
        raise NotImplementedError

    # -- the shared skeleton --------------------------------------------------------------------

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        log_dir = trainer.log_dir or trainer.default_root_dir  # a collective call: every rank
        self._write_and_log(trainer, pl_module, Path(log_dir) / "media")

    @rank_zero_only
    def _write_and_log(self, trainer: Trainer, pl_module: LightningModule, media: Path) -> None:
        """Render in eval mode on rank zero, write the files, then log them to W&B."""
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                frames, audio = self.render(trainer, pl_module)
        finally:
            pl_module.train(was_training)
        files = self.write(media, trainer.current_epoch, frames, audio)
        self._log_to_wandb(trainer, files)

    def _log_to_wandb(self, trainer: Trainer, files: list[MediaFile]) -> None:
        wandb_loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not wandb_loggers:
            return
        import wandb  # only with a WandbLogger, which needs it anyway

        logged = {
            file.key: wandb.Video(str(file.path), caption=file.caption, format="mp4")
            if file.kind == "video"
            else wandb.Image(str(file.path), caption=file.caption)
            for file in files
        }
        for logger in wandb_loggers:
            logger.experiment.log({**logged, "trainer/global_step": trainer.global_step})

    @staticmethod
    def write_clip_video(path: Path, frames: np.ndarray, audio: np.ndarray | None) -> None:
        """An H.264 mp4 of (N, H, W, 3) uint8 frames at 25 fps, with the 16 kHz audio muxed."""
        write_video(path, frames, VIDEO_FPS, audio, SAMPLE_RATE, preset="veryfast")

    # -- the clip -------------------------------------------------------------------------------

    def datamodule(self, trainer: Trainer) -> TalkingFaceDataModule:
        """The trainer's set-up `TalkingFaceDataModule` (with a validation set)."""
        datamodule = getattr(trainer, "datamodule", None)  # set by fit, not declared
        if not isinstance(datamodule, TalkingFaceDataModule) or datamodule.val_set is None:
            raise ValueError(
                f"{type(self).__name__} needs a set-up TalkingFaceDataModule as "
                f"trainer.datamodule, got {type(datamodule).__name__}; pass datamodule= to "
                f"Trainer.fit"
            )
        return datamodule

    def clip_position(self, dataset: TalkingFaceDataset) -> int:
        """Position of the chosen clip (`clip`, or the first) in the validation clips."""
        if not dataset.clips:
            raise ValueError(f"the validation split is empty; {type(self).__name__} needs a clip")
        names = [record.clip for record in dataset.clips]
        if self.clip is None:
            return 0
        if self.clip not in names:
            raise ValueError(
                f"clip {self.clip!r} is not in the validation split; pick one of {names[:5]}…"
            )
        return names.index(self.clip)
