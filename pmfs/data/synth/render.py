"""Paint a synthetic person (head and shoulders) from one frame's shapes.

Layers, back to front: back hair, shirt (and collar), neck with the jaw's shadow, ears, the face
(skin shaded by a soft light from the image's left, cheeks, eye sockets, nasolabial folds), the
nose (side shadow, bridge and tip highlights, alae, nostrils, the base line through landmarks
31–35), the eyes (white of the eye = the landmark polygon 36–41 / 42–47, iris, pupil and glint
clipped to it, lash line, lower lid, crease), the brows (a tapered stroke through 17–21 /
22–26), the mouth (interior = inner-lip polygon 60–67, with tongue and teeth clipped to it; upper
lip 48–54 + 64–60, lower lip 54–59/48 + 60–67–64; the lip line), and the hair cap on top.

Every feature that has landmarks is drawn *through* them (polygon vertices or stroke centre
lines), so the landmarks are the rendered geometry. The layers marked as person (hair, shirt,
neck, ears, face) make the foreground mask.
"""

from __future__ import annotations

import numpy as np

from pmfs.data.synth.emotion import EmotionStyle
from pmfs.data.synth.raster import Canvas, Coverage, ellipse_outline
from pmfs.data.synth.scene import FrameShapes
from pmfs.data.synth.speaker import Palette, Speaker

_LIGHT = np.array([-0.55, -0.45])
"""Direction the light comes from in the image (upper left), for shading."""


def _c(rgb: tuple[float, float, float] | np.ndarray, factor: float = 1.0) -> np.ndarray:
    return np.clip(np.asarray(rgb, dtype=np.float32) * factor, 0.0, 255.0)


def _mix(a: np.ndarray, b: np.ndarray | tuple[float, float, float], t: float) -> np.ndarray:
    return (1.0 - t) * np.asarray(a, np.float32) + t * np.asarray(b, np.float32)


def _shaded(
    cov: Coverage,
    colour: np.ndarray,
    centre: np.ndarray,
    radii: np.ndarray,
    rim: float,
    light: float,
) -> np.ndarray:
    """(h, w, 3) colour over a coverage box, darker toward an elliptical rim, lit from the left.

    Args:
        cov: the coverage whose box the colour field covers.
        colour: (3,) base colour.
        centre: (2,) centre of the shape in pixels.
        radii: (2,) half extents of the shape in pixels.
        rim: darkening at and beyond the ellipse (0–1).
        light: brightening on the lit side (0–1).
    """
    h, w = cov.values.shape
    u = (np.arange(cov.x0, cov.x0 + w, dtype=np.float32) - centre[0]) / np.float32(radii[0])
    v = (np.arange(cov.y0, cov.y0 + h, dtype=np.float32) - centre[1]) / np.float32(radii[1])
    d2 = np.minimum(np.maximum(u[None, :] ** 2 + v[:, None] ** 2 - 0.3, 0.0), 1.2)
    lit = np.float32(-light * _LIGHT[0]) * u[None, :] + np.float32(-light * _LIGHT[1]) * v[:, None]
    shade = 1.0 - np.float32(rim) * d2 * np.sqrt(d2) + lit
    return shade[..., None] * colour.astype(np.float32)


def _back(canvas: Canvas, f: FrameShapes, palette: Palette) -> None:
    """Back hair, neck, shirt and collar."""
    hair = _c(palette.hair)
    if "hair_back" in f.head:
        canvas.fill(f.head["hair_back"], _c(hair, 0.78), person=True)
    _neck(canvas, f, palette)
    shirt = f.body["shirt"]
    cov = canvas.polygon(shirt)
    if cov is not None:
        centre = np.array([shirt[:, 0].mean(), shirt[:, 1].min() + 2.0 * f.unit])
        field = _shaded(cov, _c(palette.shirt), centre, np.array([2.6, 1.6]) * f.unit, 0.35, 0.12)
        canvas.paint(cov, field, person=True)
    for flap in ("collar_left", "collar_right"):
        if flap in f.body:
            canvas.fill(f.body[flap], _mix(_c(palette.shirt), (245, 245, 245), 0.35), person=True)
            canvas.stroke(f.body[flap][[1, 2]], 0.02 * f.unit, _c(palette.shirt, 0.6), 0.6)


def _neck(canvas: Canvas, f: FrameShapes, palette: Palette) -> None:
    """The neck (head-frame top, body-frame base) with the jaw's shadow on it."""
    top, base = f.head["neck_top"], f.body["neck_base"]
    neck = np.array([top[0], top[1], base[1], base[0]])
    cov = canvas.fill(neck, _c(palette.skin, 0.88), person=True)
    chin = f.landmarks[8]
    canvas.blob(
        chin + np.array([0.0, 0.12]) * f.unit,
        (0.5 * f.unit, 0.2 * f.unit),
        _c(palette.skin, 0.55),
        0.55,
        clip=cov,
    )


def _ears(canvas: Canvas, f: FrameShapes, palette: Palette) -> None:
    """Both ears with a darker concha."""
    ears = [f.head["ear_right"], f.head["ear_left"]]
    cov = canvas.fill(ears, _c(palette.skin, 0.93), person=True)
    for ear in ears:
        canvas.blob(
            ear.mean(axis=0), (0.05 * f.unit, 0.12 * f.unit), _c(palette.skin, 0.62), 0.6, clip=cov
        )


def _face(canvas: Canvas, f: FrameShapes, palette: Palette, style: EmotionStyle) -> Coverage | None:
    """The skin of the face (jaw line 0–16 closed by the forehead arc), shaded; its coverage."""
    lm = f.landmarks
    outline = np.concatenate([lm[0:17], f.head["forehead"]])
    cov = canvas.polygon(outline)
    if cov is None:
        return None
    top = f.head["forehead"][:, 1].min()
    centre = np.array([lm[27, 0], 0.5 * (top + lm[8, 1])])
    radii = np.array([0.5 * abs(lm[16, 0] - lm[0, 0]), 0.5 * (lm[8, 1] - top)])
    canvas.paint(cov, _shaded(cov, _c(palette.skin), centre, radii, 0.32, 0.07), person=True)
    _face_shading(canvas, f, palette, style, cov)
    return cov


def _face_shading(
    canvas: Canvas, f: FrameShapes, palette: Palette, style: EmotionStyle, face: Coverage
) -> None:
    """Cheeks (rosier when raised, e.g. happy), eye sockets, nasolabial folds (deeper in a
    smile), and the shadow under the lower lip."""
    lm, u = f.landmarks, f.unit
    blush = _mix(_c(palette.skin), (215, 90, 90), 0.35)
    cheek_raise = min(max(style.lower_lid, 0.0) / 0.025, 1.0)
    for eye, side in ((np.arange(36, 42), -1.0), (np.arange(42, 48), 1.0)):
        cheek = np.array([lm[eye, 0].mean() + side * 0.06 * u, lm[29, 1] + 0.12 * u])
        canvas.blob(cheek, (0.22 * u, 0.15 * u), blush, 0.18 + 0.15 * cheek_raise, clip=face)
        inner_corner = lm[eye[3] if side < 0 else eye[0]]
        socket = np.array([inner_corner[0], lm[eye, 1].mean() - 0.05 * u])
        canvas.blob(socket, (0.09 * u, 0.07 * u), _c(palette.skin, 0.7), 0.3, clip=face)
    smile = min(max(style.mouth_corner, 0.0) / 0.085, 1.0)
    folds = [
        np.array(
            [
                lm[wing] + np.array([side * 0.06, -0.02]) * u,
                lm[wing] + np.array([side * 0.14, 0.14]) * u,
                lm[corner] + np.array([side * 0.08, -0.02]) * u,
            ]
        )
        for wing, corner, side in ((31, 48, -1.0), (35, 54, 1.0))
    ]
    fold_width = np.array([0.01, 0.025, 0.01]) * u
    canvas.stroke(folds, fold_width, _c(palette.skin, 0.7), 0.22 + 0.4 * smile, clip=face)
    lip_shadow = lm[57] + np.array([0.0, 0.1]) * u
    canvas.blob(lip_shadow, (0.13 * u, 0.05 * u), _c(palette.skin, 0.78), 0.35, clip=face)


def _facial_hair(canvas: Canvas, f: FrameShapes, speaker: Speaker, face: Coverage | None) -> None:
    """Stubble or a beard over the jaw, chin and upper lip (the lips are painted later)."""
    if speaker.facial_hair == "none" or face is None:
        return
    lm, u = f.landmarks, f.unit
    up = np.array([0.0, -0.07]) * u
    region = np.concatenate(
        [
            lm[3:14],
            [
                lm[13] + up,
                lm[54] + np.array([0.1, -0.06]) * u,
                lm[35] + np.array([0.03, 0.05]) * u,
                lm[33] + np.array([0.0, 0.04]) * u,
                lm[31] + np.array([-0.03, 0.05]) * u,
                lm[48] + np.array([-0.1, -0.06]) * u,
                lm[3] + up,
            ],
        ]
    )
    inner = lm[[4, 5, 6, 7, 8, 9, 10, 11, 12, 54, 33, 48]]
    colour = np.minimum(_c(speaker.palette.hair, 0.6), _c(speaker.palette.skin, 0.5))
    strength = 0.16 if speaker.facial_hair == "stubble" else 0.45
    soft = max(1, round(0.035 * u))
    canvas.fill(region, colour, strength, clip=face, feather=soft)
    canvas.fill(inner, colour, strength * 1.2, clip=face, feather=soft)


def _nose(canvas: Canvas, f: FrameShapes, palette: Palette, face: Coverage | None) -> None:
    """Side shadow, bridge highlight along 27–30, tip highlight and the shadow under the nose."""
    lm, u = f.landmarks, f.unit
    skin = _c(palette.skin)
    light = _mix(skin, (255, 245, 235), 0.3)
    length = float(np.linalg.norm(lm[30] - lm[27]))
    tilt = float(np.arctan2(lm[30, 0] - lm[27, 0], lm[30, 1] - lm[27, 1]))
    side = 0.5 * (lm[28] + lm[30]) + np.array([0.11, 0.0]) * u  # away from the light
    canvas.blob(side, (0.06 * u, 0.5 * length), _c(skin, 0.72), 0.5, angle=-tilt, clip=face)
    bridge = np.array([0.012, 0.02, 0.025, 0.02]) * u
    canvas.stroke(lm[27:31], bridge, light, 0.35, clip=face)
    tip = lm[30] + np.array([-0.02, -0.02]) * u
    canvas.blob(tip, (0.06 * u, 0.045 * u), light, 0.45, clip=face)
    under = lm[33] + np.array([0.0, 0.05]) * u
    canvas.blob(under, (0.16 * u, 0.04 * u), _c(skin, 0.7), 0.45, clip=face)
    _nose_base(canvas, f, skin, face)


def _nose_base(canvas: Canvas, f: FrameShapes, skin: np.ndarray, face: Coverage | None) -> None:
    """Alae (wing creases from 31 / 35), nostrils, and the base line through 31–35."""
    lm, u = f.landmarks, f.unit
    alae = [
        np.array(
            [
                lm[base] + np.array([side * -0.03, 0.0]) * u,
                lm[base] + np.array([side * 0.035, -0.05]) * u,
                lm[base] + np.array([side * 0.02, -0.15]) * u,
            ]
        )
        for base, side in ((31, -1.0), (35, 1.0))
    ]
    canvas.stroke(alae, np.array([0.012, 0.018, 0.004]) * u, _c(skin, 0.62), 0.55, clip=face)
    nostrils = []
    for a, b in ((31, 32), (35, 34)):
        centre = 0.5 * (lm[a] + lm[b]) + np.array([0.0, -0.012]) * u
        tilt = float(np.arctan2(lm[b, 1] - lm[a, 1], lm[b, 0] - lm[a, 0]))
        nostrils.append(ellipse_outline(centre, (0.045 * u, 0.02 * u), tilt, 16))
    canvas.fill(nostrils, _mix(skin, (50, 25, 25), 0.7), 0.85)
    base = np.array([0.006, 0.01, 0.012, 0.01, 0.006]) * u
    canvas.stroke(lm[31:36], base, _c(skin, 0.55), 0.7)


def _iris_field(
    cov: Coverage, colour: np.ndarray, centres: np.ndarray, radius: float
) -> np.ndarray:
    """(h, w, 3) iris colour, darker toward the rim of the nearest iris."""
    ys, xs = cov.grid()
    d2 = np.min([((xs - cx) ** 2 + (ys - cy) ** 2) for cx, cy in centres], axis=0) / max(
        radius * radius, 1e-6
    )
    shade = (1.12 - 0.5 * np.clip(d2, 0.0, 1.0)).astype(np.float32)
    return colour[None, None, :] * shade[..., None]


def _eyes(canvas: Canvas, f: FrameShapes, palette: Palette) -> None:
    """Both eyes: whites (the landmark polygons), irises, pupils and glints clipped to them,
    lash lines along the upper lids, lower lids and creases."""
    lm, u, r = f.landmarks, f.unit, f.iris_radius
    eyes = [lm[36:42], lm[42:48]]
    whites = canvas.fill(eyes, _c(palette.sclera))
    if whites is not None:
        iris = canvas.polygon([ellipse_outline(c, (r, r), 0.0, 28) for c in f.iris])
        iris = iris.clipped_by(whites) if iris is not None else None
        if iris is not None:
            canvas.paint(iris, _iris_field(iris, _c(palette.iris), f.iris, r))
        pupils = [ellipse_outline(c, (0.42 * r, 0.42 * r), 0.0, 20) for c in f.iris]
        canvas.fill(pupils, (14.0, 12.0, 12.0), clip=whites)
        glints = [
            ellipse_outline(c + np.array([-0.3, -0.35]) * r, (0.16 * r, 0.16 * r), 0.0, 12)
            for c in f.iris
        ]
        canvas.fill(glints, (250.0, 250.0, 250.0), 0.85, clip=whites)
    lash = np.array([0.005, 0.018, 0.018, 0.005]) * u
    dark = _mix(_c(palette.brows, 0.5), (20, 15, 15), 0.6)
    canvas.stroke([eye[[0, 1, 2, 3]] for eye in eyes], lash, dark, 0.92)
    canvas.stroke(
        [eye[[3, 4, 5, 0]] for eye in eyes],
        np.array([0.002, 0.007, 0.007, 0.002]) * u,
        _c(palette.skin, 0.6),
        0.45,
    )
    creases = []
    for eye in eyes:
        outer, inner = eye[0], eye[3]
        mid = 0.5 * (outer + inner) + np.array([0.0, -0.1]) * u
        creases.append(
            np.array(
                [
                    outer + np.array([0.0, -0.03]) * u,
                    mid + 0.05 * (outer - inner),
                    inner + np.array([0.0, -0.04]) * u,
                ]
            )
        )
    canvas.stroke(creases, np.array([0.002, 0.01, 0.002]) * u, _c(palette.skin, 0.68), 0.35)


def _brows(canvas: Canvas, f: FrameShapes, palette: Palette, thickness: float) -> None:
    """Both brows: a tapered stroke through 17–21 / 26–22 (thickest at the inner end)."""
    lm, u = f.landmarks, f.unit
    profile = np.array([0.35, 0.62, 0.85, 1.0, 0.95]) * thickness * u
    brows = [lm[17:22], lm[26:21:-1]]  # outer → inner, as the profile
    canvas.stroke(brows, profile * 1.35, _c(palette.brows), 0.3)
    canvas.stroke(brows, profile, _c(palette.brows), 0.9)


def _mouth(canvas: Canvas, f: FrameShapes, palette: Palette) -> None:
    """Lips (outer 48–59, inner 60–67), the dark interior with tongue and teeth, the lip line."""
    lm, u = f.landmarks, f.unit
    lips = _c(palette.lips)
    upper = lm[[48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60]]
    lower = lm[[54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64]]
    canvas.fill(upper, _c(lips, 0.88))
    low = canvas.fill(lower, lips)
    canvas.blob(
        0.5 * (lm[57] + lm[66]) + np.array([-0.02, -0.01]) * u,
        (0.09 * u, 0.025 * u),
        _mix(lips, (255, 235, 230), 0.35),
        0.5,
        clip=low,
    )
    interior = canvas.fill(lm[60:68], _mix(lips, (25, 5, 10), 0.8))
    if interior is not None:
        gap = float(np.linalg.norm(lm[66] - lm[62]))
        tongue = ellipse_outline(
            lm[66] + np.array([0.0, 0.05 * gap]),
            (0.5 * abs(lm[64, 0] - lm[60, 0]) / 2, 0.3 * gap + 0.5),
            0.0,
            20,
        )
        canvas.fill(tongue, _mix(_c(lips, 0.6), (90, 25, 35), 0.5), 0.9, clip=interior)
        for name, shade in (("teeth_lower", 0.82), ("teeth_upper", 1.0)):
            canvas.fill(f.head[name], _c(palette.teeth, shade), 0.97, clip=interior)
        for corner in (60, 64):
            canvas.blob(lm[corner], (0.08 * u, 0.05 * u), (25.0, 8.0, 10.0), 0.7, clip=interior)
    canvas.stroke(
        lm[[60, 61, 62, 63, 64]],
        np.array([0.003, 0.01, 0.011, 0.01, 0.003]) * u,
        _c(lips, 0.45),
        0.55,
    )


def _hair(canvas: Canvas, f: FrameShapes, palette: Palette) -> None:
    """The hair cap over the forehead, shaded, with a highlight and strands."""
    hair = _c(palette.hair)
    cap = f.head["hair"]
    cov = canvas.polygon(cap)
    if cov is None:
        return
    top = cap[:, 1].min()
    centre = np.array([cap[:, 0].mean(), top + 0.7 * f.unit])
    radii = np.array([0.5 * (cap[:, 0].max() - cap[:, 0].min()), 0.9 * f.unit])
    canvas.paint(cov, _shaded(cov, hair, centre, radii, 0.25, 0.15), person=True)
    canvas.blob(
        centre + np.array([-0.35, -0.35]) * f.unit,
        (0.35 * f.unit, 0.14 * f.unit),
        _mix(hair, (255, 250, 240), 0.3),
        0.3,
        angle=-0.5,
        clip=cov,
    )
    strands = [f.head["hair_strand_0"], f.head["hair_strand_1"]]
    taper = np.sin(np.linspace(0.15, np.pi - 0.15, strands[0].shape[0])) * 0.012 * f.unit
    canvas.stroke(strands, taper, _c(hair, 0.6), 0.45, clip=cov)


def draw_person(canvas: Canvas, f: FrameShapes, speaker: Speaker, style: EmotionStyle) -> None:
    """Paint the speaker of one frame onto `canvas` (and its person mask).

    Args:
        canvas: the frame, background already painted.
        f: the frame's shapes in canvas pixels.
        speaker: colours, hair and brow thickness.
        style: the clip's emotion (cheek colour, smile folds).
    """
    palette = speaker.palette
    _back(canvas, f, palette)
    _ears(canvas, f, palette)
    face = _face(canvas, f, palette, style)
    _facial_hair(canvas, f, speaker, face)
    _nose(canvas, f, palette, face)
    _eyes(canvas, f, palette)
    _brows(canvas, f, palette, speaker.geometry.brow_thickness)
    _mouth(canvas, f, palette)
    _hair(canvas, f, palette)
