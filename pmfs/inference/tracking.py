"""The face of every template frame: detection, one face per frame, gaps and smoothing.

A `FaceDetector` gives each frame's 68 landmarks (raw-frame pixels, pixel-index convention) and
how many faces it saw: `FaceAlignmentFaces` (face-alignment, batched, the preprocessor's
detector; the largest face), `DlibFaces` (dlib, one face tracked from frame to frame,
`pmfs.faces.dlib_detector`) or `LandmarkFileFaces` (a .npy of the user's or of
`pmfs data synth --raw`; the largest face). `face_detector` builds the one `--detector` names.
`track_faces` interpolates frames without a face (gaps up to `max_gap` frames; longer gaps are
passed through unchanged) and smooths the track with preprocessing's own `fill_gaps` and
`smooth` (`pmfs.faces.crop`). `detect_template` chains them (`detect_faces`, the costly part,
then `track_template`) and logs what it found.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from pmfs.audio import VIDEO_FPS
from pmfs.checkpoints import resolve_device
from pmfs.faces.crop import LandmarkGapError, fill_gaps, missing_frames, smooth
from pmfs.faces.detect import FaceAlignmentDetector, ResolvedName, select_face
from pmfs.inference.options import InferenceOptions
from pmfs.inference.template import InferenceInputError, Template
from pmfs.video import resample_indices

log = logging.getLogger(__name__)


class NoFaceError(InferenceInputError):
    """No face was found in any frame of the target."""


@dataclass
class Detections:
    """Landmarks of the face used in each frame, and how many faces each frame had.

    Attributes:
        landmarks: (M, 68, 2) float32 raw-frame pixels (x, y), NaN rows where no face was found.
        faces: (M,) int64 number of faces found.
        rule: which face is used where there are several (for the log).
        reason: why frames have no face, when the detector knows (one line), else None.
    """

    landmarks: np.ndarray
    faces: np.ndarray
    rule: str = "the largest one is used"
    reason: str | None = None


class FaceDetector(Protocol):
    """Anything that finds the faces of a batch of frames."""

    def __call__(self, frames: np.ndarray) -> Detections:
        """Detect faces in (M, H, W, 3) uint8 RGB frames; keep one face per frame."""
        ...


class FaceAlignmentFaces:
    """face-alignment's S3FD + 2D FAN through the preprocessor's batched `FaceAlignmentDetector`.

    Args:
        device: "cpu" or "cuda".
        batch_size: frames per detector batch.
    """

    def __init__(self, device: str = "cpu", batch_size: int = 16) -> None:
        self.detector = FaceAlignmentDetector(device, batch_size)

    def __call__(self, frames: np.ndarray) -> Detections:
        step = self.detector.batch_size
        parts = [self._batch(frames[i : i + step]) for i in range(0, len(frames), step)]
        return Detections(
            np.concatenate([p.landmarks for p in parts]), np.concatenate([p.faces for p in parts])
        )

    def _batch(self, frames: np.ndarray) -> Detections:
        """One S3FD pass over (B, H, W, 3) frames, then one FAN pass over the chosen faces."""
        batch = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))).float()
        with torch.no_grad():  # (B, 3, H, W) RGB 0–255, what S3FD expects
            boxes = self.detector.model.face_detector.detect_from_batch(
                batch.to(self.detector.device)
            )
        counts = np.array([len(np.asarray(b).reshape(-1, 5)) for b in boxes], dtype=np.int64)
        faces = [select_face(b) for b in boxes]  # highest score × area
        return Detections(self.detector.landmarks_for_faces(frames, faces), counts)


class DlibFaces:
    """dlib's HOG detector and 68-point model (`pmfs.faces.dlib_detector.DlibLandmarks`): one
    face tracked over the frames, so a second face does not take its place; faces under
    `MIN_FACE` px count as none. Research use only (the model's iBUG 300-W licence).

    Args:
        batch_size: frames per batch.
    """

    def __init__(self, batch_size: int = 16) -> None:
        from pmfs.faces.dlib_detector import DlibLandmarks

        self.landmarks = DlibLandmarks(batch_size=batch_size)

    def __call__(self, frames: np.ndarray) -> Detections:
        track = self.landmarks.track(frames)
        return Detections(track.landmarks, track.faces, "the tracked one is used", track.reason())


def face_detector(name: ResolvedName, device: str = "cpu", batch_size: int = 16) -> FaceDetector:
    """The `FaceDetector` of a resolved `--detector` ("face-alignment" or "dlib")."""
    if name == "face-alignment":
        return FaceAlignmentFaces(device, batch_size)
    if name == "dlib":
        return DlibFaces(batch_size)
    raise ValueError(f"--detector {name} looks at no pixels; give the landmarks with --landmarks")


class LandmarkFileFaces:
    """Landmarks from a .npy file instead of a detector.

    Accepted shapes, in raw-frame pixels of the template file at its own frame rate (resampled
    to 25 fps like the frames): (N, 68, 2) — one face per frame, NaN rows where there is none
    (what `pmfs data synth --raw` and `--detector precomputed` use) — or (N, F, 68, 2) with up
    to F faces per frame, NaN-filled; the face with the largest bounding box is used. An image
    takes (68, 2), (1, 68, 2), (F, 68, 2) is read as F faces of one frame only via (1, F, 68, 2).

    Args:
        path: the .npy file.
        source_fps: frame rate of the video the rows belong to.
    """

    def __init__(self, path: str | Path, source_fps: float = VIDEO_FPS) -> None:
        self.path = Path(path)
        self.points = _load_landmark_file(self.path)  # (N, F, 68, 2)
        if round(source_fps) != VIDEO_FPS:
            self.points = self.points[resample_indices(len(self.points), source_fps)]

    def __call__(self, frames: np.ndarray) -> Detections:
        n = len(frames)
        if len(self.points) < n - 1:
            raise InferenceInputError(
                f"{self.path} has landmarks of {len(self.points)} frames (at 25 fps) but the "
                f"face video has {n}; give the file of this video"
            )
        points = self.points[:n]
        if len(points) < n:  # one frame short (rounding of the rate conversion): hold the last
            points = np.concatenate([points, points[-1:]])
        return largest_faces(points)


def _load_landmark_file(path: Path) -> np.ndarray:
    """(N, F, 68, 2) float32 of a landmark file (see `LandmarkFileFaces`)."""
    if not path.is_file():
        raise FileNotFoundError(f"landmark file not found: {path}")
    try:
        points = np.load(path).astype(np.float32)
    except (OSError, ValueError) as exc:
        raise InferenceInputError(f"cannot read the landmark file {path}: {exc}") from exc
    if points.shape == (68, 2):
        points = points[None]
    if points.ndim == 3 and points.shape[1:] == (68, 2):
        points = points[:, None]
    if points.ndim != 4 or points.shape[2:] != (68, 2) or len(points) == 0:
        raise InferenceInputError(
            f"{path} has shape {points.shape}; expected (N, 68, 2) or (N, F, 68, 2) pixels"
        )
    return points


def largest_faces(points: np.ndarray) -> Detections:
    """Keep the face with the largest landmark bounding box in each frame.

    Args:
        points: (M, F, 68, 2) float32 pixels, a face of NaN where there is none.

    Returns:
        The chosen faces (NaN rows for frames with none) and the count of faces per frame.
    """
    present = ~np.isnan(points).reshape(*points.shape[:2], -1).any(axis=2)  # (M, F)
    filled = np.where(present[..., None, None], points, 0.0)
    size = filled.max(axis=2) - filled.min(axis=2)  # (M, F, 2)
    area = np.where(present, size[..., 0] * size[..., 1], -1.0)
    best = area.argmax(axis=1)  # (M,)
    chosen = points[np.arange(len(points)), best].copy()
    chosen[~present.any(axis=1)] = np.nan
    return Detections(chosen.astype(np.float32), present.sum(axis=1).astype(np.int64))


@dataclass
class FaceTrack:
    """The face of every template frame.

    Attributes:
        landmarks: (M, 68, 2) float32 raw-frame pixels, no NaN (gaps filled), smoothed.
        passthrough: (M,) bool frames whose face was lost for longer than `max_gap` frames: they
            are written unchanged.
        missing: frames without a detected face (interpolated + passed through).
        multi_face: frames where more than one face was found.
        rule: which face is used where there are several.
        reason: why frames have no face, when the detector says (one line), else None.
    """

    landmarks: np.ndarray
    passthrough: np.ndarray
    missing: int
    multi_face: int
    rule: str = "the largest one is used"
    reason: str | None = None


def track_faces(
    detections: Detections, source: Path, max_gap: int = 8, smooth_window: int = 5
) -> FaceTrack:
    """Fill gaps and smooth a template's detections, with the preprocessor's functions.

    Every gap is interpolated (`fill_gaps`) so the chain sees a continuous pose; frames in gaps
    longer than `max_gap` are marked to be passed through.

    Raises:
        NoFaceError: no frame has a face (with the detector's reason when it gives one).
    """
    missing = missing_frames(detections.landmarks)
    try:
        filled, _ = fill_gaps(detections.landmarks, max_gap=len(missing))
    except LandmarkGapError as exc:
        why = f" ({detections.reason})" if detections.reason else ""
        raise NoFaceError(
            f"no face found in any of the {len(missing)} frames of {source}{why}; give a video "
            "or image where the face is visible, or its landmarks with --landmarks"
        ) from exc
    return FaceTrack(
        landmarks=smooth(filled, smooth_window),
        passthrough=_long_runs(missing, max_gap),
        missing=int(missing.sum()),
        multi_face=int((detections.faces > 1).sum()),
        rule=detections.rule,
        reason=detections.reason,
    )


def _long_runs(mask: np.ndarray, max_len: int) -> np.ndarray:
    """(N,) bool: the elements of runs of True longer than `max_len`."""
    out = np.zeros_like(mask)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start > max_len:
            out[start:stop] = True
    return out


def detect_faces(
    template: Template,
    options: InferenceOptions,
    landmarks: str | Path | None = None,
    detector: FaceDetector | None = None,
) -> Detections:
    """The raw detections of every template frame (the costly part of tracking): from
    `landmarks` (a .npy), `detector`, or the detector `options.detector` names (`auto` resolved
    by `pmfs.faces.detect.resolve_detector`).

    Every detector here is causal (a frame's detection depends on it and the frames before it;
    dlib's tracking runs forward), so the detections of a template's first M frames are the
    first M detections of a longer template: `pmfs infer --batch` detects a face shared by
    several jobs once, for the longest of them.
    """
    if landmarks is not None:
        detector = LandmarkFileFaces(landmarks, template.source_fps)
    elif detector is None:
        from pmfs.faces.detect import resolve_detector

        name = resolve_detector(options.detector).name
        detector = face_detector(name, str(resolve_device(options.device)), options.batch_size)
    return detector(template.frames)


def track_template(
    detections: Detections, template: Template, options: InferenceOptions
) -> FaceTrack:
    """`track_faces` of a template's detections (`options.max_gap`, `options.smooth_window`).

    Logs how many frames had no face (interpolated / passed through, and why when the detector
    says) and how many several.

    Raises:
        NoFaceError: no frame has a face.
    """
    track = track_faces(detections, template.source, options.max_gap, options.smooth_window)
    if track.missing:
        passed = int(track.passthrough.sum())
        log.warning(
            "%d of %d template frames have no face: %d interpolated, %d passed through unchanged%s",
            track.missing,
            template.num_frames,
            track.missing - passed,
            passed,
            f" ({track.reason})" if track.reason else "",
        )
    if track.multi_face:
        log.warning(
            "%d of %d template frames show more than one face; %s",
            track.multi_face,
            template.num_frames,
            track.rule,
        )
    return track


def detect_template(
    template: Template,
    options: InferenceOptions,
    landmarks: str | Path | None = None,
    detector: FaceDetector | None = None,
) -> FaceTrack:
    """The face track of a template: `detect_faces`, then `track_template`."""
    return track_template(detect_faces(template, options, landmarks, detector), template, options)
