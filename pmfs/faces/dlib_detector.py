"""The dlib landmark backend: HOG faces on a reduced copy, one face tracked, 68 points at full size.

No download: `dlib-bin` (prebuilt dlib, Boost licence) brings the HOG face detector, and
`face-recognition-models` ships `shape_predictor_68_face_landmarks.dat` (iBUG 300-W point order,
`pmfs.landmarks`). **Licence**: that model was trained on iBUG 300-W, whose terms exclude
commercial use — the dlib path is for research only (`LICENCE`).

Per frame (`DlibLandmarks.track`, frames in batches of `batch_size`):

1. **Detect** on a copy reduced by the integer factor that brings the longest side to
   ≤ `max_side` px (box averaging: PIL `reduce`), HOG upsample 0; when that gives no usable face,
   again with upsample 1 (faces down to ~40 px of the reduced copy). Scores are the HOG margins of
   `detector.run(image, upsample, 0.0)`.
2. **Choose** (`choose_face`): faces whose box side at full resolution is under `min_face` px are
   too small for the 68-point model and count as no face (the frame is marked `too_small`). While
   a face is tracked (seen within the last `patience` frames) only a detection overlapping its
   last box (IoU ≥ `min_iou`) continues the track, whatever its score, so a second face entering
   the frame does not steal it; otherwise the highest-scoring face with a score ≥ `min_score` is
   taken. Measured: real faces score 1–3 (0.1–0.5 in a few turned-away frames of the talking-man
   sample, which the track keeps), while the false faces HOG finds on scikit-image's astronaut
   score 0.12 (upsample 1) to 0.30 (at 0.8× size).
3. **Fit** the 68 points with dlib's `shape_predictor` on the full-resolution frame, inside the
   box scaled back. dlib returns integer pixel positions (pixel-index convention: the centre of
   pixel i is at i), i.e. ±0.5 px of quantisation.

`DlibDetector` is the preprocessing `LandmarkDetector`; `pmfs.inference.tracking.DlibFaces` the
inference one. dlib is imported when a detector is built, never at import time.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from pmfs.faces import DLIB_LICENCE_NOTE
from pmfs.faces.crop import LandmarkGapError, missing_frames

if TYPE_CHECKING:
    from pmfs.data.preprocess.layouts import ClipJob

LICENCE = DLIB_LICENCE_NOTE
"""The licence line printed in `--help` and the README."""

MAX_SIDE = 640
"""Longest side of the copy the face detector sees (larger frames are reduced by an integer)."""
MIN_FACE = 64
"""Smallest face box side, in full-resolution pixels, that the 68-point model is fitted to."""
MIN_SCORE = 0.5
"""Lowest HOG score that starts a track (false faces measured at 0.12–0.30, real ones ≥ 1)."""
MIN_IOU = 0.3
"""Overlap with the tracked face's last box that a detection needs to continue the track."""
PATIENCE = 5
"""Frames a lost track is waited for before any other face may start a new one."""
HOG_WINDOW = 80
"""Side of dlib's HOG detection window: the smallest face found at upsample 0 (px)."""
MODEL_FILE = "shape_predictor_68_face_landmarks.dat"


class DlibModelError(FileNotFoundError):
    """dlib or its 68-point model is not installed."""


class FaceTooSmallError(LandmarkGapError):
    """Every face found in a clip is smaller than `MIN_FACE` px: a clip without a usable face."""


def model_path() -> Path:
    """The 68-point model file of `face-recognition-models`.

    Found through the package's location: `import face_recognition_models` itself fails with
    current setuptools (it needs `pkg_resources`).

    Raises:
        DlibModelError: dlib or the model package is not installed.
    """
    missing = [name for name in ("dlib", "face_recognition_models") if _find(name) is None]
    spec = _find("face_recognition_models")
    if not missing and spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILE
        if path.is_file():
            return path
        missing = [str(path)]
    raise DlibModelError(
        f"the dlib landmark backend needs {', '.join(missing)}: "
        "pip install dlib-bin face-recognition-models (pinned in constraints.txt)"
    )


def _find(name: str) -> Any:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


@dataclass(frozen=True)
class FaceBox:
    """A detected face: inclusive pixel bounds of the full-resolution frame and the HOG score."""

    left: float
    top: float
    right: float
    bottom: float
    score: float

    @property
    def side(self) -> float:
        """The box's larger side in pixels."""
        return max(self.right - self.left, self.bottom - self.top) + 1

    def iou(self, other: FaceBox) -> float:
        """Intersection over union of the two boxes (pixel areas)."""
        w = min(self.right, other.right) - max(self.left, other.left) + 1
        h = min(self.bottom, other.bottom) - max(self.top, other.top) + 1
        inter = max(w, 0) * max(h, 0)
        area = (self.right - self.left + 1) * (self.bottom - self.top + 1)
        area_other = (other.right - other.left + 1) * (other.bottom - other.top + 1)
        return float(inter / (area + area_other - inter))


def choose_face(
    faces: list[FaceBox],
    tracked: FaceBox | None,
    *,
    min_score: float = MIN_SCORE,
    min_iou: float = MIN_IOU,
) -> FaceBox | None:
    """The face of a frame: the one continuing the track, else the best one above `min_score`.

    Args:
        faces: the frame's detections that are large enough.
        tracked: the tracked face's last box while the track is alive, else None.
        min_score: lowest score of a face that starts a track.
        min_iou: overlap with `tracked` that continues the track.

    Returns:
        The chosen face, or None (no face in this frame).
    """
    if tracked is not None:
        overlap = [(face.iou(tracked), face) for face in faces]
        best = max(overlap, key=lambda pair: pair[0], default=None)
        return best[1] if best is not None and best[0] >= min_iou else None
    confident = [face for face in faces if face.score >= min_score]
    return max(confident, key=lambda face: face.score, default=None)


@dataclass
class DlibTrack:
    """The tracked face of each frame of a clip.

    Attributes:
        landmarks: (N, 68, 2) float32 (x, y) pixels of the frames, NaN rows without a face.
        faces: (N,) int64 faces seen per frame (the tracked one and others scoring ≥ `min_score`).
        boxes: (N, 5) float32 (left, top, right, bottom, score) of the tracked face, NaN rows.
        too_small: (N,) float32 side in px of the largest face that was too small to fit, in
            frames whose only faces were too small; NaN elsewhere.
        retries: frames that needed the upsample-1 pass.
        min_detectable: smallest face side (full-resolution px) HOG finds in these frames.
        min_face: the smallest face side fitted.
    """

    landmarks: np.ndarray
    faces: np.ndarray
    boxes: np.ndarray
    too_small: np.ndarray
    retries: int
    min_detectable: float
    min_face: int

    def reason(self) -> str | None:
        """Why the frames without a face have none, e.g. "3 with a face too small for the
        68-point model (largest 45 px, under 64 px)" (None when every frame has one)."""
        missing = missing_frames(self.landmarks)
        if not missing.any():
            return None
        small = ~np.isnan(self.too_small)
        parts = []
        if small.any():
            parts.append(
                f"{int(small.sum())} with a face too small for the 68-point model (largest "
                f"{np.nanmax(self.too_small):.0f} px, under {self.min_face} px)"
            )
        if (missing & ~small).any():
            parts.append(
                f"{int((missing & ~small).sum())} with no face found (faces under "
                f"~{self.min_detectable:.0f} px are not detected in these frames)"
            )
        return "; ".join(parts)


class DlibLandmarks:
    """dlib's HOG face detector and 68-point shape predictor, one face tracked over frames.

    Args:
        max_side: longest side of the copy the detector sees.
        min_face: smallest face box side (full-resolution px) fitted.
        min_score: lowest HOG score that starts a track.
        batch_size: frames detected and fitted per batch (bounds the memory of a stream).

    dlib's Python calls hold the GIL (measured: two threads on two detectors use one core) and
    one HOG detector must not serve two threads, so the parallelism is processes: the workers
    of `pmfs data preprocess --workers N`, one `DlibLandmarks` each.

    Raises:
        DlibModelError: dlib or its model is not installed.
    """

    def __init__(
        self,
        max_side: int = MAX_SIDE,
        min_face: int = MIN_FACE,
        min_score: float = MIN_SCORE,
        batch_size: int = 16,
    ) -> None:
        path = model_path()
        import dlib

        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()  # not thread-safe: one per process
        self.predictor = dlib.shape_predictor(str(path))
        self.max_side, self.min_face, self.min_score = max_side, min_face, min_score
        self.batch_size = max(1, int(batch_size))

    def factor(self, height: int, width: int) -> int:
        """The integer reduction of an (height, width) frame before detection (1: none)."""
        return max(1, math.ceil(max(height, width) / self.max_side))

    def detect(self, frame: np.ndarray, upsample: int) -> list[FaceBox]:
        """HOG faces of an (H, W, 3) uint8 RGB frame, in its full-resolution pixels.

        The frame is reduced by `factor` (box averaging); a reduced pixel i covers full pixels
        i·f … i·f + f − 1, so a box maps back to [l·f, (r + 1)·f − 1].
        """
        f = self.factor(*frame.shape[:2])
        small = np.asarray(Image.fromarray(frame).reduce(f)) if f > 1 else frame
        rects, scores, _ = self.detector.run(small, upsample, 0.0)
        return [
            FaceBox(r.left() * f, r.top() * f, (r.right() + 1) * f - 1, (r.bottom() + 1) * f - 1, s)
            for r, s in zip(rects, scores, strict=True)
        ]

    def fit(self, frame: np.ndarray, face: FaceBox) -> np.ndarray:
        """(68, 2) float32 (x, y) pixels: the shape predictor on the full frame inside `face`."""
        box = self._dlib.rectangle(
            round(face.left), round(face.top), round(face.right), round(face.bottom)
        )
        shape = self.predictor(np.ascontiguousarray(frame), box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def track(self, frames: Iterable[np.ndarray]) -> DlibTrack:
        """Detect, track and fit the face of every frame, `batch_size` frames at a time.

        Per batch: the upsample-0 detection of every frame, then the choice frame by frame in
        order (with the upsample-1 retry where needed), then the fit of every chosen face.

        Args:
            frames: (H, W, 3) uint8 RGB frames of one clip, in order (streamed).

        Returns:
            The track (NaN landmarks where no usable face was found).
        """
        state = _TrackState()
        iterator = iter(frames)
        f = 1
        while batch := list(itertools.islice(iterator, self.batch_size)):
            f = self.factor(*batch[0].shape[:2])
            found = [self.detect(frame, 0) for frame in batch]
            chosen = [
                self._choose(frame, faces, state) for frame, faces in zip(batch, found, strict=True)
            ]
            state.landmarks += map(self._fit_or_none, batch, chosen)
        return DlibTrack(
            landmarks=np.array(state.landmarks, np.float32).reshape(-1, 68, 2),
            faces=np.array(state.faces, np.int64),
            boxes=np.array(state.boxes, np.float32).reshape(-1, 5),
            too_small=np.array(state.too_small, np.float32),
            retries=state.retries,
            min_detectable=HOG_WINDOW / 2 * f,
            min_face=self.min_face,
        )

    def _choose(
        self, frame: np.ndarray, found: list[FaceBox], state: _TrackState
    ) -> FaceBox | None:
        """The face of one frame from its upsample-0 detections `found` (detecting again at
        upsample 1 when they hold no usable face); records the frame in `state`."""
        tracked = state.last if state.since_seen <= PATIENCE else None
        chosen = choose_face(self._large(found), tracked, min_score=self.min_score)
        if chosen is None:
            state.retries += 1
            found = self.detect(frame, 1)
            chosen = choose_face(self._large(found), tracked, min_score=self.min_score)
        others = [f for f in self._large(found) if f.score >= self.min_score]
        state.faces.append(len(others) + int(chosen is not None and chosen not in others))
        small = [face.side for face in found if face.side < self.min_face]
        if chosen is None:
            state.boxes.append([np.nan] * 5)
            state.too_small.append(max(small) if small else np.nan)
            state.since_seen += 1
        else:
            state.boxes.append([chosen.left, chosen.top, chosen.right, chosen.bottom, chosen.score])
            state.too_small.append(np.nan)
            state.last, state.since_seen = chosen, 0
        return chosen

    def _large(self, faces: list[FaceBox]) -> list[FaceBox]:
        """The faces large enough for the 68-point model."""
        return [face for face in faces if face.side >= self.min_face]

    def _fit_or_none(self, frame: np.ndarray, face: FaceBox | None) -> np.ndarray:
        """`fit`, or a (68, 2) NaN row for a frame without a face."""
        return np.full((68, 2), np.nan, np.float32) if face is None else self.fit(frame, face)


@dataclass
class _TrackState:
    """What `DlibLandmarks.track` carries from frame to frame."""

    last: FaceBox | None = None
    since_seen: int = PATIENCE + 1
    retries: int = 0

    def __post_init__(self) -> None:
        self.landmarks: list[np.ndarray] = []
        self.faces: list[int] = []
        self.boxes: list[list[float]] = []
        self.too_small: list[float] = []


class DlibDetector:
    """The preprocessing `LandmarkDetector` of `--detector dlib` (`DlibLandmarks` per clip).

    A clip in which no frame has a usable face raises `LandmarkGapError` ("no_face: …") or
    `FaceTooSmallError` ("face_too_small: …") with the reason, which becomes the clip's manifest
    reason; frames without a face are otherwise NaN rows, filled or rejected by `fill_gaps`.

    Args:
        batch_size: frames per batch.
    """

    def __init__(self, batch_size: int = 16) -> None:
        self.landmarks = DlibLandmarks(batch_size=batch_size)

    def __call__(self, frames: Iterable[np.ndarray], job: ClipJob, source_fps: float) -> np.ndarray:
        """(N, 68, 2) float32 raw-frame pixels of the clip's 25 fps frames, NaN rows."""
        track = self.landmarks.track(frames)
        n = len(track.landmarks)
        if n and missing_frames(track.landmarks).all():
            small = ~np.isnan(track.too_small)
            if small.any():
                raise FaceTooSmallError(
                    f"face_too_small: the face is at most {np.nanmax(track.too_small):.0f} px "
                    f"(in {int(small.sum())} of {n} frames), under the {track.min_face} px the "
                    "68-point model needs; use footage where the face is larger"
                )
            raise LandmarkGapError(
                f"no_face: no face found in any of the {n} frames (dlib HOG finds faces of "
                f"~{track.min_detectable:.0f} px and more in these frames)"
            )
        return track.landmarks
