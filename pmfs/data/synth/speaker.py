"""Synthetic speakers: face geometry, colours, hair and clothes, and voice.

A speaker is a pure function of the dataset seed and its id (`sample_speaker`); every clip of the
speaker regenerates it. Speakers alternate female/male by index (S01 female, S02 male, ...), which
sets the voice range and biases the face (jaw width, brow thickness, hair style).

Face geometry is in *face units*: 1 = half the face width at the top of the jaw line (landmarks 0
and 16), as in `face.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from pmfs.data.synth.seeds import derive_rng
from pmfs.data.synth.speech import Voice

RGB = tuple[float, float, float]
HairStyle = Literal["short", "quiff", "long", "bob", "bun"]
Neckline = Literal["crew", "vee", "collar"]
FacialHair = Literal["none", "stubble", "beard"]


@dataclass(frozen=True)
class Geometry:
    """Shape of a speaker's face relative to the mean face (1 / 0 = mean).

    Attributes:
        face_length: vertical scale of everything below the eyes.
        jaw_width: width of the lower jaw (landmarks 3–13).
        chin_width: width around the chin (landmarks 6–10).
        eye_spacing: outward shift of each eye (face units).
        eye_size: scale of the eyes.
        eye_openness: vertical scale of the eye opening.
        eye_tilt: outer eye corners up (radians).
        brow_height: brows shifted up (face units).
        brow_arch: raise of the brows' middle (face units).
        brow_thickness: stroke half-width at the brow's head (face units).
        nose_length: vertical scale of the nose.
        nose_width: width of the nose base.
        mouth_width: width of the mouth.
        mouth_drop: mouth shifted down (face units).
        upper_lip: thickness factor of the upper lip.
        lower_lip: thickness factor of the lower lip.
        hair_volume: how far the hair stands off the skull (face units).
        hair_phase: phase of the tufts along the hair's outline (radians).
        forehead: height factor of the hairline above the eyes.
        ear_size: scale of the ears.
        neck_width: width factor of the neck.
        shoulder_width: width factor of the shoulders.
    """

    face_length: float = 1.0
    jaw_width: float = 1.0
    chin_width: float = 1.0
    eye_spacing: float = 0.0
    eye_size: float = 1.0
    eye_openness: float = 1.0
    eye_tilt: float = 0.0
    brow_height: float = 0.0
    brow_arch: float = 0.0
    brow_thickness: float = 0.045
    nose_length: float = 1.0
    nose_width: float = 1.0
    mouth_width: float = 1.0
    mouth_drop: float = 0.0
    upper_lip: float = 1.0
    lower_lip: float = 1.0
    hair_volume: float = 0.08
    hair_phase: float = 0.0
    forehead: float = 1.0
    ear_size: float = 1.0
    neck_width: float = 1.0
    shoulder_width: float = 1.0


@dataclass(frozen=True)
class Palette:
    """A speaker's colours, sRGB 0–255.

    Attributes:
        skin: mid skin tone.
        lips: lip colour.
        hair: hair colour.
        brows: eyebrow colour.
        iris: iris colour.
        shirt: clothing colour.
        sclera: eye white.
        teeth: teeth colour.
    """

    skin: RGB
    lips: RGB
    hair: RGB
    brows: RGB
    iris: RGB
    shirt: RGB
    sclera: RGB = (236.0, 232.0, 226.0)
    teeth: RGB = (232.0, 226.0, 210.0)

    def lit(self, gain: np.ndarray) -> Palette:
        """Every colour multiplied by a (3,) per-channel gain (exposure and white balance)."""

        def scale(colour: RGB) -> RGB:
            return _rgb(np.clip(np.asarray(colour) * gain, 0.0, 255.0))

        return Palette(**{name: scale(getattr(self, name)) for name in self.__dataclass_fields__})


@dataclass(frozen=True)
class Speaker:
    """Everything that stays the same across a speaker's clips.

    Attributes:
        speaker_id: "S01", "S02", ...
        sex: "female" or "male" (sets the voice range and biases the face).
        geometry: face shape.
        palette: colours.
        hair_style: one of "short", "quiff", "long", "bob", "bun".
        neckline: "crew", "vee" or "collar".
        facial_hair: "none", "stubble" or "beard".
        voice: voice parameters.
        face_scale: face unit (half the face width) as a fraction of the crop side (0.215–0.245).
    """

    speaker_id: str
    sex: Literal["female", "male"]
    geometry: Geometry
    palette: Palette
    hair_style: HairStyle
    neckline: Neckline
    facial_hair: FacialHair
    voice: Voice
    face_scale: float


_SKIN_TONES: tuple[RGB, ...] = (
    (241.0, 204.0, 180.0),
    (232.0, 187.0, 158.0),
    (218.0, 168.0, 134.0),
    (198.0, 145.0, 108.0),
    (173.0, 120.0, 84.0),
    (141.0, 94.0, 64.0),
    (112.0, 73.0, 50.0),
    (88.0, 58.0, 42.0),
)
_HAIR_COLOURS: tuple[RGB, ...] = (
    (28.0, 24.0, 24.0),
    (52.0, 36.0, 28.0),
    (92.0, 62.0, 40.0),
    (128.0, 66.0, 38.0),
    (196.0, 160.0, 104.0),
    (150.0, 112.0, 68.0),
    (140.0, 136.0, 132.0),
)
_IRIS_COLOURS: tuple[RGB, ...] = (
    (84.0, 56.0, 34.0),
    (52.0, 36.0, 26.0),
    (118.0, 92.0, 50.0),
    (80.0, 112.0, 74.0),
    (80.0, 118.0, 160.0),
    (108.0, 122.0, 134.0),
)
_SHIRT_COLOURS: tuple[RGB, ...] = (
    (40.0, 56.0, 92.0),
    (150.0, 40.0, 48.0),
    (44.0, 96.0, 70.0),
    (210.0, 206.0, 196.0),
    (60.0, 60.0, 66.0),
    (196.0, 150.0, 60.0),
    (94.0, 64.0, 120.0),
    (46.0, 120.0, 150.0),
    (230.0, 230.0, 232.0),
    (120.0, 80.0, 56.0),
)


def _jitter(rng: np.random.Generator, colour: RGB, amount: float) -> RGB:
    values = np.clip(np.asarray(colour) + rng.normal(0.0, amount, 3), 0.0, 255.0)
    return (float(values[0]), float(values[1]), float(values[2]))


def _palette(rng: np.random.Generator, female: bool) -> Palette:
    tone = int(rng.integers(len(_SKIN_TONES)))
    skin = np.asarray(_jitter(rng, _SKIN_TONES[tone], 5.0))
    dark_skin = tone >= 5
    hair_choices = [0, 1] if dark_skin else list(range(len(_HAIR_COLOURS)))
    hair = np.asarray(_jitter(rng, _HAIR_COLOURS[int(rng.choice(hair_choices))], 6.0))
    lips = skin * np.array([0.8, 0.52, 0.54]) + np.array([30.0, 6.0, 10.0])
    if female and rng.random() < 0.4:  # lipstick
        lips = 0.5 * lips + 0.5 * np.array([170.0, 50.0, 70.0])
    brows = np.minimum(hair * 0.8, skin * 0.45)
    iris_choices = [0, 1, 2] if dark_skin else list(range(len(_IRIS_COLOURS)))
    return Palette(
        skin=_rgb(skin),
        lips=_rgb(np.clip(lips, 0, 255)),
        hair=_rgb(hair),
        brows=_rgb(brows),
        iris=_jitter(rng, _IRIS_COLOURS[int(rng.choice(iris_choices))], 6.0),
        shirt=_jitter(rng, _SHIRT_COLOURS[int(rng.integers(len(_SHIRT_COLOURS)))], 8.0),
    )


def _rgb(values: np.ndarray) -> RGB:
    return (float(values[0]), float(values[1]), float(values[2]))


def _geometry(rng: np.random.Generator, female: bool) -> Geometry:
    def u(low: float, high: float) -> float:
        return float(rng.uniform(low, high))

    return Geometry(
        face_length=u(0.93, 1.07) * (0.98 if female else 1.02),
        jaw_width=u(0.9, 1.0) if female else u(0.98, 1.1),
        chin_width=u(0.85, 1.0) if female else u(0.95, 1.15),
        eye_spacing=u(-0.035, 0.035),
        eye_size=u(0.95, 1.12) * (1.04 if female else 1.0),
        eye_openness=u(0.85, 1.2),
        eye_tilt=u(-0.06, 0.1),
        brow_height=u(-0.04, 0.04),
        brow_arch=u(-0.01, 0.04) + (0.02 if female else 0.0),
        brow_thickness=u(0.032, 0.045) if female else u(0.045, 0.062),
        nose_length=u(0.9, 1.1),
        nose_width=u(0.85, 1.0) if female else u(0.95, 1.2),
        mouth_width=u(0.9, 1.1),
        mouth_drop=u(-0.03, 0.04),
        upper_lip=u(0.8, 1.3) * (1.08 if female else 1.0),
        lower_lip=u(0.85, 1.3) * (1.08 if female else 1.0),
        hair_volume=u(0.06, 0.16),
        hair_phase=u(0.0, 2 * np.pi),
        forehead=u(0.9, 1.1),
        ear_size=u(0.9, 1.1),
        neck_width=u(0.85, 0.95) if female else u(0.95, 1.1),
        shoulder_width=u(0.85, 0.95) if female else u(0.95, 1.1),
    )


def _voice(rng: np.random.Generator, female: bool) -> Voice:
    return Voice(
        f0=float(rng.uniform(175.0, 245.0) if female else rng.uniform(90.0, 140.0)),
        formant_scale=float(rng.uniform(1.1, 1.2) if female else rng.uniform(0.94, 1.04)),
        jitter=float(rng.uniform(0.004, 0.011)),
        shimmer=float(rng.uniform(0.02, 0.06)),
        breathiness=float(rng.uniform(0.05, 0.3) if female else rng.uniform(0.02, 0.2)),
        open_quotient=float(rng.uniform(0.58, 0.72) if female else rng.uniform(0.48, 0.62)),
        rate=float(rng.uniform(0.88, 1.12)),
    )


def speaker_id(index: int) -> str:
    """The id of the speaker at 0-based `index`: "S01", "S02", ..."""
    return f"S{index + 1:02d}"


def sample_speaker(seed: int, index: int) -> Speaker:
    """The speaker at 0-based `index` of the dataset with master `seed`.

    Args:
        seed: the dataset's master seed.
        index: 0-based speaker index (even: female, odd: male).

    Returns:
        The speaker; the same for the same (seed, index) in any process.
    """
    sid = speaker_id(index)
    rng = derive_rng(seed, "speaker", sid)
    female = index % 2 == 0
    styles: tuple[HairStyle, ...] = (
        ("long", "bob", "bun", "short") if female else ("short", "quiff", "short")
    )
    hair_style = styles[int(rng.integers(len(styles)))]
    necklines: tuple[Neckline, ...] = ("crew", "vee", "collar")
    beards: tuple[FacialHair, ...] = ("none", "stubble", "beard")
    facial_hair = "none" if female else beards[int(rng.choice(3, p=[0.45, 0.35, 0.2]))]
    return Speaker(
        speaker_id=sid,
        sex="female" if female else "male",
        geometry=_geometry(rng, female),
        palette=_palette(rng, female),
        hair_style=hair_style,
        neckline=necklines[int(rng.integers(len(necklines)))],
        facial_hair=facial_hair,
        voice=_voice(rng, female),
        face_scale=float(rng.uniform(0.215, 0.245)),
    )
