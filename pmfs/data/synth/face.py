"""The synthetic face rig: speaker geometry, emotion and articulation → 3D points per frame.

Coordinates are *face units* in the head's frame: 1 = half the face width at landmarks 0/16;
origin between the eyes on the eye line; x to the image's right, y down, z toward the camera.
The neutral face is the dlib/iBUG 68-point mean shape that `pmfs.landmarks.TEMPLATE` is built
from (its left half, mirrored, with the mouth closed), given a depth profile so that small head
rotations look three-dimensional.

Per clip, a `FaceRig` holds the speaker's neutral landmarks (geometry and the emotion's static
displacements applied) and the extra outlines the renderer needs (forehead, hair, ears, neck,
shoulders). Per frame, `articulate` moves the mouth and jaw from the articulatory tracks, lids
from blinks, brows from pitch accents; `project` applies the head pose. The 68 projected points
are the landmarks written to the cache and the very vertices the renderer draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pmfs.data.synth.emotion import EmotionStyle
from pmfs.data.synth.speaker import Geometry, Speaker
from pmfs.landmarks import MIRROR_INDICES, NUM_LANDMARKS

# fmt: off
_HALF_FACE: dict[int, tuple[float, float, float]] = {
    # jaw line (0 → chin 8)
    0: (-1.000, 0.011, -0.75), 1: (-0.995, 0.277, -0.70), 2: (-0.969, 0.545, -0.60),
    3: (-0.916, 0.810, -0.48), 4: (-0.814, 1.056, -0.32), 5: (-0.656, 1.271, -0.15),
    6: (-0.462, 1.455, 0.00), 7: (-0.246, 1.605, 0.12), 8: (0.000, 1.648, 0.16),
    # right brow (image left), outer → inner
    17: (-0.793, -0.187, -0.10), 18: (-0.668, -0.285, 0.05), 19: (-0.500, -0.310, 0.12),
    20: (-0.328, -0.282, 0.16), 21: (-0.165, -0.213, 0.17),
    # nose bridge and base
    27: (0.000, -0.016, 0.10), 28: (0.000, 0.158, 0.22), 29: (0.000, 0.332, 0.36),
    30: (0.000, 0.510, 0.50), 31: (-0.194, 0.621, 0.25), 32: (-0.101, 0.659, 0.32),
    33: (0.000, 0.692, 0.36),
    # right eye: outer corner, upper lid, inner corner, lower lid
    36: (-0.595, -0.001, -0.08), 37: (-0.490, -0.061, 0.00), 38: (-0.363, -0.058, 0.02),
    39: (-0.255, 0.024, 0.00), 40: (-0.373, 0.048, 0.00), 41: (-0.497, 0.046, -0.02),
    # lips, closed: outer corner, upper outer, centre; lower outer; inner corner, inner
    48: (-0.390, 0.958, 0.12), 49: (-0.247, 0.905, 0.22), 50: (-0.100, 0.868, 0.27),
    51: (0.000, 0.885, 0.28), 57: (0.000, 1.095, 0.24), 58: (-0.110, 1.088, 0.22),
    59: (-0.250, 1.045, 0.18), 60: (-0.330, 0.962, 0.13), 61: (-0.105, 0.972, 0.24),
    62: (0.000, 0.975, 0.26), 66: (0.000, 0.975, 0.25), 67: (-0.105, 0.972, 0.23),
}
# fmt: on

# Landmark groups used by the deformations (iBUG indices).
_UPPER_OUTER = np.array([49, 50, 51, 52, 53])
_LOWER_OUTER = np.array([55, 56, 57, 58, 59])
_UPPER_INNER = np.array([61, 62, 63])
_LOWER_INNER = np.array([65, 66, 67])
_CORNERS = np.array([48, 54, 60, 64])
_LIPS = np.arange(48, 68)
_JAW_DROP_WEIGHT = {2: 0.04, 3: 0.15, 4: 0.33, 5: 0.55, 6: 0.75, 7: 0.92, 8: 1.0}

JAW_RANGE = 0.40
"""Chin drop (face units) at full jaw opening."""
LIP_PARTING = 0.92
"""Inner-lip gap per unit of chin drop when the lips are not closed."""


def _mirror(half: dict[int, tuple[float, float, float]]) -> np.ndarray:
    """(68, 3) points from the image-left half and the midline, mirrored onto the right."""
    points = np.full((NUM_LANDMARKS, 3), np.nan)
    for index, xyz in half.items():
        points[index] = xyz
    for index in range(NUM_LANDMARKS):
        if np.isnan(points[index, 0]):
            points[index] = points[MIRROR_INDICES[index]] * np.array([-1.0, 1.0, 1.0])
    return points


NEUTRAL_FACE = _mirror(_HALF_FACE)
"""(68, 3) the mean neutral face, mouth closed, in face units."""


def _symmetric_weights(weights: dict[int, float]) -> np.ndarray:
    out = np.zeros(NUM_LANDMARKS)
    for index, w in weights.items():
        out[index] = w
        out[MIRROR_INDICES[index]] = w
    return out


def _scale_about(
    points: np.ndarray, index: np.ndarray, centre: np.ndarray, sx: float, sy: float
) -> None:
    points[index, 0] = centre[0] + (points[index, 0] - centre[0]) * sx
    points[index, 1] = centre[1] + (points[index, 1] - centre[1]) * sy


def _shape_eyes(points: np.ndarray, g: Geometry) -> None:
    """Eye size, opening, tilt and spacing, brow height and arch (in place, mirror-symmetric)."""
    for eye, side in ((np.arange(36, 42), -1.0), (np.arange(42, 48), 1.0)):
        centre = points[eye, :2].mean(axis=0)
        _scale_about(points, eye, centre, g.eye_size, g.eye_size * g.eye_openness)
        # Rotate about the eye's centre so that its outer corner (on the `side`) goes up.
        c, s = np.cos(g.eye_tilt), -side * np.sin(g.eye_tilt)
        dx, dy = points[eye, 0] - centre[0], points[eye, 1] - centre[1]
        points[eye, 0] = centre[0] + c * dx - s * dy + side * g.eye_spacing
        points[eye, 1] = centre[1] + s * dx + c * dy
    for brow, side in ((np.arange(17, 22), -1.0), (np.arange(22, 27), 1.0)):
        points[brow, 0] += side * 0.7 * g.eye_spacing
        points[brow, 1] -= g.brow_height
    points[[19, 24], 1] -= g.brow_arch
    points[[18, 20, 23, 25], 1] -= 0.5 * g.brow_arch


EYE_OPENING = 1.15
"""Eye-opening factor over the mean shape, whose lid landmarks sit on the lash lines that the
renderer paints over the eye's white."""


def shape_face(g: Geometry) -> np.ndarray:
    """(68, 3) the neutral face of a speaker's geometry."""
    points = NEUTRAL_FACE.copy()
    for eye in (np.arange(36, 42), np.arange(42, 48)):
        centre = points[eye, 1].mean()
        points[eye, 1] = centre + (points[eye, 1] - centre) * EYE_OPENING
    below = points[:, 1] > 0
    points[below, 1] *= g.face_length
    jaw_w = _symmetric_weights({2: 0.3, 3: 0.6, 4: 0.9, 5: 1.0, 6: 1.0, 7: 0.8})
    chin_w = _symmetric_weights({6: 0.6, 7: 1.0})
    points[:, 0] *= 1 + (g.jaw_width - 1) * jaw_w + (g.chin_width - 1) * chin_w
    _shape_eyes(points, g)
    nose = np.arange(28, 36)
    points[nose, 1] = points[27, 1] + (points[nose, 1] - points[27, 1]) * g.nose_length
    points[np.arange(31, 36), 0] *= g.nose_width
    points[_LIPS, 0] *= g.mouth_width
    points[_LIPS, 1] += g.mouth_drop
    line = points[62, 1]
    points[_UPPER_OUTER, 1] = line + (points[_UPPER_OUTER, 1] - line) * g.upper_lip
    points[_LOWER_OUTER, 1] = line + (points[_LOWER_OUTER, 1] - line) * g.lower_lip
    return points


def apply_emotion(points: np.ndarray, style: EmotionStyle) -> np.ndarray:
    """(68, 3) a neutral face with an emotion's static displacements (FACS-like, see emotion.py)."""
    p = points.copy()
    outer_w = np.array([1.0, 0.75, 0.45, 0.2, 0.0])
    inner_w = outer_w[::-1]
    for brow, side in ((np.arange(17, 22), -1.0), (np.arange(22, 27), 1.0)):
        w_out, w_in = (outer_w, inner_w) if side < 0 else (inner_w, outer_w)
        p[brow, 1] -= style.outer_brow * w_out + style.inner_brow * w_in + 0.3 * style.upper_lid
        p[brow, 0] -= side * style.brow_squeeze * w_in
    p[[37, 38, 43, 44], 1] -= style.upper_lid
    p[[40, 41, 46, 47], 1] -= style.lower_lid
    centre_x = p[62, 0]
    p[_LIPS, 0] = centre_x + (p[_LIPS, 0] - centre_x) * (1 + style.mouth_stretch)
    p[_CORNERS, 1] -= style.mouth_corner
    p[[49, 53, 55, 59], 1] -= 0.45 * style.mouth_corner
    p[[61, 63, 65, 67], 1] -= 0.3 * style.mouth_corner
    p[[54, 64], 1] -= style.mouth_asymmetry
    p[[54, 64], 0] += 0.4 * style.mouth_asymmetry
    p[[53, 55, 63, 65], 1] -= 0.4 * style.mouth_asymmetry
    p[_UPPER_OUTER, 1] -= style.upper_lip_raise * np.array([0.5, 1.0, 1.0, 1.0, 0.5])
    p[_UPPER_INNER, 1] -= style.upper_lip_raise * np.array([0.6, 0.8, 0.6])
    for outer, inner in (
        (_UPPER_OUTER, [60, 61, 61, 63, 64]),
        (_LOWER_OUTER, [64, 65, 66, 67, 60]),
    ):
        p[outer, 1] += (p[inner, 1] - p[outer, 1]) * 0.45 * style.lip_press
    p[31:36, 1] -= style.nose_wrinkle
    p[[29, 30], 1] -= 0.5 * style.nose_wrinkle
    return p


def articulate(
    neutral: np.ndarray,
    jaw: np.ndarray,
    rounding: np.ndarray,
    closure: np.ndarray,
    jaw_gain: float = 1.0,
) -> np.ndarray:
    """Landmarks of each frame with the jaw and lips moved by the articulators.

    The chin drops by `JAW_RANGE · jaw` (the jaw line follows with weights falling toward the
    ears); the inner lips part by `LIP_PARTING · drop · (1 - closure)`, the lower lip taking 80 %
    of the gap; rounding narrows (spreading widens) the mouth and protrudes and thickens the lips.

    Args:
        neutral: (68, 3) the speaker's face with the clip's emotion.
        jaw: (N,) jaw opening 0–1.
        rounding: (N,) lip rounding -1–1.
        closure: (N,) lip closure 0–1.
        jaw_gain: the speaker's jaw range factor.

    Returns:
        (N, 68, 3) points.
    """
    n = jaw.shape[0]
    p = np.repeat(neutral[None], n, axis=0)
    drop = JAW_RANGE * jaw_gain * jaw  # (N,)
    p[:, :, 1] += drop[:, None] * _symmetric_weights(_JAW_DROP_WEIGHT)[None, :]
    p[:, 3:14, 0] *= 1.0 - 0.04 * jaw[:, None]
    gap = LIP_PARTING * drop * (1.0 - closure)
    rounded = np.maximum(rounding, 0.0)[:, None]
    spread = np.maximum(-rounding, 0.0)[:, None]
    side = 0.88 + 0.08 * rounded
    lower = 0.8 * gap[:, None]
    upper = -0.2 * gap[:, None]
    p[:, [66], 1] += lower
    p[:, [65, 67], 1] += lower * side
    p[:, [62], 1] += upper
    p[:, [61, 63], 1] += upper * side
    p[:, _LOWER_OUTER, 1] += lower * np.array([0.6, 0.9, 0.95, 0.9, 0.6])
    p[:, _UPPER_OUTER, 1] += upper * np.array([0.6, 0.85, 0.9, 0.85, 0.6])
    p[:, _CORNERS, 1] += 0.15 * gap[:, None]
    centre = neutral[62, 0]
    outer_w = 1.0 - 0.3 * rounded + 0.08 * spread - 0.08 * jaw[:, None]
    inner_w = 1.0 - 0.38 * rounded + 0.08 * spread - 0.08 * jaw[:, None]
    p[:, 48:60, 0] = centre + (p[:, 48:60, 0] - centre) * outer_w
    p[:, 60:68, 0] = centre + (p[:, 60:68, 0] - centre) * inner_w
    p[:, _UPPER_OUTER, 1] -= 0.025 * rounded
    p[:, _LOWER_OUTER, 1] += 0.025 * rounded
    p[:, _LIPS, 2] += 0.12 * rounded
    return p


def close_eyes(points: np.ndarray, closure: np.ndarray) -> np.ndarray:
    """Lower the upper lids toward the lower lids by `closure` (N,) 0–1; (N, 68, 3) in place."""
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        target = points[:, lower, 1] - 0.004
        points[:, upper, 1] += closure * (target - points[:, upper, 1])
        points[:, upper, 1] = np.minimum(points[:, upper, 1], target)
    return points


def raise_brows(points: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Raise both brows by `amount` (N,) face units (speech-linked brow flashes); in place."""
    points[:, 17:27, 1] -= amount[:, None]
    return points


# --------------------------------------------------------------------------------------------
# Extra outlines for the renderer
# --------------------------------------------------------------------------------------------


def _arc(
    cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, num: int, z: float
) -> np.ndarray:
    """(num, 3) points on an ellipse from angle a0 to a1 (radians, 0 = +x, π/2 = up)."""
    angles = np.linspace(a0, a1, num)
    return np.stack([cx + rx * np.cos(angles), cy - ry * np.sin(angles), np.full(num, z)], axis=1)


def _hairline(speaker: Speaker) -> np.ndarray:
    """(21, 3) front edge of the hair, from the left temple over the forehead to the right."""
    forehead = speaker.geometry.forehead
    if speaker.hair_style == "bob":  # a fringe down to the brows
        line = _arc(0.0, -0.12, 0.93, 0.36 * forehead, np.pi + 0.25, -0.25, 21, 0.12)
        line[:, 1] += 0.03 * np.sin(np.linspace(0.0, 9 * np.pi, 21))  # ragged fringe
        return line
    part = {"short": 0.3, "quiff": 0.2, "long": 0.0, "bun": 0.0}[speaker.hair_style]
    line = _arc(0.0, -0.3, 0.9, 0.68 * forehead, np.pi + 0.3, -0.3, 21, 0.05)
    t = np.linspace(-1.0, 1.0, 21)
    line[:, 1] += 0.06 * np.exp(-(((t - part) / 0.12) ** 2))  # the parting dips the line
    if speaker.sex == "male":  # receding temples
        line[:, 1] -= 0.09 * np.exp(-(((np.abs(t) - 0.62) / 0.16) ** 2))
    return line


def _hair_outlines(speaker: Speaker) -> dict[str, np.ndarray]:
    """Head-frame hair shapes: `hair` (the cap: a band between the skull outline and the
    hairline, with sideburns), `hair_strand_*` (texture lines in it), `hair_back` (behind)."""
    g = speaker.geometry
    vol = g.hair_volume
    top = 1.36 * g.forehead + vol
    outer = _arc(0.0, -0.05, 1.04 + vol, top, -0.15, np.pi + 0.15, 25, -0.3)
    angle = np.linspace(-0.15, np.pi + 0.15, 25)
    tufts = 1.0 + 0.022 * np.sin(9.0 * angle + g.hair_phase) * np.sin(angle).clip(0.0, 1.0)
    outer[:, :2] = np.array([0.0, -0.05]) + (outer[:, :2] - np.array([0.0, -0.05])) * tufts[:, None]
    if speaker.hair_style == "quiff":
        outer[9:20, 1] -= 0.2 * np.sin(np.linspace(0.0, np.pi, 11))
    hairline = _hairline(speaker)
    burn = np.array([[-0.99, 0.32, -0.2], [-0.9, 0.32, -0.1]])
    right_burn = (burn * np.array([-1.0, 1.0, 1.0]))[::-1]
    out = {"hair": np.concatenate([outer, burn, hairline, right_burn])}
    inner = hairline[::2]  # (11, 3), left → right
    crown = _arc(0.0, -0.05, 1.04 + vol, top, np.pi - 0.1, 0.1, 11, -0.3)
    for k, frac in enumerate((0.35, 0.68)):
        out[f"hair_strand_{k}"] = inner + frac * (crown - inner)
    if speaker.hair_style in ("long", "bob"):
        out["hair_back"] = _back_hair(speaker, top)
    if speaker.hair_style == "bun":
        out["hair_back"] = _arc(0.0, -top - 0.05, 0.42, 0.34, 0.0, 2 * np.pi, 24, -0.6)[:-1]
    return out


def _back_hair(speaker: Speaker, top: float) -> np.ndarray:
    """Hair falling behind the face: to the shoulders (long) or the jaw (bob)."""
    vol = speaker.geometry.hair_volume
    bottom = 2.55 if speaker.hair_style == "long" else 1.4
    width = 1.28 + vol
    right = np.array(
        [
            [1.05 + vol, 0.0],
            [width, 0.6],
            [width + 0.04, 1.2],
            [width + 0.02, bottom - 0.2],
            [width - 0.12, bottom],
            [0.72, bottom - 0.1],
            [0.62, 1.3],
        ]
    )
    left = right[::-1] * np.array([-1.0, 1.0])
    crown = _arc(0.0, -0.02, 1.05 + vol, top, np.pi, 0.0, 15, -0.8)[1:-1, :2]
    outline = np.concatenate([right, left, crown])
    return np.concatenate([outline, np.full((outline.shape[0], 1), -0.8)], axis=1)


def _ear(side: float, g: Geometry) -> np.ndarray:
    """(12, 3) outline of one ear beside the jaw's top landmarks."""
    t = np.linspace(0.0, 2 * np.pi, 13)[:-1]
    x = side * (1.0 + 0.07 * g.ear_size + 0.08 * g.ear_size * np.cos(t))
    y = 0.17 + 0.23 * g.ear_size * np.sin(t) - 0.03 * np.cos(t)
    return np.stack([x, y, np.full_like(x, -0.55)], axis=1)


@dataclass
class FaceRig:
    """A speaker's face under one emotion: neutral landmarks plus head- and body-frame outlines.

    Attributes:
        landmarks: (68, 3) neutral face with the emotion's static displacements.
        head: named (K, 3) outlines that move with the head (forehead, hair, ears, neck top).
        body: named (K, 2) outlines of the body frame (neck base, shoulders, neckline).
    """

    landmarks: np.ndarray
    head: dict[str, np.ndarray] = field(default_factory=dict)
    body: dict[str, np.ndarray] = field(default_factory=dict)


def _body_outlines(speaker: Speaker) -> dict[str, np.ndarray]:
    """Body-frame outlines (face units, same origin as the head at rest)."""
    g = speaker.geometry
    w, n = g.shoulder_width, 0.5 * g.neck_width
    shoulders = np.array(
        [
            [n + 0.08, 1.95],
            [1.1 * w, 2.25],
            [1.85 * w, 2.45],
            [2.3 * w, 2.8],
            [2.55 * w, 3.4],
            [2.7 * w, 5.0],
        ]
    )
    drop = {"crew": 0.3, "vee": 0.75, "collar": 0.42}[speaker.neckline]
    half = n + (0.12 if speaker.neckline != "collar" else 0.02)
    t = np.linspace(0.0, 1.0, 9)
    depth = t if speaker.neckline == "vee" else np.sin(0.5 * np.pi * t)
    neckline_r = np.stack([half * (1 - t), 2.0 + drop * depth], axis=1)  # right end → centre
    neckline = np.concatenate([neckline_r * np.array([-1.0, 1.0]), neckline_r[::-1][1:]])
    left = shoulders[::-1] * np.array([-1.0, 1.0])
    out = {
        "shirt": np.concatenate([left, neckline, shoulders]),
        "neck_base": np.array([[-n - 0.04, 2.7], [n + 0.04, 2.7]]),
    }
    if speaker.neckline == "collar":
        flap = np.array(
            [[half + 0.02, 1.96], [0.02, 2.0 + drop], [0.04, 2.0 + drop + 0.1], [half + 0.3, 2.14]]
        )
        out["collar_right"] = flap
        out["collar_left"] = flap * np.array([-1.0, 1.0])
    return out


def build_rig(speaker: Speaker, style: EmotionStyle) -> FaceRig:
    """The face rig of a speaker under an emotion style."""
    g = speaker.geometry
    landmarks = apply_emotion(shape_face(g), style)
    jaw = landmarks[:17]
    forehead = _arc(0.0, 0.03, 0.985, 1.32 * g.forehead, 0.04, np.pi - 0.04, 15, -0.1)
    head = {
        "forehead": forehead,
        "ear_right": _ear(-1.0, g),
        "ear_left": _ear(1.0, g),
        "neck_top": np.array(
            [
                [-0.5 * g.neck_width, jaw[5, 1] - 0.25, -0.6],
                [0.5 * g.neck_width, jaw[11, 1] - 0.25, -0.6],
            ]
        ),
        **_hair_outlines(speaker),
    }
    return FaceRig(landmarks=landmarks, head=head, body=_body_outlines(speaker))
