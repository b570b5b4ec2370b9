"""`FaceVideoLogger`: per validation epoch, a face video with audio and an image grid (stage 3).

Each frame shows four panels side by side — sketch | generated | ground truth | error heatmap:
the sketch the renderer drew (black strokes on white), the generated frame, the true frame, and
the per-pixel mean absolute error over RGB mapped through the inferno colormap on a fixed scale
`0 … ERROR_SCALE`, so heatmaps of different epochs compare (the panels are `pmfs.panels`'). The
clip's audio is muxed into the mp4; a PNG grid shows the same panels for a few frames spread over
the clip. Both are written into `<trainer.log_dir>/media/` and logged to every `WandbLogger` as
`val/face_video` (`wandb.Video`) and `val/face_grid` (`wandb.Image`); the models only provide
`generate_clip`. The schedule, rank zero, eval mode and logging are `ValidationMediaLogger`'s.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from lightning.pytorch import LightningModule, Trainer
from PIL import Image
from torch import Tensor

from callbacks.media import MediaFile, ValidationMediaLogger
from pmfs.clip import ClipInputs, ClipOutput
from pmfs.data.clips import clip_inputs_from_cache
from pmfs.panels import ERROR_SCALE, error_heatmap, image_grid, image_panels, sketch_panels
from pmfs.stages import PMFS, FaceRenderer

log = logging.getLogger(__name__)

VIDEO_KEY = "val/face_video"
GRID_KEY = "val/face_grid"
PANELS = ("sketch", "generated", "ground truth", "error")
CAPTION = (
    "sketch | generated | ground truth | error: per-pixel mean |generated − truth| over RGB, "
    f"inferno colormap on a fixed 0 … {ERROR_SCALE} scale (same in every epoch)"
)


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
    panels = [
        sketch_panels(sketches),
        image_panels(generated),
        image_panels(truth),
        error_heatmap(generated, truth).numpy(),
    ]
    return np.concatenate(panels, axis=2)  # (N, H, 4W, 3)


class FaceVideoLogger(ValidationMediaLogger):
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
        if min(every_n_epochs, max_frames, grid_samples, chunk) < 1:
            raise ValueError(
                f"every_n_epochs, max_frames, grid_samples and chunk must be >= 1, got "
                f"{every_n_epochs}, {max_frames}, {grid_samples} and {chunk}"
            )
        super().__init__(every_n_epochs, clip, max_frames)
        self.grid_samples = grid_samples
        self.chunk = chunk

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not isinstance(pl_module, PMFS | FaceRenderer):
            raise ValueError(
                f"{type(pl_module).__name__} has no generate_clip; FaceVideoLogger works with "
                f"the image models (pmfs.PMFS, pmfs.stages.FaceRenderer) — use "
                f"LandmarkVideoLogger for the landmark stages"
            )

    def write(
        self, media: Path, epoch: int, frames: np.ndarray, audio: np.ndarray | None
    ) -> list[MediaFile]:
        """`face_epoch<epoch>_video.mp4` and `face_epoch<epoch>_grid.png`."""
        stem = media / f"face_epoch{epoch:04d}"
        video_path = stem.with_name(f"{stem.name}_video.mp4")
        grid_path = stem.with_name(f"{stem.name}_grid.png")
        self.write_clip_video(video_path, frames, audio)
        Image.fromarray(image_grid(frames, self.grid_samples)).save(grid_path)
        log.info("wrote the face video and grid of epoch %d to %s", epoch, stem)
        return [
            MediaFile(VIDEO_KEY, video_path, "video", CAPTION),
            MediaFile(GRID_KEY, grid_path, "image", CAPTION),
        ]

    def render(
        self, trainer: Trainer, pl_module: LightningModule
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The video's frames and audio.

        Returns:
            (N, H, 4·W, 3) uint8 RGB frames (`compose_panels`), N = min(max_frames, clip
            frames), H = W = the datamodule's image_size, and the (S,) float32 16 kHz audio of
            those frames (None if the cache has none).
        """
        datamodule = self.datamodule(trainer)
        dataset = datamodule.val_set
        assert dataset is not None  # checked by datamodule()
        spec = datamodule.spec
        reader = dataset.cache.open(dataset.clips[self.clip_position(dataset)].clip)
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
