"""Head motion, blinks, gaze and brow flashes of a clip, and the projection to pixels.

Head pose is smooth random motion (a few slow sinusoids plus filtered noise) with nods and brow
flashes locked to the speech's pitch accents, scaled and biased by the emotion. Points in the
head frame (face units, see `face.py`) are rotated about a pivot inside the head (yaw, pitch,
roll), projected orthographically and placed in the raw frame; body-frame points only follow a
damped share of the head's translation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmfs.audio import VIDEO_FPS
from pmfs.data.synth.articulation import ArticulatoryTrack
from pmfs.data.synth.emotion import EmotionStyle
from pmfs.data.synth.seeds import smooth

PIVOT = np.array([0.0, 0.55, -1.0])
"""Centre of head rotation in face units (inside the head, behind the eyes)."""


@dataclass
class HeadMotion:
    """Per-frame pose and eye/brow state of a clip of N frames.

    Attributes:
        yaw: (N,) radians, + turns the face toward the image's right.
        pitch: (N,) radians, + tilts the chin down.
        roll: (N,) radians, + rotates clockwise in the image.
        shift: (N, 2) head translation in pixels.
        scale: (N,) head scale factor (toward/away from the camera).
        body_shift: (N, 2) body translation in pixels.
        blink: (N,) eyelid closure 0–1.
        gaze: (N, 2) iris offset as a fraction of the eye's half width / half height.
        brow_flash: (N,) brow raise in face units.
    """

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    body_shift: np.ndarray
    blink: np.ndarray
    gaze: np.ndarray
    brow_flash: np.ndarray


@dataclass(frozen=True)
class Placement:
    """Where the head sits in the raw frame.

    Attributes:
        origin: (x, y) pixel position of the face-unit origin (between the eyes) at rest.
        unit: pixels per face unit.
    """

    origin: tuple[float, float]
    unit: float


def _wander(rng: np.random.Generator, times: np.ndarray, amplitude: float) -> np.ndarray:
    """Slow random motion: three sinusoids (0.08–0.6 Hz) plus smoothed noise, ~unit RMS × amp."""
    out = np.zeros(times.shape, dtype=np.float64)
    for _ in range(3):
        freq, phase = rng.uniform(0.08, 0.6), rng.uniform(0.0, 2 * np.pi)
        out += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * freq * times + phase)
    out += smooth(rng.standard_normal(int(times.shape[0])), 0.3 * VIDEO_FPS) * 2.0
    return amplitude * out / 1.2


def _accents(track: ArticulatoryTrack, times: np.ndarray) -> np.ndarray:
    """(N,) 0–1 strength of pitch accents: f0 above the clip's median while speaking."""
    f0 = track.sample(times, "f0")
    loud = track.sample(times, "loudness")
    rise = np.clip((f0 / np.median(track.f0) - 1.0) * 4.0, 0.0, 1.0) * (loud > 0.2)
    return smooth(rise, 0.08 * VIDEO_FPS)


def sample_blinks(rng: np.random.Generator, times: np.ndarray, rate: float) -> np.ndarray:
    """(N,) eyelid closure: blinks about every 3.5 s / rate (fast close, slower opening)."""
    closure = np.zeros_like(times)
    t = float(rng.uniform(0.2, 2.5)) / rate
    while t < times[-1] + 0.5:
        width = np.where(times < t, 0.035, 0.075)
        closure = np.maximum(closure, np.exp(-0.5 * ((times - t) / width) ** 2))
        t += max(0.8, float(rng.exponential(3.5 / rate)))
    return np.clip(closure * 1.08, 0.0, 1.0)


def sample_gaze(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """(N, 2) gaze offsets: fixations near the camera with saccades every 0.6–2.5 s."""
    gaze = np.zeros((times.shape[0], 2))
    t = 0.0
    target = rng.normal(0.0, [0.12, 0.06])
    while t < times[-1] + 0.04:
        gaze[times >= t] = target
        t += float(rng.uniform(0.6, 2.5))
        target = np.clip(rng.normal(0.0, [0.18, 0.08]), -0.35, 0.3)
    return gaze


def sample_motion(
    rng: np.random.Generator,
    track: ArticulatoryTrack,
    num_frames: int,
    style: EmotionStyle,
    size: int,
) -> HeadMotion:
    """The head motion, blinks and gaze of a clip of `num_frames` video frames.

    Args:
        rng: random generator.
        track: the clip's articulatory tracks (for accent-locked nods and brow flashes).
        num_frames: N.
        style: the clip's emotion style (head-motion gain, head pitch, blink rate).
        size: crop side in pixels (translations scale with it).

    Returns:
        The clip's `HeadMotion`.
    """
    times = np.arange(num_frames) / VIDEO_FPS
    gain = style.head_motion
    accents = _accents(track, times)
    deg = np.pi / 180.0
    yaw = _wander(rng, times, 2.5 * gain) * deg
    pitch = (_wander(rng, times, 1.8 * gain) + style.head_pitch + 2.0 * gain * accents) * deg
    roll = _wander(rng, times, 1.4 * gain) * deg
    shift = np.stack([_wander(rng, times, 0.006 * size * gain) for _ in range(2)], axis=1)
    scale = 1.0 + _wander(rng, times, 0.008 * gain)
    body = 0.35 * shift + np.stack([_wander(rng, times, 0.003 * size) for _ in range(2)], axis=1)
    return HeadMotion(
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        shift=shift,
        scale=scale,
        body_shift=body,
        blink=sample_blinks(rng, times, style.blink_rate),
        gaze=sample_gaze(rng, times),
        brow_flash=0.035 * accents * max(0.4, gain),
    )


def rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotation matrices R = R_roll · R_pitch · R_yaw (x right, y down, z to camera)."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    r_yaw = np.stack(
        [
            np.stack([cy, zero, sy], -1),
            np.stack([zero, one, zero], -1),
            np.stack([-sy, zero, cy], -1),
        ],
        -2,
    )
    r_pitch = np.stack(
        [
            np.stack([one, zero, zero], -1),
            np.stack([zero, cp, sp], -1),
            np.stack([zero, -sp, cp], -1),
        ],
        -2,
    )
    r_roll = np.stack(
        [
            np.stack([cr, -sr, zero], -1),
            np.stack([sr, cr, zero], -1),
            np.stack([zero, zero, one], -1),
        ],
        -2,
    )
    return r_roll @ r_pitch @ r_yaw


def project_head(points: np.ndarray, motion: HeadMotion, placement: Placement) -> np.ndarray:
    """Pixel positions of head-frame points.

    Args:
        points: (N, P, 3) or (P, 3) points in face units.
        motion: the clip's motion (N frames).
        placement: head origin and scale in the raw frame.

    Returns:
        (N, P, 2) float64 `(x, y)` pixel coordinates of the raw frame.
    """
    n = motion.yaw.shape[0]
    points = np.broadcast_to(points, (n, *points.shape[-2:]))
    rot = rotation(motion.yaw, motion.pitch, motion.roll)  # (N, 3, 3)
    turned = np.einsum("nij,npj->npi", rot, points - PIVOT) + PIVOT  # (N, P, 3)
    unit = placement.unit * motion.scale[:, None, None]
    return np.asarray(placement.origin) + unit * turned[..., :2] + motion.shift[:, None, :]


def project_body(points: np.ndarray, motion: HeadMotion, placement: Placement) -> np.ndarray:
    """(N, K, 2) pixel positions of body-frame points (K, 2) in face units."""
    base = np.asarray(placement.origin) + placement.unit * points  # (K, 2)
    return base[None] + motion.body_shift[:, None, :]
