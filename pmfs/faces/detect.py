"""Landmark detectors: `precomputed` files, `face-alignment` (FAN + S3FD), batched, and `dlib`.

Preprocessing runs a `LandmarkDetector` over each clip (`make_detector`); inference calls
`FaceAlignmentDetector` and `select_face`, or `pmfs.faces.dlib_detector.DlibLandmarks`, on the
target's frames (`pmfs.inference.tracking`). `resolve_detector` turns `auto` into one of them.

All return (N, 68, 2) float32 (x, y) pixels of the frames they were given (pixel-index
convention), with a row of NaN where a frame has no face.

face-alignment loads its weights through the torch hub cache: the 2D FAN state dict
`2DFAN4-11f355bf06.pth.tar` and the S3FD state dict `s3fd-619a316812.pth`, both in
`$TORCH_HOME/hub/checkpoints/` (default `~/.cache/torch/hub/checkpoints/`). Without them and
without network, `FaceAlignmentDetector` raises `DetectorWeightsError` naming the missing files,
their URLs and the folder to put them in.
"""

from __future__ import annotations

import itertools
import logging
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlparse

import numpy as np

from pmfs.audio import VIDEO_FPS
from pmfs.faces import DLIB_LICENCE_NOTE, DetectorName
from pmfs.video import resample_indices

if TYPE_CHECKING:  # annotations only: pmfs.faces needs nothing of preprocessing at run time
    from pmfs.data.preprocess.layouts import ClipJob

log = logging.getLogger(__name__)


class LandmarkFileError(ValueError):
    """A precomputed landmark file is missing or does not fit its video."""


class DetectorWeightsError(FileNotFoundError):
    """face-alignment's weights are not in the torch hub cache and cannot be downloaded."""


class LandmarkDetector(Protocol):
    """Anything that gives the landmarks of a clip's frames."""

    def __call__(self, frames: Iterable[np.ndarray], job: ClipJob, source_fps: float) -> np.ndarray:
        """Landmarks of a clip's 25 fps frames.

        Args:
            frames: the clip's (H, W, 3) uint8 RGB frames at 25 fps, streamed (a detector that
                needs no pixels need not consume them).
            job: the clip.
            source_fps: the raw video's frame rate.

        Returns:
            (N, 68, 2) float32 raw-frame pixels, NaN rows where there is no face.
        """
        ...


class PrecomputedDetector:
    """Reads `job.landmarks`: (N_src, 68, 2) pixels of the raw frames at the video's own rate.

    The file is resampled to 25 fps like the video (`pmfs.video.resample_indices`); NaN rows
    mark frames where the user's detector found no face. A clip cut out of a longer video (the
    videos layout) gets its frames `job.start:job.stop` of the video's file.
    """

    def __call__(self, frames: Iterable[np.ndarray], job: ClipJob, source_fps: float) -> np.ndarray:
        if job.landmarks is None:
            raise LandmarkFileError(
                f"landmarks_missing: no precomputed landmark file for {job.video} "
                "(see docs/preprocessing.md for where it goes), or use --detector face-alignment"
            )
        try:
            points = np.load(job.landmarks).astype(np.float32)
        except (OSError, ValueError) as exc:
            raise LandmarkFileError(f"landmarks_bad: cannot read {job.landmarks}: {exc}") from exc
        if points.ndim != 3 or points.shape[1:] != (68, 2) or len(points) == 0:
            raise LandmarkFileError(
                f"landmarks_bad: {job.landmarks} has shape {points.shape}, expected (N, 68, 2)"
            )
        if round(source_fps) != VIDEO_FPS:
            points = points[resample_indices(len(points), source_fps)]
        return points[job.start : job.stop]  # a clip cut out of a longer video: its frames


def weight_files() -> dict[str, str]:
    """File name → URL of the weights face-alignment loads for 2D landmarks with S3FD."""
    from face_alignment.api import models_urls
    from face_alignment.detection.sfd.sfd_detector import models_urls as sfd_urls

    urls = [models_urls["2DFAN-4"], sfd_urls["s3fd"]]
    return {os.path.basename(urlparse(url).path): url for url in urls}


def checkpoint_dir() -> Path:
    """The torch hub cache folder face-alignment reads its weights from."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def missing_weights() -> dict[str, str]:
    """The weight files (name → URL) not yet in `checkpoint_dir()`."""
    folder = checkpoint_dir()
    return {name: url for name, url in weight_files().items() if not (folder / name).is_file()}


def _weights_message(missing: dict[str, str], cause: BaseException | None) -> str:
    folder = checkpoint_dir()
    lines = [f"  {folder / name}   (download: {url})" for name, url in missing.items()]
    why = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
    return (
        "face-alignment weights are missing and could not be downloaded"
        f"{why}. Put these files there (the folder is $TORCH_HOME/hub/checkpoints):\n"
        + "\n".join(lines)
    )


def select_face(boxes: Any) -> np.ndarray | None:
    """The face to track among one frame's detections: the highest score × area.

    Args:
        boxes: S3FD's detections of one frame, rows (x1, y1, x2, y2, score), possibly empty.

    Returns:
        (5,) float64 box or None (float64: face-alignment's crop code needs Python-float scalars).
    """
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    if len(array) == 0:
        return None
    area = (array[:, 2] - array[:, 0]) * (array[:, 3] - array[:, 1])
    return array[int(np.argmax(array[:, 4] * np.maximum(area, 0)))]


class FaceAlignmentDetector:
    """face-alignment's 2D FAN with its S3FD face detector, batched over frames.

    Args:
        device: "cpu" or "cuda" (a "cuda" request without a GPU falls back to the CPU with a
            warning).
        batch_size: frames per detector batch.
    """

    def __init__(self, device: str = "cpu", batch_size: int = 16) -> None:
        import torch

        if device.startswith("cuda") and not torch.cuda.is_available():
            log.warning("--device %s asked but no CUDA GPU is available; using the CPU", device)
            device = "cpu"
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.model = self._load(device)

    def _load(self, device: str) -> Any:
        import face_alignment

        missing = missing_weights()
        if missing:
            log.info("face-alignment weights missing, trying to download: %s", list(missing))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return face_alignment.FaceAlignment(
                    face_alignment.LandmarksType.TWO_D,
                    device=device,
                    flip_input=False,
                    face_detector="sfd",
                    compile=False,
                    max_batch_size=self.batch_size,
                )
        except (OSError, RuntimeError, ValueError) as exc:
            still_missing = missing_weights()
            if still_missing:
                raise DetectorWeightsError(_weights_message(still_missing, exc)) from exc
            raise

    def __call__(self, frames: Iterable[np.ndarray], job: ClipJob, source_fps: float) -> np.ndarray:
        iterator = iter(frames)
        out = []
        while batch := list(itertools.islice(iterator, self.batch_size)):
            out.append(self._detect_batch(np.stack(batch)))
        if not out:
            return np.zeros((0, 68, 2), np.float32)
        return np.concatenate(out)

    def _detect_batch(self, frames: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 → (B, 68, 2) float32, NaN where no face was found."""
        import torch

        batch = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))).float()
        batch = batch.to(self.device)  # (B, 3, H, W) RGB 0–255, what S3FD expects
        with torch.no_grad():
            detections = self.model.face_detector.detect_from_batch(batch)
        return self.landmarks_for_faces(frames, [select_face(boxes) for boxes in detections])

    def landmarks_for_faces(self, frames: np.ndarray, faces: list[np.ndarray | None]) -> np.ndarray:
        """Run the FAN once on the face crops of a batch of frames.

        The same steps as `FaceAlignment.get_landmarks_from_image` (centre and scale from the
        box, `crop` to 256², heatmaps → `get_preds_fromhm`), but one FAN forward pass for all
        faces of the batch instead of one per frame.

        Args:
            frames: (B, H, W, 3) uint8 RGB.
            faces: per frame, an (x1, y1, x2, y2, score) box or None.

        Returns:
            (B, 68, 2) float32 pixels of the frames; NaN rows for frames without a face.
        """
        import torch
        from face_alignment.utils import CENTER_Y_OFFSET, crop, get_preds_fromhm

        out = np.full((len(frames), 68, 2), np.nan, dtype=np.float32)
        found = [i for i, face in enumerate(faces) if face is not None]
        if not found:
            return out
        reference = float(self.model.face_detector.reference_scale)
        centres, scales, crops = [], [], []
        for i in found:
            x1, y1, x2, y2 = (float(v) for v in faces[i][:4])  # type: ignore[index]
            centres.append(np.array([(x1 + x2) / 2, (y1 + y2) / 2 - (y2 - y1) * CENTER_Y_OFFSET]))
            scales.append((x2 - x1 + y2 - y1) / reference)
            crops.append(crop(frames[i], centres[-1], scales[-1]).transpose(2, 0, 1))
        inputs = torch.from_numpy(np.stack(crops).astype(np.float32) / 255.0).to(self.device)
        with torch.no_grad():
            heatmaps = self.model.face_alignment_net(inputs)  # (K, 68, 64, 64)
        if isinstance(heatmaps, list):
            heatmaps = heatmaps[-1]
        heatmaps = heatmaps.detach().to("cpu", torch.float32).numpy()
        for k, i in enumerate(found):
            _, points, _ = get_preds_fromhm(heatmaps[k : k + 1], centres[k], scales[k])
            out[i] = np.asarray(points, dtype=np.float32).reshape(68, 2)
        return out


ResolvedName = Literal["face-alignment", "dlib", "precomputed"]
"""A detector that `auto` resolved to (or one named explicitly)."""


@dataclass(frozen=True)
class DetectorChoice:
    """The detector a run uses and why (`resolve_detector`).

    Attributes:
        name: the detector.
        why: the reason, for the one line a run prints.
    """

    name: ResolvedName
    why: str

    @property
    def line(self) -> str:
        """The one line saying which detector and why."""
        note = f"; {DLIB_LICENCE_NOTE}" if self.name == "dlib" else ""
        return f"landmark detector: {self.name} ({self.why}{note})"


def resolve_detector(name: DetectorName) -> DetectorChoice:
    """The detector a `--detector` value stands for: `auto` becomes face-alignment when both of
    its weight files are in the torch hub cache (`missing_weights`; nothing is downloaded), else
    dlib. A dlib choice checks that dlib and its model are installed.

    Raises:
        pmfs.faces.dlib_detector.DlibModelError: dlib is needed but not installed.
        ValueError: an unknown name.
    """
    from pmfs.faces.dlib_detector import DlibModelError, model_path

    if name == "auto":
        missing = missing_weights()
        if not missing:
            return DetectorChoice(
                "face-alignment", f"--detector auto: its weights are in {checkpoint_dir()}"
            )
        try:
            model_path()
        except DlibModelError as exc:
            raise DlibModelError(
                f"--detector auto: face-alignment's weights are not in {checkpoint_dir()} and {exc}"
            ) from exc
        return DetectorChoice(
            "dlib",
            f"--detector auto: face-alignment's weights ({', '.join(missing)}) are not in "
            f"{checkpoint_dir()}",
        )
    if name == "dlib":
        model_path()
    if name in ("face-alignment", "dlib", "precomputed"):
        return DetectorChoice(name, f"--detector {name}")
    raise ValueError(f"unknown detector {name!r}; use auto, face-alignment, dlib or precomputed")


def make_detector(
    name: DetectorName, device: str = "cpu", batch_size: int = 16
) -> LandmarkDetector:
    """The detector called `name` (`auto` resolved by `resolve_detector`)."""
    if name == "auto":
        name = resolve_detector(name).name
    if name == "precomputed":
        return PrecomputedDetector()
    if name == "face-alignment":
        return FaceAlignmentDetector(device, batch_size)
    if name == "dlib":
        from pmfs.faces.dlib_detector import DlibDetector

        return DlibDetector(batch_size)
    raise ValueError(f"unknown detector {name!r}; use auto, face-alignment, dlib or precomputed")
