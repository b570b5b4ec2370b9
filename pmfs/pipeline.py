"""Inference library of `pmfs infer`: a target face (video or image) + speech → a talking face.

Steps, each a function here (the CLI in `pmfs.infer` only parses and reports):

1. `load_template`: the target's frames at 25 fps in their original resolution (an image is one
   frame), decoding no more frames than the output needs.
2. A `FaceDetector` gives each frame's 68 landmarks (raw-frame pixels, pixel-index convention)
   and how many faces it saw: `FaceAlignmentFaces` (face-alignment, batched, the preprocessor's
   detector) or `LandmarkFileFaces` (a .npy of the user's or of `pmfs data synth --raw`).
3. `track_faces`: frames without a face are interpolated (gaps up to `max_gap` frames) or
   passed through unchanged (longer gaps), then the track is smoothed: the preprocessor's own
   `fill_gaps` and `smooth`.
4. The preprocessor's stable square crop (`stable_box`, `crop_frame`, `points_to_crop`) at the
   model's image size; `playback_indices` plays the template forward and backward (or trims it)
   to the audio's length; `build_clip_inputs` picks K references spread over mouth opening.
5. `iter_generated`: the whole chain (`PMFS.predict_clip_landmarks`, then the renderer with the
   references encoded once) chunk by chunk; `paste_back` puts each generated face into its
   original-resolution frame through a feathered mask of the region the renderer generates (its
   hidden lower face, `paste_masks`); everything else keeps the original pixels.
6. `write_video` muxes the audio (H.264 + AAC, 25 fps, atomic).

`run_inference` chains them.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, load_audio, mel_windows, num_video_frames
from pmfs.batch import EMOTIONS
from pmfs.checkpoints import data_config, load_model, resolve_device
from pmfs.clip import ClipInputs, spread_reference_indices
from pmfs.data.preprocess.crop import (
    CropBox,
    LandmarkGapError,
    crop_frame,
    fill_gaps,
    missing_frames,
    points_to_crop,
    smooth,
    stable_box,
)
from pmfs.data.preprocess.detect import FaceAlignmentDetector, select_face
from pmfs.data.preprocess.settings import PreprocessSettings
from pmfs.landmarks import mouth_opening, pixels_to_normalized
from pmfs.masks import TargetMask, target_mask
from pmfs.stages.system import PMFS
from pmfs.video import iter_frames, probe_video, resample_indices, write_video

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
"""Face inputs read as a single image (animated)."""
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".flv", ".webm", ".mpg", ".mpeg", ".ts")
"""Face inputs read as a template video (any frame rate and size; resampled to 25 fps)."""


class InferenceInputError(ValueError):
    """An input of `pmfs infer` that cannot be used (the message names the file and the fix)."""


class NoFaceError(InferenceInputError):
    """No face was found in any frame of the target."""


# --------------------------------------------------------------------------------------------
# Template
# --------------------------------------------------------------------------------------------


@dataclass
class Template:
    """The target face's frames.

    Attributes:
        frames: (M, H, W, 3) uint8 RGB frames at 25 fps in the original resolution (M = 1 for
            an image).
        source: the file they come from.
        is_image: True for a still image, animated by the audio.
        source_fps: frame rate of the file (25 for an image), for landmark files.
    """

    frames: np.ndarray
    source: Path
    is_image: bool
    source_fps: float = float(VIDEO_FPS)

    @property
    def num_frames(self) -> int:
        """M."""
        return int(self.frames.shape[0])


def load_template(path: str | Path, max_frames: int | None = None) -> Template:
    """Read the target face: an image, or the first `max_frames` frames of a video at 25 fps.

    Args:
        path: an image (`IMAGE_SUFFIXES`) or a video (`VIDEO_SUFFIXES`).
        max_frames: decode at most this many frames (None: the whole video). The output never
            needs more frames than the audio has, so callers pass that count.

    Raises:
        FileNotFoundError: `path` does not exist.
        InferenceInputError: unknown suffix, or an unreadable/empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"face file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return Template(_read_image(path)[None], path, is_image=True)
    if suffix not in VIDEO_SUFFIXES:
        raise InferenceInputError(
            f"{path}: unknown face format {suffix!r}; give a video "
            f"({', '.join(VIDEO_SUFFIXES)}) or an image ({', '.join(IMAGE_SUFFIXES)})"
        )
    try:
        fps = probe_video(path).fps
        frames = list(itertools.islice(iter_frames(path, VIDEO_FPS), max_frames))
    except ValueError as exc:  # VideoError: corrupt, truncated, 0 bytes, no video stream
        raise InferenceInputError(f"cannot read the face video {path}: {exc}") from exc
    if not frames:
        raise InferenceInputError(f"{path} has no decodable video frame; re-export it")
    return Template(np.stack(frames), path, is_image=False, source_fps=fps)


def _read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (alpha dropped, greyscale expanded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise InferenceInputError(f"cannot read the face image {path}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


@dataclass
class Detections:
    """Landmarks of the face used in each frame, and how many faces each frame had.

    Attributes:
        landmarks: (M, 68, 2) float32 raw-frame pixels (x, y), NaN rows where no face was found.
        faces: (M,) int64 number of faces found (the largest one is used).
    """

    landmarks: np.ndarray
    faces: np.ndarray


class FaceDetector(Protocol):
    """Anything that finds the faces of a batch of frames."""

    def __call__(self, frames: np.ndarray) -> Detections:
        """Detect faces in (M, H, W, 3) uint8 RGB frames; keep the largest face of each frame."""
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


# --------------------------------------------------------------------------------------------
# Tracking, crop, clip
# --------------------------------------------------------------------------------------------


@dataclass
class FaceTrack:
    """The face of every template frame.

    Attributes:
        landmarks: (M, 68, 2) float32 raw-frame pixels, no NaN (gaps filled), smoothed.
        passthrough: (M,) bool frames whose face was lost for longer than `max_gap` frames: they
            are written unchanged.
        missing: frames without a detected face (interpolated + passed through).
        multi_face: frames where more than one face was found.
    """

    landmarks: np.ndarray
    passthrough: np.ndarray
    missing: int
    multi_face: int


def track_faces(
    detections: Detections, source: Path, max_gap: int = 8, smooth_window: int = 5
) -> FaceTrack:
    """Fill gaps and smooth a template's detections, with the preprocessor's functions.

    Every gap is interpolated (`fill_gaps`) so the chain sees a continuous pose; frames in gaps
    longer than `max_gap` are marked to be passed through.

    Raises:
        NoFaceError: no frame has a face.
    """
    missing = missing_frames(detections.landmarks)
    try:
        filled, _ = fill_gaps(detections.landmarks, max_gap=len(missing))
    except LandmarkGapError as exc:
        raise NoFaceError(
            f"no face found in any of the {len(missing)} frames of {source}; give a video or "
            "image where the face is visible, or its landmarks with --landmarks"
        ) from exc
    return FaceTrack(
        landmarks=smooth(filled, smooth_window),
        passthrough=_long_runs(missing, max_gap),
        missing=int(missing.sum()),
        multi_face=int((detections.faces > 1).sum()),
    )


def _long_runs(mask: np.ndarray, max_len: int) -> np.ndarray:
    """(N,) bool: the elements of runs of True longer than `max_len`."""
    out = np.zeros_like(mask)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start > max_len:
            out[start:stop] = True
    return out


def crop_box(track: FaceTrack, scale: float | None = None, shift: float | None = None) -> CropBox:
    """The stable square crop of the template, placed as preprocessing places it.

    Args:
        track: the template's faces.
        scale: crop side / face size; None: preprocessing's default (`PreprocessSettings`).
        shift: downward shift of the crop centre in face sizes; None: preprocessing's default.
    """
    defaults = PreprocessSettings()
    scale = defaults.crop_scale if scale is None else scale
    shift = defaults.crop_shift if shift is None else shift
    return stable_box(track.landmarks, scale, shift)


def playback_indices(template_frames: int, num_frames: int) -> np.ndarray:
    """Template frame of each output frame: forward, then backward, … (ping-pong), or trimmed.

    Args:
        template_frames: M ≥ 1.
        num_frames: N output frames.

    Returns:
        (N,) int64 indices into the template: 0, 1, …, M−1, M−2, …, 0, 1, … (M = 1: all 0).
    """
    if template_frames <= 1:
        return np.zeros(num_frames, dtype=np.int64)
    period = 2 * (template_frames - 1)
    phase = np.arange(num_frames, dtype=np.int64) % period
    return np.where(phase < template_frames, phase, period - phase)


def build_clip_inputs(
    template: Template,
    track: FaceTrack,
    box: CropBox,
    audio: np.ndarray,
    size: int,
    num_references: int = 3,
    emotion: int | None = None,
    level: int | None = None,
) -> tuple[ClipInputs, np.ndarray]:
    """The cropped clip the model runs on, one frame per 25 fps frame of the audio.

    References: K template frames spread over mouth opening, or the image itself K times.

    Args:
        template: the target's frames; track: their faces; box: the crop.
        audio: (A,) float32 16 kHz mono.
        size: the model's image size.

    Returns:
        The clip (CPU tensors; landmarks normalized over the crop) and the (N,) template index
        of each output frame.
    """
    n = num_video_frames(len(audio))
    order = playback_indices(template.num_frames, n)
    crops = np.stack([crop_frame(f, box, size) for f in template.frames])  # (M, S, S, 3)
    frames = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0  # (M, 3, S, S)
    points = pixels_to_normalized(points_to_crop(track.landmarks, box, size), size)  # (M, 68, 2)
    landmarks = torch.from_numpy(points).float()
    refs = spread_reference_indices(mouth_opening(points), num_references)
    index = torch.from_numpy(order)
    clip = ClipInputs(
        mel=torch.from_numpy(mel_windows(audio, n)).float(),
        frames=frames[index],
        landmarks=landmarks[index],
        ref_frames=frames[refs],
        ref_landmarks=landmarks[refs],
        emotion=emotion,
        level=level,
        audio=audio,
    )
    return clip, order


# --------------------------------------------------------------------------------------------
# Generation and paste-back
# --------------------------------------------------------------------------------------------


def iter_generated(
    model: PMFS, clip: ClipInputs, chunk: int = 16
) -> Iterator[tuple[Tensor, Tensor]]:
    """The whole chain over a clip, chunk by chunk (for a progress bar and bounded output).

    The same computation as `PMFS.generate_clip`: landmarks of every frame from the audio, then
    the renderer on T-frame sketch windows with the references encoded once.

    Args:
        model: a `pmfs.PMFS` in eval mode, on the clip's device.
        clip: the clip.
        chunk: frames per renderer pass.

    Yields:
        Per chunk: (c, 3, S, S) float32 [0, 1] generated frames and the (c, 68, 2) normalized
        landmarks they were drawn from.
    """
    landmarks = model.predict_clip_landmarks(clip)  # both run without autograd
    start = 0
    for frames, _ in model.renderer.iter_clip(clip, landmarks, window=model.window, chunk=chunk):
        yield frames, landmarks[start : start + len(frames)]
        start += len(frames)


def paste_masks(
    generated: Tensor,
    template: Tensor,
    size: int,
    kind: TargetMask = "lower_half",
    margin: float = 0.1,
) -> Tensor:
    """Where the generated crop replaces the template: the region the renderer generates.

    That is the renderer's hidden region (`pmfs.masks.target_mask`: the part of the target it
    never sees, so the part that follows the audio) of both the generated and the template
    landmarks (the jaw may move), with a feathered edge. The rest of the face — eyes, brows,
    the upper face the renderer only reconstructs — keeps the original frame's pixels, at the
    original resolution.

    Args:
        generated: (c, 68, 2) normalized landmarks of the generated frames.
        template: (c, 68, 2) normalized landmarks of the template frames.
        size: S.
        kind: the renderer's `target_mask`.
        margin: the renderer's `mask_margin`.

    Returns:
        (c, 1, S, S) float32 in [0, 1].
    """
    feather = max(2.0, size / 32)
    return torch.maximum(
        target_mask(generated, size, kind, margin, feather=feather),
        target_mask(template, size, kind, margin, feather=feather),
    )


def paste_back(frame: np.ndarray, face: Tensor, mask: Tensor, box: CropBox) -> np.ndarray:
    """Put a generated crop back into its original frame (the inverse of `crop_frame`).

    The crop and its mask are resized from S × S to the box's side (bilinear,
    `align_corners=False`, the pixel-centre mapping of `points_to_crop`) and blended into the
    part of the box inside the frame; pixels where the mask is 0 are left exactly as they were.

    Args:
        frame: (H, W, 3) uint8 RGB original frame.
        face: (3, S, S) float32 [0, 1] generated crop.
        mask: (1, S, S) float32 [0, 1] blend weight of the generated crop.
        box: the crop box in `frame`'s pixels.

    Returns:
        (H, W, 3) uint8, a new array.
    """
    h, w = frame.shape[:2]
    x0, y0 = max(box.x0, 0), max(box.y0, 0)
    x1, y1 = min(box.x0 + box.side, w), min(box.y0 + box.side, h)
    out = frame.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    stack = torch.cat([face, mask]).float().cpu()[None]  # (1, 4, S, S)
    big = F.interpolate(stack, size=(box.side, box.side), mode="bilinear", align_corners=False)
    big = big[0, :, y0 - box.y0 : y1 - box.y0, x0 - box.x0 : x1 - box.x0]  # (4, h', w')
    region = torch.from_numpy(np.array(frame[y0:y1, x0:x1])).permute(2, 0, 1).float() / 255.0
    alpha = big[3:].clamp(0, 1)
    blended = ((region + alpha * (big[:3].clamp(0, 1) - region)) * 255).round()
    pixels = blended.clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    keep = (alpha[0] <= 0).numpy()[..., None]
    out[y0:y1, x0:x1] = np.where(keep, frame[y0:y1, x0:x1], pixels)
    return out


def iter_output_frames(
    model: PMFS,
    clip: ClipInputs,
    template: Template,
    track: FaceTrack,
    box: CropBox,
    order: np.ndarray,
    *,
    chunk: int = 16,
    progress: bool = False,
) -> Iterator[np.ndarray]:
    """The output video's frames: each generated face pasted into its template frame.

    Args:
        model: the PMFS system, on the clip's device.
        clip: from `build_clip_inputs`; order: its (N,) template index of each output frame.
        template, track, box: the target's frames, faces and crop.
        chunk: frames per renderer pass.
        progress: show a progress bar (frames).

    Yields:
        (H, W, 3) uint8 RGB frames in the template's resolution; frames whose face was lost for
        long (`FaceTrack.passthrough`) are the template frames unchanged.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=clip.num_frames, unit="frame", desc="pmfs infer", disable=not progress)
    kind, margin = model.renderer.target_mask, model.renderer.mask_margin
    start = 0
    try:
        for faces, landmarks in iter_generated(model, clip, chunk):
            n = len(faces)
            pose = clip.landmarks[start : start + n].to(landmarks.device)
            masks = paste_masks(landmarks, pose, clip.size, kind, margin).cpu()
            for k, i in enumerate(order[start : start + n].tolist()):
                frame = template.frames[i]
                yield frame if track.passthrough[i] else paste_back(frame, faces[k], masks[k], box)
            start += n
            bar.update(n)
    finally:
        bar.close()


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InferenceOptions:
    """Settings of one `pmfs infer` run.

    Attributes:
        num_references: K reference frames (None: the checkpoint's `num_references`, else 3).
        device: "cpu", "cuda", "cuda:1" or "auto" (a GPU when there is one).
        template_frames: use only the first frames of the template video (it is then played
            forward and backward); None: as many as the audio needs.
        duration: use only the first `duration` seconds of the audio (a quick preview);
            None: all of it.
        max_gap: longest run of frames without a face that is interpolated; longer runs are
            passed through unchanged.
        smooth_window: Savitzky–Golay window of the landmark track (frames).
        chunk: frames per renderer pass.
        batch_size: frames per face-alignment batch.
        crop_scale: crop side / face size (None: preprocessing's default); use the value the
            model's training data was cropped with (`pmfs data preprocess --crop-scale`).
        crop_shift: downward shift of the crop centre in face sizes (None: the default).
        emotion: index into `pmfs.batch.EMOTIONS` (None: unconditioned).
        level: index into `pmfs.batch.LEVELS`.
        crf: H.264 quality of the output.
        progress: show a progress bar.
    """

    num_references: int | None = None
    device: str = "auto"
    template_frames: int | None = None
    duration: float | None = None
    max_gap: int = 8
    smooth_window: int = 5
    chunk: int = 16
    batch_size: int = 16
    crop_scale: float | None = None
    crop_shift: float | None = None
    emotion: int | None = None
    level: int | None = None
    crf: int = 18
    progress: bool = True


@dataclass
class InferenceResult:
    """What `run_inference` did.

    Attributes:
        out: the video written.
        frames: output frames (25 fps, the audio's length).
        template_frames: template frames used (1 for an image).
        size: (height, width) of the output, the template's.
        missing: template frames without a detected face.
        passed_through: template frames written unchanged (face lost longer than `max_gap`).
        multi_face: template frames with more than one face (the largest was used).
        box: the crop in template pixels.
        seconds: wall time.
    """

    out: Path
    frames: int
    template_frames: int
    size: tuple[int, int]
    missing: int
    passed_through: int
    multi_face: int
    box: CropBox
    seconds: float


def load_system(ckpt: str | Path, device: torch.device) -> tuple[PMFS, dict[str, Any]]:
    """The `PMFS` system of a `pmfs fit` checkpoint, in eval mode on `device`, and its data
    config (`image_size`, `num_references`, ...)."""
    model = load_model(ckpt, map_location=device)
    if not isinstance(model, PMFS):
        raise InferenceInputError(
            f"{ckpt} holds a {type(model).__name__}, not the whole chain; `pmfs infer` needs a "
            "checkpoint of pmfs.PMFS (e.g. from `pmfs fit -c experiments/full.yaml`)"
        )
    return model, data_config(ckpt)


def emotion_labels(
    model: PMFS, emotion: int | None, level: int | None
) -> tuple[int | None, int | None]:
    """The (emotion, level) indices to run with: a model trained with emotion labels gets
    "neutral", level 1 unless told otherwise; one trained without gets none."""
    if not getattr(model.audio_to_mouth.network, "use_emotion", False):
        if emotion is not None or level is not None:
            log.warning("this checkpoint was trained without emotion labels; --emotion ignored")
        return None, None
    if emotion is None:
        log.info("no --emotion given: using neutral")
    neutral = EMOTIONS.index("neutral")
    return (neutral if emotion is None else emotion), (0 if level is None else level)


def read_speech(path: str | Path) -> np.ndarray:
    """(A,) float32 16 kHz mono audio of any format, rate and channel count (silence allowed:
    the mouth then stays closed). `EmptyAudioError` for a file of 0 seconds."""
    audio = load_audio(path, SAMPLE_RATE, allow_silent=True)
    log.info(
        "audio %s: %.2f s, %d frames at 25 fps",
        path,
        len(audio) / SAMPLE_RATE,
        num_video_frames(len(audio)),
    )
    return audio


def detect_template(
    template: Template,
    options: InferenceOptions,
    landmarks: str | Path | None = None,
    detector: FaceDetector | None = None,
) -> FaceTrack:
    """The face track of a template: from `landmarks` (a .npy), `detector`, or face-alignment.

    Logs how many frames had no face (interpolated / passed through) and how many several.
    """
    if landmarks is not None:
        detector = LandmarkFileFaces(landmarks, template.source_fps)
    elif detector is None:
        detector = FaceAlignmentFaces(str(resolve_device(options.device)), options.batch_size)
    track = track_faces(
        detector(template.frames), template.source, options.max_gap, options.smooth_window
    )
    if track.missing:
        passed = int(track.passthrough.sum())
        log.warning(
            "%d of %d template frames have no face: %d interpolated, %d passed through unchanged",
            track.missing,
            template.num_frames,
            track.missing - passed,
            passed,
        )
    if track.multi_face:
        log.warning(
            "%d of %d template frames show more than one face; the largest one is used",
            track.multi_face,
            template.num_frames,
        )
    return track


def run_inference(
    ckpt: str | Path,
    audio_path: str | Path,
    face_path: str | Path,
    out: str | Path,
    options: InferenceOptions | None = None,
    *,
    landmarks: str | Path | None = None,
    detector: FaceDetector | None = None,
) -> InferenceResult:
    """Audio + a target face → a talking-face mp4 (H.264 + AAC, 25 fps, the audio's length).

    Args:
        ckpt: a `pmfs fit` checkpoint of `pmfs.PMFS`.
        audio_path: speech in any format (wav, mp3, m4a, a video's track, ...).
        face_path: the target: a video (played forward and backward, or trimmed, to the audio's
            length) or an image (animated).
        out: the .mp4 to write (atomically).
        options: the run's settings.
        landmarks: a .npy of the template's landmarks instead of detecting them.
        detector: a face detector instead of face-alignment.

    Raises:
        FileNotFoundError, InferenceInputError, NoFaceError, pmfs.audio.AudioError: bad inputs,
            with a message naming the file.
    """
    options = options or InferenceOptions()
    began = time.perf_counter()
    audio = read_speech(audio_path)
    if options.duration is not None:
        audio = audio[: max(1, round(options.duration * SAMPLE_RATE))]
    n = num_video_frames(len(audio))
    limit = n if options.template_frames is None else min(n, options.template_frames)
    template = load_template(face_path, max_frames=limit)
    device = resolve_device(options.device)
    model, data = load_system(ckpt, device)
    track = detect_template(template, options, landmarks, detector)
    box = crop_box(track, options.crop_scale, options.crop_shift)
    k = options.num_references or int(data.get("num_references", 3))
    size = int(data.get("image_size", 256))
    labels = emotion_labels(model, options.emotion, options.level)
    clip, order = build_clip_inputs(template, track, box, audio, size, k, *labels)
    frames = iter_output_frames(
        model,
        clip.to(device),
        template,
        track,
        box,
        order,
        chunk=options.chunk,
        progress=options.progress,
    )
    write_video(out, frames, VIDEO_FPS, audio, SAMPLE_RATE, crf=options.crf)
    return InferenceResult(
        out=Path(out),
        frames=n,
        template_frames=template.num_frames,
        size=(int(template.frames.shape[1]), int(template.frames.shape[2])),
        missing=track.missing,
        passed_through=int(track.passthrough.sum()),
        multi_face=track.multi_face,
        box=box,
        seconds=time.perf_counter() - began,
    )
