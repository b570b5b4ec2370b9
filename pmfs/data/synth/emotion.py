"""How each of MEAD's emotions changes the synthetic face and voice, scaled by level.

An `EmotionStyle` holds the effect of one emotion at full strength (level 3): brow, eyelid and
mouth-corner displacements in face units (1 = half the face width; + is up for the vertical
terms), head posture, and prosody (pitch level and range, speaking rate, loudness, voice
quality). `emotion_style(emotion, level)` interpolates from neutral toward it by
`LEVEL_STRENGTH[level]`. The tables follow the usual FACS descriptions: happy raises the mouth
corners and cheeks (AU6+12), sad raises the inner brows and lowers the corners (AU1+15),
surprised raises the brows and opens the jaw (AU1+2+26), angry lowers and draws the brows
together and presses the lips (AU4+24), fear raises and draws the brows together and stretches
the mouth (AU1+2+4+20), disgusted raises the upper lip and wrinkles the nose (AU9+10), contempt
raises one mouth corner (unilateral AU14).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pmfs.batch import EMOTIONS, LEVELS

LEVEL_STRENGTH: dict[int, float] = {1: 0.45, 2: 0.75, 3: 1.0}
"""Fraction of an emotion's full effect shown at each MEAD level."""


@dataclass(frozen=True)
class EmotionStyle:
    """Face and voice effects of an emotion (defaults = neutral).

    Attributes:
        inner_brow: raise of the inner brow ends (face units, + up).
        outer_brow: raise of the outer brow ends.
        brow_squeeze: inner brow ends drawn toward the midline.
        upper_lid: + opens the eyes wider, - droops the upper lids.
        lower_lid: + raises the lower lids (cheek raise, squint).
        mouth_corner: + raises the mouth corners (smile), - lowers them.
        mouth_stretch: relative change of the mouth width.
        mouth_asymmetry: extra raise of the subject's left corner only (contempt).
        upper_lip_raise: raise of the upper lip's middle.
        lip_press: relative thinning of the lips (0–1).
        nose_wrinkle: raise of the nose base.
        jaw_bias: added to the jaw opening track (0–1 units of the jaw range).
        head_pitch: mean head pitch in degrees (+ = chin down).
        head_motion: gain of the head movement.
        rate: speaking-rate factor (> 1 is faster).
        pitch: factor on the speaker's mean pitch.
        pitch_range: factor on the size of pitch accents and declination.
        loudness: factor on the speech level.
        jitter: factor on cycle-to-cycle pitch perturbation.
        breathiness: added aspiration noise in voiced speech (0–1).
        articulation: gain on jaw movements while speaking.
        blink_rate: factor on the blink rate.
    """

    inner_brow: float = 0.0
    outer_brow: float = 0.0
    brow_squeeze: float = 0.0
    upper_lid: float = 0.0
    lower_lid: float = 0.0
    mouth_corner: float = 0.0
    mouth_stretch: float = 0.0
    mouth_asymmetry: float = 0.0
    upper_lip_raise: float = 0.0
    lip_press: float = 0.0
    nose_wrinkle: float = 0.0
    jaw_bias: float = 0.0
    head_pitch: float = 0.0
    head_motion: float = 1.0
    rate: float = 1.0
    pitch: float = 1.0
    pitch_range: float = 1.0
    loudness: float = 1.0
    jitter: float = 1.0
    breathiness: float = 0.0
    articulation: float = 1.0
    blink_rate: float = 1.0

    def scaled(self, strength: float) -> EmotionStyle:
        """This style moved toward neutral: `strength` 0 is neutral, 1 is this style."""
        neutral = EmotionStyle()
        values = {
            f.name: getattr(neutral, f.name)
            + strength * (getattr(self, f.name) - getattr(neutral, f.name))
            for f in dataclasses.fields(self)
        }
        return EmotionStyle(**values)


EMOTION_STYLES: dict[str, EmotionStyle] = {
    "angry": EmotionStyle(
        inner_brow=-0.09,
        outer_brow=0.02,
        brow_squeeze=0.06,
        upper_lid=0.015,
        lower_lid=0.025,
        mouth_corner=-0.03,
        lip_press=0.3,
        head_pitch=2.0,
        head_motion=1.3,
        rate=1.1,
        pitch=1.12,
        pitch_range=1.5,
        loudness=1.35,
        jitter=1.4,
        articulation=1.15,
    ),
    "contempt": EmotionStyle(
        inner_brow=-0.015,
        lower_lid=0.02,
        mouth_corner=0.01,
        mouth_asymmetry=0.075,
        mouth_stretch=0.03,
        lip_press=0.15,
        head_pitch=-3.0,
        head_motion=0.8,
        rate=0.9,
        pitch=0.97,
        pitch_range=0.85,
        loudness=0.9,
        breathiness=0.05,
        articulation=0.85,
    ),
    "disgusted": EmotionStyle(
        inner_brow=-0.06,
        outer_brow=-0.02,
        brow_squeeze=0.04,
        lower_lid=0.025,
        mouth_corner=-0.035,
        upper_lip_raise=0.05,
        nose_wrinkle=0.03,
        lip_press=0.1,
        head_pitch=-1.5,
        rate=0.9,
        pitch=0.95,
        pitch_range=1.1,
        loudness=1.0,
        breathiness=0.08,
        articulation=0.9,
    ),
    "fear": EmotionStyle(
        inner_brow=0.11,
        outer_brow=0.05,
        brow_squeeze=0.05,
        upper_lid=0.05,
        mouth_corner=-0.02,
        mouth_stretch=0.1,
        jaw_bias=0.06,
        head_pitch=1.0,
        head_motion=1.2,
        rate=1.15,
        pitch=1.25,
        pitch_range=1.3,
        loudness=0.95,
        jitter=2.2,
        breathiness=0.15,
        blink_rate=0.6,
    ),
    "happy": EmotionStyle(
        inner_brow=0.02,
        outer_brow=0.03,
        lower_lid=0.025,
        mouth_corner=0.085,
        mouth_stretch=0.14,
        lip_press=0.1,
        head_pitch=-1.0,
        head_motion=1.3,
        rate=1.05,
        pitch=1.15,
        pitch_range=1.6,
        loudness=1.15,
        articulation=1.1,
    ),
    "neutral": EmotionStyle(),
    "sad": EmotionStyle(
        inner_brow=0.08,
        outer_brow=-0.05,
        brow_squeeze=0.03,
        upper_lid=-0.018,
        mouth_corner=-0.07,
        mouth_stretch=-0.04,
        head_pitch=5.0,
        head_motion=0.6,
        rate=0.8,
        pitch=0.9,
        pitch_range=0.55,
        loudness=0.75,
        jitter=1.3,
        breathiness=0.2,
        articulation=0.75,
        blink_rate=1.3,
    ),
    "surprised": EmotionStyle(
        inner_brow=0.15,
        outer_brow=0.13,
        upper_lid=0.06,
        jaw_bias=0.12,
        mouth_stretch=-0.05,
        head_pitch=-2.5,
        head_motion=1.2,
        rate=1.05,
        pitch=1.3,
        pitch_range=1.9,
        loudness=1.15,
        articulation=1.15,
        blink_rate=0.5,
    ),
}
"""Full-strength (level 3) style of each emotion in `pmfs.batch.EMOTIONS`."""


def emotion_levels(emotion: str) -> tuple[int, ...]:
    """The MEAD levels an emotion has: neutral has level 1 only."""
    return (1,) if emotion == "neutral" else LEVELS


def emotion_style(emotion: str, level: int) -> EmotionStyle:
    """The style of `emotion` at MEAD intensity `level`.

    Raises:
        ValueError: unknown emotion, or a level the emotion does not have.
    """
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; choose one of {EMOTIONS}")
    if level not in emotion_levels(emotion):
        raise ValueError(
            f"emotion {emotion!r} has no level {level}; levels are {emotion_levels(emotion)}"
        )
    return EMOTION_STYLES[emotion].scaled(LEVEL_STRENGTH[level])
