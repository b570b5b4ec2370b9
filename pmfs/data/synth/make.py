"""One synthetic clip, a pure function of (master seed, speaker index, clip id).

A clip: an utterance of 2–4 s (articulatory track → formant speech at 16 kHz), head motion,
blinks and gaze, the speaker's animated face rendered on a per-clip background into a raw frame
wider than the crop; the crop (S×S, 1:1 scale) and its exact landmarks, foreground masks, audio
and mel go to the cache (`generate.py` writes them); with `raw=True` the raw frames are returned
too, for the MEAD layout (`raw.py`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, mel
from pmfs.data.cache_writer import ClipData
from pmfs.data.synth.articulation import ArticulatoryTrack, Prosody, sample_articulation
from pmfs.data.synth.background import make_background
from pmfs.data.synth.emotion import EmotionStyle, emotion_style
from pmfs.data.synth.motion import Placement, sample_motion
from pmfs.data.synth.raster import Canvas
from pmfs.data.synth.render import draw_person
from pmfs.data.synth.scene import ClipShapes, animate_clip
from pmfs.data.synth.seeds import derive_rng
from pmfs.data.synth.speaker import Speaker, sample_speaker
from pmfs.data.synth.speech import synthesize

GENERATOR_VERSION = 1
"""Bumped whenever the content of a clip changes for the same settings."""
EYE_LINE = 0.40
"""Height of the eye line in the crop at rest, as a fraction of the crop side."""


@dataclass(frozen=True)
class ClipPlan:
    """One clip to make.

    Attributes:
        speaker_index: 0-based speaker index.
        speaker: speaker id.
        emotion: one of `EMOTIONS`.
        level: MEAD level 1–3.
        index: 1-based index among the speaker's clips of this emotion and level.
    """

    speaker_index: int
    speaker: str
    emotion: str
    level: int
    index: int

    @property
    def clip(self) -> str:
        """The clip id, "{speaker}_{emotion}_{level}_{index:03d}"."""
        return f"{self.speaker}_{self.emotion}_{self.level}_{self.index:03d}"


def raw_frame_size(size: int) -> tuple[int, int]:
    """(height, width) of the raw frames for crops of `size`: about 1.25 S × 1.75 S, even."""
    return 16 * -(-5 * size // 64), 16 * -(-7 * size // 64)


@dataclass
class SynthClip:
    """One generated clip.

    Attributes:
        data: what goes to the cache (crop frames, crop landmarks, masks, audio, mel, meta).
        raw_frames: (N, H, W, 3) uint8 raw frames, or None when not asked for.
        raw_landmarks: (N, 68, 2) float32 landmarks of the raw frames.
        speaker: the speaker as lit in this clip (its palette holds the rendered colours).
    """

    data: ClipData
    raw_frames: np.ndarray | None
    raw_landmarks: np.ndarray
    speaker: Speaker


def _render(
    shapes: ClipShapes,
    speaker: Speaker,
    style: EmotionStyle,
    background: np.ndarray,
    offset: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Render every frame over `background`, a viewport of the raw frame.

    Args:
        shapes: the clip's shapes in raw-frame pixels.
        speaker: the speaker (as lit in this clip).
        style: the clip's emotion style.
        background: (H, W, 3) float32 background of the viewport.
        offset: (x0, y0) of the viewport in the raw frame.

    Returns:
        (N, H, W, 3) uint8 frames and (N, H, W) uint8 person masks.
    """
    n = shapes.num_frames
    frames = np.empty((n, *background.shape), dtype=np.uint8)
    masks = np.empty((n, *background.shape[:2]), dtype=np.uint8)
    for i in range(n):
        canvas = Canvas(background)
        draw_person(canvas, shapes.frame(i, offset), speaker, style)
        frames[i], masks[i] = canvas.to_uint8()
    return frames, masks


def _place(
    rng: np.random.Generator, speaker: Speaker, size: int
) -> tuple[tuple[int, int], Placement]:
    """A random crop box corner (x0, y0) in the raw frame and the head's placement in it.

    The head sits centred in the crop with its eye line at `EYE_LINE`, ± a small jitter.
    """
    height, width = raw_frame_size(size)
    crop = (int(rng.integers(0, width - size + 1)), int(rng.integers(0, height - size + 1)))
    jitter = rng.uniform(-1.0, 1.0, 2) * np.array([0.02, 0.015]) * size
    origin = (crop[0] + 0.5 * size + jitter[0], crop[1] + EYE_LINE * size + jitter[1])
    return crop, Placement(origin, speaker.face_scale * size)


def _pictures(
    shapes: ClipShapes,
    speaker: Speaker,
    style: EmotionStyle,
    background: np.ndarray,
    crop: tuple[int, int],
    size: int,
    raw: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Crop frames (N, S, S, 3), crop masks (N, S, S) and, when `raw`, the raw frames.

    Without `raw` only the crop is rendered (the raw frame's pixels outside it are not needed).
    """
    x0, y0 = crop
    if not raw:
        viewport = background[y0 : y0 + size, x0 : x0 + size]
        frames, masks = _render(shapes, speaker, style, viewport, crop)
        return frames, masks, None
    raw_frames, raw_masks = _render(shapes, speaker, style, background, (0, 0))
    frames = np.ascontiguousarray(raw_frames[:, y0 : y0 + size, x0 : x0 + size])
    masks = np.ascontiguousarray(raw_masks[:, y0 : y0 + size, x0 : x0 + size])
    return frames, masks, raw_frames


def _meta(
    speaker: Speaker,
    track: ArticulatoryTrack,
    num_frames: int,
    crop: tuple[int, int],
    size: int,
    raw_hw: tuple[int, int],
    seed: int,
) -> dict[str, Any]:
    """JSON-able metadata of a clip: crop box, raw size, speaker, phones and articulators."""
    times = np.arange(num_frames) / VIDEO_FPS
    articulators = {
        name: [round(float(v), 4) for v in track.sample(times, name)]
        for name in ("jaw", "rounding", "closure")
    }
    return {
        "fps": VIDEO_FPS,
        "size": size,
        "source": "pmfs-synth",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "crop_box": [crop[0], crop[1], size, size],
        "raw_size": [raw_hw[1], raw_hw[0]],
        "speaker": {
            "sex": speaker.sex,
            "hair_style": speaker.hair_style,
            "f0": round(speaker.voice.f0, 2),
            "formant_scale": round(speaker.voice.formant_scale, 4),
        },
        "phones": [[s.phone, round(s.start, 4), round(s.end, 4)] for s in track.segments],
        "articulators": articulators,
    }


def make_clip(
    plan: ClipPlan, seed: int, size: int, seconds: tuple[float, float], raw: bool = False
) -> SynthClip:
    """Generate one clip (a pure function of its arguments).

    Args:
        plan: which clip.
        seed: master seed.
        size: crop side S.
        seconds: (min, max) clip length in seconds.
        raw: also return the full raw frames.

    Returns:
        The clip's cache data and raw landmarks (and raw frames when `raw`).
    """
    rng = derive_rng(seed, "clip", plan.clip)
    speaker = sample_speaker(seed, plan.speaker_index)
    style = emotion_style(plan.emotion, plan.level)
    num_frames = max(1, round(float(rng.uniform(*seconds)) * VIDEO_FPS))
    # Lighting differs a little between recordings: exposure ±7 %, white balance ±3 %.
    gain = rng.uniform(0.93, 1.07) * rng.uniform(0.97, 1.03, 3)
    speaker = dataclasses.replace(speaker, palette=speaker.palette.lit(gain))
    prosody = Prosody.from_style(speaker.voice.f0, speaker.voice.rate, style)
    track = sample_articulation(rng, num_frames / VIDEO_FPS, prosody)
    num_samples = num_frames * SAMPLE_RATE // VIDEO_FPS
    audio = synthesize(track, speaker.voice.with_emotion(style), rng, num_samples)
    motion = sample_motion(rng, track, num_frames, style, size)
    crop, placement = _place(rng, speaker, size)
    shapes = animate_clip(speaker, style, track, motion, placement)
    background = make_background(rng, *raw_frame_size(size))
    frames, masks, raw_frames = _pictures(shapes, speaker, style, background, crop, size, raw)
    data = ClipData(
        frames=frames,
        landmarks=(shapes.landmarks - np.array(crop)).astype(np.float32),
        fg_mask=masks,
        audio=audio,
        mel=mel(audio),
        meta=_meta(speaker, track, num_frames, crop, size, raw_frame_size(size), seed),
    )
    return SynthClip(data, raw_frames, shapes.landmarks.astype(np.float32), speaker)
