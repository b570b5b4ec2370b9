"""The whole `pmfs infer` run: a checkpoint + speech + a target face → a talking-face mp4.

`run_inference` chains the steps: `read_speech`, `load_template` (`pmfs.inference.template`),
`load_system`, `detect_template` (`pmfs.inference.tracking`), `crop_box` and
`build_clip_inputs` (`pmfs.inference.crop`), then `iter_output_frames`: the whole chain
(`iter_generated`: `PMFS.predict_clip_landmarks`, then the renderer with the references encoded
once) chunk by chunk, each generated face pasted back into its template frame; `write_video`
muxes the audio (H.264 + AAC, 25 fps, atomic).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, load_audio, num_video_frames
from pmfs.batch import EMOTIONS, LEVELS
from pmfs.checkpoints import data_config, load_model, resolve_device
from pmfs.clip import ClipInputs
from pmfs.faces.crop import CropBox
from pmfs.inference.crop import build_clip_inputs, crop_box, paste_back, paste_masks
from pmfs.inference.options import InferenceOptions
from pmfs.inference.template import InferenceInputError, Template, load_template
from pmfs.inference.tracking import FaceDetector, FaceTrack, detect_template, face_detector
from pmfs.stages.system import PMFS
from pmfs.video_writer import write_video

log = logging.getLogger(__name__)


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
    start = 0
    try:
        for faces, landmarks in iter_generated(model, clip, chunk):
            n = len(faces)
            pose = clip.landmarks[start : start + n].to(landmarks.device)
            masks = paste_masks(landmarks, pose, clip.size).cpu()
            for k, i in enumerate(order[start : start + n].tolist()):
                frame = template.frames[i]
                yield frame if track.passthrough[i] else paste_back(frame, faces[k], masks[k], box)
            start += n
            bar.update(n)
    finally:
        bar.close()


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
        detector: the one line saying where the landmarks came from (which detector and why).
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
    detector: str = ""


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
    model: PMFS, emotion: str | None, level: int | None
) -> tuple[int | None, int | None]:
    """The (emotion, level) indices to run with: a model trained with emotion labels gets
    "neutral", level 1 unless told otherwise; one trained without gets none.

    Args:
        model: the system.
        emotion: a name of `pmfs.batch.EMOTIONS`, or None.
        level: a level of `pmfs.batch.LEVELS` (1–3), or None.

    Returns:
        Indices into `EMOTIONS` and `LEVELS` (the batch contract's labels), or (None, None).
    """
    if not getattr(model.audio_to_mouth.network, "use_emotion", False):
        if emotion is not None or level is not None:
            log.warning("this checkpoint was trained without emotion labels; --emotion ignored")
        return None, None
    if emotion is None:
        log.info("no --emotion given: using neutral")
    emotion = "neutral" if emotion is None else emotion
    level = LEVELS[0] if level is None else level
    return EMOTIONS.index(emotion), LEVELS.index(level)


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
        detector: a face detector instead of the one `options.detector` names.

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
    detector, line = _detector(options, device, landmarks, detector)
    log.info("%s", line)
    track = detect_template(template, options, landmarks, detector)
    box = crop_box(track, options.crop_scale, options.crop_shift)
    k = options.num_references or int(data.get("num_references", 3))
    size = options.size or int(data.get("image_size", 256))
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
        detector=line,
    )


def _detector(
    options: InferenceOptions,
    device: torch.device,
    landmarks: str | Path | None,
    detector: FaceDetector | None,
) -> tuple[FaceDetector | None, str]:
    """The detector of a run (None: the landmark file) and the line saying which and why."""
    from pmfs.faces.detect import resolve_detector

    if landmarks is not None:
        return None, f"landmarks: {landmarks} (--landmarks)"
    if detector is not None:
        return detector, f"landmark detector: {type(detector).__name__} (given)"
    choice = resolve_detector(options.detector)
    return face_detector(choice.name, str(device), options.batch_size), choice.line
