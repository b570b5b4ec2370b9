"""The whole `pmfs infer` run: a checkpoint + speech + a target face → a talking-face mp4.

`run_inference` chains the steps: `read_speech`, `load_template` (`pmfs.inference.template`),
`LoadedModel.load` (the checkpoint, and the face detector, built once), `TargetFace.detect`
(`detect_faces`, `pmfs.inference.tracking`), then `render_video`: the track and crop of the
frames this audio needs (`TargetFace.track`), `build_clip_inputs` (`pmfs.inference.crop`), then
`iter_output_frames`: the whole chain
(`iter_generated`: `PMFS.predict_clip_landmarks`, then the renderer with the references encoded
once) chunk by chunk, each generated face pasted back into its template frame; `write_video`
muxes the audio (H.264 + AAC, 25 fps, atomic).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
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
from pmfs.inference.tracking import (
    Detections,
    FaceDetector,
    FaceTrack,
    detect_faces,
    face_detector,
    track_template,
)
from pmfs.stages.system import PMFS
from pmfs.video_writer import write_video

log = logging.getLogger(__name__)


def iter_generated(
    model: PMFS, clip: ClipInputs, chunk: int = 16, options: InferenceOptions | None = None
) -> Iterator[tuple[Tensor, Tensor]]:
    """The whole chain over a clip, chunk by chunk (for a progress bar and bounded output).

    `PMFS.generate_clip`'s computation with the landmarks post-processed as `pmfs evaluate`
    does (`pmfs.inference.temporal.generated_landmarks`): landmarks of every frame from the
    audio, smoothed over time and closed in silence, then the renderer on T-frame sketch
    windows with the references encoded once.

    Args:
        model: a `pmfs.PMFS` in eval mode, on the clip's device.
        clip: the clip.
        chunk: frames per renderer pass.
        options: the run's settings; their `TemporalOptions` are used (None: the defaults).

    Yields:
        Per chunk: (c, 3, S, S) float32 [0, 1] generated frames and the (c, 68, 2) normalized
        landmarks they were drawn from.
    """
    from pmfs.inference.temporal import generated_landmarks

    # the landmark stages and `iter_clip` run without autograd
    landmarks = generated_landmarks(model, clip, options or InferenceOptions())
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
    options: InferenceOptions | None = None,
) -> Iterator[np.ndarray]:
    """The output video's frames: each generated face pasted into its template frame.

    Args:
        model: the PMFS system, on the clip's device.
        clip: from `build_clip_inputs`; order: its (N,) template index of each output frame.
        template, track, box: the target's frames, faces and crop.
        chunk: frames per renderer pass.
        progress: show a progress bar (frames).
        options: the run's settings, for their `TemporalOptions` (None: the defaults).

    Yields:
        (H, W, 3) uint8 RGB frames in the template's resolution; frames whose face was lost for
        long (`FaceTrack.passthrough`) are the template frames unchanged.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=clip.num_frames, unit="frame", desc="pmfs infer", disable=not progress)
    start = 0
    try:
        for faces, landmarks in iter_generated(model, clip, chunk, options):
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
    """What one run (`run_inference`, `render_video`) did.

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


def cut_speech(audio: np.ndarray, options: InferenceOptions) -> np.ndarray:
    """The first `options.duration` seconds of (A,) audio (all of it when None)."""
    if options.duration is None:
        return audio
    return audio[: max(1, round(options.duration * SAMPLE_RATE))]


def frames_needed(num_samples: int, options: InferenceOptions) -> tuple[int, int]:
    """(N, M): the output frames of `num_samples` of 16 kHz audio, and the template frames
    they use (at most N, at most `options.template_frames`)."""
    n = num_video_frames(num_samples)
    return n, n if options.template_frames is None else min(n, options.template_frames)


@dataclass
class LoadedModel:
    """A checkpoint loaded once for any number of runs, and the face detector they share.

    Attributes:
        model: the `PMFS` system in eval mode on `device`.
        data: the checkpoint's data config (`image_size`, `num_references`, ...).
        device: where it runs.
    """

    model: PMFS
    data: dict[str, Any]
    device: torch.device
    _detector: tuple[FaceDetector, str] | None = field(default=None, repr=False)

    @classmethod
    def load(cls, ckpt: str | Path, device: str = "auto") -> LoadedModel:
        """Load a `pmfs fit` checkpoint of `pmfs.PMFS` on `device` ("auto": a GPU if any)."""
        where = resolve_device(device)
        model, data = load_system(ckpt, where)
        return cls(model, data, where)

    def detector(self, options: InferenceOptions) -> tuple[FaceDetector, str]:
        """The detector `options.detector` names and the line saying which and why; built once,
        from the options of the first call (a batch shares its detector settings)."""
        if self._detector is None:
            from pmfs.faces.detect import resolve_detector

            choice = resolve_detector(options.detector)
            built = face_detector(choice.name, str(self.device), options.batch_size)
            self._detector = built, choice.line
        return self._detector

    def clip_settings(self, options: InferenceOptions) -> tuple[int, int]:
        """(S, K): the crop size and reference count of a run (the options, else the ckpt's)."""
        size = options.size or int(self.data.get("image_size", 256))
        return size, options.num_references or int(self.data.get("num_references", 3))


@dataclass
class TargetFace:
    """A target face read and detected once; each run takes the frames it needs from it.

    Attributes:
        template: its first L frames (L: what the longest run needs).
        detections: the raw detections of those frames (`detect_faces`: (L, 68, 2) landmarks
            in pixels, NaN where no face, and (L,) face counts).
        detector: the line saying where the landmarks came from.
    """

    template: Template
    detections: Detections
    detector: str

    @classmethod
    def detect(
        cls,
        template: Template,
        options: InferenceOptions,
        loaded: LoadedModel,
        landmarks: str | Path | None = None,
        detector: FaceDetector | None = None,
    ) -> TargetFace:
        """Detect the faces of `template` with a landmark file, `detector`, or the loaded
        model's detector (`options.detector`)."""
        if landmarks is not None:
            line = f"landmarks: {landmarks} (--landmarks)"
        elif detector is not None:
            line = f"landmark detector: {type(detector).__name__} (given)"
        else:
            detector, line = loaded.detector(options)
        log.info("%s", line)
        return cls(template, detect_faces(template, options, landmarks, detector), line)

    def track(self, frames: int, options: InferenceOptions) -> tuple[Template, FaceTrack, CropBox]:
        """The first `frames` template frames (fewer if the face is shorter), their track and
        crop: exactly what a run that read only those frames would get (detection is causal;
        gap filling, smoothing and the crop use those frames only).

        Raises:
            NoFaceError: no face in any of them.
        """
        m = min(frames, self.template.num_frames)
        template = replace(self.template, frames=self.template.frames[:m])
        d = self.detections
        head = Detections(d.landmarks[:m], d.faces[:m], d.rule, d.reason)
        track = track_template(head, template, options)
        return template, track, crop_box(track, options.crop_scale, options.crop_shift)


def render_video(
    loaded: LoadedModel,
    audio: np.ndarray,
    face: TargetFace,
    out: str | Path,
    options: InferenceOptions,
) -> InferenceResult:
    """One output video: `audio` (already cut by `cut_speech`) drives `face`.

    Args:
        loaded: the model.
        audio: (A,) float32 16 kHz mono.
        face: the target, detected for at least this run's template frames.
        out: the .mp4 to write (atomically).
        options: the run's settings.
    """
    began = time.perf_counter()
    n, limit = frames_needed(len(audio), options)
    template, track, box = face.track(limit, options)
    size, k = loaded.clip_settings(options)
    labels = emotion_labels(loaded.model, options.emotion, options.level)
    clip, order = build_clip_inputs(template, track, box, audio, size, k, *labels)
    frames = iter_output_frames(
        loaded.model,
        clip.to(loaded.device),
        template,
        track,
        box,
        order,
        chunk=options.chunk,
        progress=options.progress,
        options=options,
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
        detector=face.detector,
    )


def run_inference(
    ckpt: str | Path | LoadedModel,
    audio_path: str | Path,
    face_path: str | Path,
    out: str | Path,
    options: InferenceOptions | None = None,
    *,
    landmarks: str | Path | None = None,
    detector: FaceDetector | None = None,
) -> InferenceResult:
    """Audio + a target face → a talking-face mp4 (H.264 + AAC, 25 fps, the audio's length).

    The inputs are read before the model is loaded, so a bad file fails fast.

    Args:
        ckpt: a `pmfs fit` checkpoint of `pmfs.PMFS`, or one already loaded (`pmfs app`).
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
    audio = cut_speech(read_speech(audio_path), options)
    template = load_template(face_path, max_frames=frames_needed(len(audio), options)[1])
    loaded = ckpt if isinstance(ckpt, LoadedModel) else LoadedModel.load(ckpt, options.device)
    face = TargetFace.detect(template, options, loaded, landmarks, detector)
    result = render_video(loaded, audio, face, out, options)
    return replace(result, seconds=time.perf_counter() - began)
