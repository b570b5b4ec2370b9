"""`FaceVideoLogger`: per validation epoch, a face video with audio and an image grid (stage 3).

Each frame shows four panels side by side — sketch | generated | ground truth | error heatmap:
the sketch the renderer drew (black strokes on white), the generated frame, the true frame, and
the per-pixel mean absolute error over RGB mapped through the inferno colormap on a fixed scale
`0 … ERROR_SCALE`, so heatmaps of different epochs compare. The clip's audio is muxed into the
mp4; a PNG grid shows the same panels for a few frames spread over the clip. Both are written into
`<trainer.log_dir>/media/` and logged to every `WandbLogger` as `val/face_video` (`wandb.Video`)
and `val/face_grid` (`wandb.Image`); the models only provide `generate_clip`.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image
from torch import Tensor

from data_modules.talking_face import TalkingFaceDataModule
from pmfs.audio import SAMPLE_RATE, VIDEO_FPS
from pmfs.clip import ClipInputs, ClipOutput, clip_inputs_from_cache
from pmfs.data.cache import ClipRecord
from pmfs.data.dataset import TalkingFaceDataset
from pmfs.stages import PMFS, FaceRenderer
from pmfs.video import write_video

log = logging.getLogger(__name__)

VIDEO_KEY = "val/face_video"
GRID_KEY = "val/face_grid"
PANELS = ("sketch", "generated", "ground truth", "error")
ERROR_SCALE = 0.5
"""Mean absolute error (RGB in [0, 1]) shown as the colormap's top colour; larger is clipped."""
CAPTION = (
    "sketch | generated | ground truth | error: per-pixel mean |generated − truth| over RGB, "
    f"inferno colormap on a fixed 0 … {ERROR_SCALE} scale (same in every epoch)"
)

# inferno at t = 0, 1/8, …, 1 (RGB 0..255), used when matplotlib is not installed
_INFERNO_ANCHORS = np.array(
    [
        [0, 0, 4],
        [31, 12, 72],
        [85, 15, 109],
        [136, 34, 106],
        [186, 54, 85],
        [227, 89, 51],
        [249, 140, 10],
        [249, 201, 50],
        [252, 255, 164],
    ],
    dtype=np.float64,
)


def colormap_table() -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of inferno: matplotlib's if installed, else built in."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        t = np.linspace(0.0, 1.0, 256)
        knots = np.linspace(0.0, 1.0, len(_INFERNO_ANCHORS))
        table = np.stack([np.interp(t, knots, _INFERNO_ANCHORS[:, c]) for c in range(3)], -1)
        return table.round().astype(np.uint8)
    rgba = matplotlib.colormaps["inferno"](np.linspace(0.0, 1.0, 256))
    return (np.asarray(rgba)[:, :3] * 255.0).round().astype(np.uint8)


def error_heatmap(generated: Tensor, truth: Tensor, scale: float = ERROR_SCALE) -> Tensor:
    """Per-pixel mean absolute error over RGB, coloured.

    Args:
        generated: (N, 3, H, W) float [0, 1].
        truth: (N, 3, H, W) float [0, 1].
        scale: error shown as the colormap's top colour (fixed, so epochs compare).

    Returns:
        (N, H, W, 3) uint8 RGB; error 0 is `colormap_table()[0]`, ≥ `scale` is its last row.
    """
    if generated.shape != truth.shape or generated.ndim != 4 or generated.shape[1] != 3:
        raise ValueError(
            f"generated and truth must both be (N, 3, H, W), got {tuple(generated.shape)} and "
            f"{tuple(truth.shape)}"
        )
    error = (generated.float() - truth.float()).abs().mean(dim=1)  # (N, H, W)
    index = (error / scale).clamp(0.0, 1.0).mul(255.0).round().long().cpu()
    return torch.from_numpy(colormap_table())[index]


def compose_panels(sketches: Tensor, generated: Tensor, truth: Tensor) -> np.ndarray:
    """Four panels per frame, side by side: sketch | generated | ground truth | error heatmap.

    Args:
        sketches: (N, S, H, W) sketch intensities in [0, 1] (1 = ink); channels are merged
            by their maximum and drawn black on white.
        generated: (N, 3, H, W) float [0, 1] generated frames.
        truth: (N, 3, H, W) float [0, 1] true frames.

    Returns:
        (N, H, 4·W, 3) uint8 RGB frames.
    """
    n, _, h, w = truth.shape
    if sketches.ndim != 4 or sketches.shape[0] != n or sketches.shape[-2:] != (h, w):
        raise ValueError(
            f"sketches must be (N, S, H, W) = ({n}, S, {h}, {w}), got {tuple(sketches.shape)}"
        )
    paper = 1.0 - sketches.float().amax(dim=1, keepdim=True).clamp(0.0, 1.0)  # (N, 1, H, W)
    images = torch.cat([paper.expand(n, 3, h, w), generated.float(), truth.float()], dim=-1)
    rgb = images.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()
    return torch.cat([rgb, error_heatmap(generated, truth)], dim=2).numpy()  # (N, H, 4W, 3)


def image_grid(panels: np.ndarray, rows: int) -> np.ndarray:
    """`rows` frames spread evenly over the clip (first … last), stacked top to bottom.

    Args:
        panels: (N, H, W', 3) uint8 frames of `compose_panels`.
        rows: frames to show (at most N).

    Returns:
        (min(rows, N)·H, W', 3) uint8 RGB.
    """
    picks = np.linspace(0, len(panels) - 1, min(rows, len(panels))).round().astype(np.int64)
    return np.concatenate(list(panels[picks]), axis=0)


class FaceVideoLogger(Callback):
    """Write and log a face video with audio and a frame grid of one validation clip.

    Works with the models that render whole clips: `PMFS` (the whole chain from audio) and
    `FaceRenderer` (the true landmarks drawn). The clip is read from the validation split of
    the trainer's `TalkingFaceDataModule` at its `image_size`, `num_references`, `window` and
    `background`.

    Args:
        every_n_epochs: log after the validation of every n-th epoch (1: every epoch).
        clip: id of the validation clip to show; None: the first validation clip.
        max_frames: at most this many frames from the clip's start (25 fps).
        grid_samples: rows of the image grid, frames spread over the shown frames.
        chunk: frames per forward pass of `generate_clip`.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        clip: str | None = None,
        max_frames: int = 100,
        grid_samples: int = 4,
        chunk: int = 16,
    ) -> None:
        super().__init__()
        if min(every_n_epochs, max_frames, grid_samples, chunk) < 1:
            raise ValueError(
                f"every_n_epochs, max_frames, grid_samples and chunk must be >= 1, got "
                f"{every_n_epochs}, {max_frames}, {grid_samples} and {chunk}"
            )
        self.every_n_epochs = every_n_epochs
        self.clip = clip
        self.max_frames = max_frames
        self.grid_samples = grid_samples
        self.chunk = chunk

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not isinstance(pl_module, PMFS | FaceRenderer):
            raise ValueError(
                f"{type(pl_module).__name__} has no generate_clip; FaceVideoLogger works with "
                f"the image models (pmfs.PMFS, pmfs.stages.FaceRenderer) — use "
                f"LandmarkVideoLogger for the landmark stages"
            )

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        log_dir = trainer.log_dir or trainer.default_root_dir  # a collective call: every rank
        stem = Path(log_dir) / "media" / f"face_epoch{trainer.current_epoch:04d}"
        self._write_and_log(trainer, pl_module, stem)

    @rank_zero_only
    def _write_and_log(self, trainer: Trainer, pl_module: LightningModule, stem: Path) -> None:
        """Generate and write the video and grid on rank zero, then log them to W&B."""
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                frames, audio = self.render(trainer, pl_module)
        finally:
            pl_module.train(was_training)
        video_path = stem.with_name(f"{stem.name}_video.mp4")
        grid_path = stem.with_name(f"{stem.name}_grid.png")
        write_video(video_path, frames, VIDEO_FPS, audio, SAMPLE_RATE, preset="veryfast")
        Image.fromarray(image_grid(frames, self.grid_samples)).save(grid_path)
        log.info("wrote the face video and grid of epoch %d to %s", trainer.current_epoch, stem)
        self._log_to_wandb(trainer, video_path, grid_path)

    def _log_to_wandb(self, trainer: Trainer, video_path: Path, grid_path: Path) -> None:
        wandb_loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not wandb_loggers:
            return
        import wandb  # only with a WandbLogger, which needs it anyway

        media = {
            VIDEO_KEY: wandb.Video(str(video_path), caption=CAPTION, format="mp4"),
            GRID_KEY: wandb.Image(str(grid_path), caption=CAPTION),
        }
        for logger in wandb_loggers:
            logger.experiment.log({**media, "trainer/global_step": trainer.global_step})

    def render(
        self, trainer: Trainer, pl_module: LightningModule
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The video's frames and audio.

        Returns:
            (N, H, 4·W, 3) uint8 RGB frames (`compose_panels`), N = min(max_frames, clip
            frames), H = W = the datamodule's image_size, and the (S,) float32 16 kHz audio of
            those frames (None if the cache has none).
        """
        datamodule = _datamodule(trainer)
        dataset = datamodule.val_set
        assert dataset is not None  # checked by _datamodule
        spec = datamodule.spec
        reader = dataset.cache.open(self._clip_record(dataset).clip)
        try:
            clip = clip_inputs_from_cache(
                reader, spec.image_size, spec.num_references, self.max_frames, spec.background
            )
        finally:
            reader.close()
        out = self._generate(pl_module, clip.to(pl_module.device), spec.window)
        return compose_panels(out.sketches.cpu(), out.frames.cpu(), clip.frames), clip.audio

    def _generate(self, model: LightningModule, clip: ClipInputs, window: int) -> ClipOutput:
        """The model's frames of the whole clip (PMFS: from audio; FaceRenderer: true landmarks)."""
        if isinstance(model, PMFS):
            return model.generate_clip(clip, chunk=self.chunk)
        assert isinstance(model, FaceRenderer)  # checked in setup
        return model.generate_clip(clip, window=window, chunk=self.chunk)

    def _clip_record(self, dataset: TalkingFaceDataset) -> ClipRecord:
        """The record of the chosen validation clip."""
        if not dataset.clips:
            raise ValueError("the validation split is empty; FaceVideoLogger needs a clip")
        names = [record.clip for record in dataset.clips]
        if self.clip is None:
            return dataset.clips[0]
        if self.clip not in names:
            raise ValueError(
                f"clip {self.clip!r} is not in the validation split; pick one of {names[:5]}…"
            )
        return dataset.clips[names.index(self.clip)]


def _datamodule(trainer: Trainer) -> TalkingFaceDataModule:
    """The trainer's set-up `TalkingFaceDataModule` (with a validation set)."""
    datamodule = getattr(trainer, "datamodule", None)  # set by fit, not declared
    if not isinstance(datamodule, TalkingFaceDataModule) or datamodule.val_set is None:
        raise ValueError(
            f"FaceVideoLogger needs a set-up TalkingFaceDataModule as trainer.datamodule, "
            f"got {type(datamodule).__name__}; pass datamodule= to Trainer.fit"
        )
    return datamodule
