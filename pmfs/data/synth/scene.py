"""A clip's geometry: the speaker's rig animated by the tracks and motion, projected to pixels.

`animate_clip` returns `ClipShapes`: per frame, the 68 landmarks and every outline the renderer
fills (hair, ears, neck, shoulders, teeth, irises), all in pixel coordinates of the raw frame.
`ClipShapes.frame(i, offset)` gives one frame's shapes relative to a viewport (the crop box or
the whole raw frame) for `render.draw_person`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmfs.audio import VIDEO_FPS
from pmfs.data.synth.articulation import ArticulatoryTrack
from pmfs.data.synth.emotion import EmotionStyle
from pmfs.data.synth.face import (
    JAW_RANGE,
    FaceRig,
    articulate,
    build_rig,
    close_eyes,
    raise_brows,
)
from pmfs.data.synth.motion import HeadMotion, Placement, project_body, project_head
from pmfs.data.synth.speaker import Speaker


@dataclass
class FrameShapes:
    """One frame's shapes in pixels of a viewport.

    Attributes:
        landmarks: (68, 2) `(x, y)`.
        head: named (K, 2) outlines that move with the head.
        body: named (K, 2) outlines of the body.
        iris: (2, 2) iris centres (subject's right eye first).
        iris_radius: iris radius in pixels.
        unit: pixels per face unit in this frame.
    """

    landmarks: np.ndarray
    head: dict[str, np.ndarray]
    body: dict[str, np.ndarray]
    iris: np.ndarray
    iris_radius: float
    unit: float


@dataclass
class ClipShapes:
    """Every frame's shapes in pixels of the raw frame (N frames).

    Attributes:
        landmarks: (N, 68, 2) float64.
        head: named (N, K, 2) head outlines.
        body: named (N, K, 2) body outlines.
        iris: (N, 2, 2) iris centres.
        iris_radius: (N,) iris radius in pixels.
        unit: (N,) pixels per face unit.
    """

    landmarks: np.ndarray
    head: dict[str, np.ndarray]
    body: dict[str, np.ndarray]
    iris: np.ndarray
    iris_radius: np.ndarray
    unit: np.ndarray

    @property
    def num_frames(self) -> int:
        """N."""
        return int(self.landmarks.shape[0])

    def frame(self, index: int, offset: tuple[int, int] = (0, 0)) -> FrameShapes:
        """Frame `index` with `offset` = (x0, y0) of the viewport subtracted from every point."""
        shift = np.asarray(offset, dtype=np.float64)
        return FrameShapes(
            landmarks=self.landmarks[index] - shift,
            head={name: pts[index] - shift for name, pts in self.head.items()},
            body={name: pts[index] - shift for name, pts in self.body.items()},
            iris=self.iris[index] - shift,
            iris_radius=float(self.iris_radius[index]),
            unit=float(self.unit[index]),
        )


def _teeth(rig: FaceRig, drop: np.ndarray) -> dict[str, np.ndarray]:
    """Upper teeth (fixed to the skull) and lower teeth (moving with the jaw): (N, K, 3) each."""
    lm = rig.landmarks
    line = lm[62, 1]
    half = 0.5 * abs(lm[64, 0] - lm[60, 0]) * 0.92
    x = np.linspace(-half, half, 9)
    bow = 1.0 - (x / half) ** 2
    z = np.full_like(x, lm[62, 2] - 0.04)
    upper = np.concatenate(
        [
            np.stack([x, np.full_like(x, line - 0.14), z], axis=1),
            np.stack([x, line + 0.012 + 0.018 * bow, z], axis=1)[::-1],
        ]
    )
    top = line + 0.07 + 0.03 * (1 - bow)  # (9,)
    lower_rest = np.concatenate(
        [
            np.stack([x * 0.85, top, z], axis=1),
            np.stack([x * 0.85, top + 0.16, z], axis=1)[::-1],
        ]
    )
    lower = np.repeat(lower_rest[None], drop.shape[0], axis=0)
    lower[:, :, 1] += 0.85 * drop[:, None]
    n = drop.shape[0]
    return {"teeth_upper": np.repeat(upper[None], n, axis=0), "teeth_lower": lower}


def _iris_centres(rig: FaceRig, gaze: np.ndarray) -> tuple[np.ndarray, float]:
    """(N, 2, 3) iris centres in face units and the iris radius in face units."""
    centres, widths = [], []
    for eye in (np.arange(36, 42), np.arange(42, 48)):
        pts = rig.landmarks[eye]
        corner_mid = 0.5 * (pts[0] + pts[3])
        centre = np.array([corner_mid[0], pts[:, 1].mean() - 0.004, corner_mid[2] + 0.03])
        width = float(np.linalg.norm(pts[3, :2] - pts[0, :2]))
        height = float(pts[[4, 5], 1].mean() - pts[[1, 2], 1].mean())
        offset = np.stack([gaze[:, 0] * 0.5 * width * 0.55, gaze[:, 1] * 0.5 * height], axis=1)
        centres.append(centre[None, :2] + offset)
        widths.append(width)
    xy = np.stack(centres, axis=1)  # (N, 2, 2)
    z = np.full((*xy.shape[:2], 1), float(rig.landmarks[37, 2] + 0.03))
    return np.concatenate([xy, z], axis=2), 0.21 * float(np.mean(widths))


def animate_clip(
    speaker: Speaker,
    style: EmotionStyle,
    track: ArticulatoryTrack,
    motion: HeadMotion,
    placement: Placement,
) -> ClipShapes:
    """Animate and project a speaker's face for every frame of a clip.

    Args:
        speaker: the speaker.
        style: the clip's emotion style.
        track: the utterance's articulatory tracks (sampled at the video frame times).
        motion: head pose, blinks, gaze and brow flashes (N frames).
        placement: head position and scale in the raw frame.

    Returns:
        The clip's shapes in raw-frame pixels.
    """
    n = motion.yaw.shape[0]
    times = np.arange(n) / VIDEO_FPS
    jaw = track.sample(times, "jaw")
    rig = build_rig(speaker, style)
    points = articulate(
        rig.landmarks, jaw, track.sample(times, "rounding"), track.sample(times, "closure")
    )
    close_eyes(points, motion.blink)
    raise_brows(points, motion.brow_flash)
    dynamic = _teeth(rig, JAW_RANGE * jaw)
    iris, iris_radius = _iris_centres(rig, motion.gaze)
    dynamic["iris"] = iris
    head = {name: project_head(pts, motion, placement) for name, pts in rig.head.items()}
    head.update({name: project_head(pts, motion, placement) for name, pts in dynamic.items()})
    unit = placement.unit * motion.scale
    return ClipShapes(
        landmarks=project_head(points, motion, placement),
        head={k: v for k, v in head.items() if k != "iris"},
        body={name: project_body(pts, motion, placement) for name, pts in rig.body.items()},
        iris=head["iris"],
        iris_radius=iris_radius * unit,
        unit=unit,
    )
