"""Articulatory tracks: planned phone sequences coarticulated into smooth trajectories.

An utterance (`utterance.py`: `Segment`s of `PHONES` with timing) sets *targets* for some
articulators per phone and leaves the others free: a free articulator is interpolated between
its neighbours' targets, then every track is smoothed with its own time constant, which gives
anticipatory and carry-over coarticulation (the /s/ of "sue" is rounded, the jaw of a consonant
follows its vowels).

The tracks (`ArticulatoryTrack`, sampled at `CONTROL_RATE` Hz) drive two things at once:

- the formant synthesizer (`speech.py`): jaw opening and tongue frontness set the formants,
  rounding and lip closure lower them, occlusion silences the oral tract, voicing/frication/
  aspiration/nasality choose the sources, `f0` and `loudness` are the prosody;
- the face (`face.py`): jaw opening drops the jaw and lower lip, rounding narrows the mouth,
  lip closure brings the lips together.

So the audio and the mouth are two views of one causal trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmfs.data.synth.emotion import EmotionStyle
from pmfs.data.synth.seeds import smooth
from pmfs.data.synth.utterance import PHONES, Phone, Segment, plan_utterance

CONTROL_RATE = 1000
"""Samples per second of the articulatory tracks."""


@dataclass(frozen=True)
class Prosody:
    """Speaker × emotion prosody of an utterance.

    Attributes:
        f0: mean fundamental frequency in Hz.
        pitch_range: relative size of accents and declination (1 = typical).
        rate: speaking-rate factor (> 1 is faster).
        loudness: level factor.
        articulation: gain on jaw movements.
        jaw_bias: added jaw opening (0–1 units), e.g. surprise.
    """

    f0: float
    pitch_range: float = 1.0
    rate: float = 1.0
    loudness: float = 1.0
    articulation: float = 1.0
    jaw_bias: float = 0.0

    @classmethod
    def from_style(cls, base_f0: float, base_rate: float, style: EmotionStyle) -> Prosody:
        """A speaker's prosody (`base_f0` Hz, `base_rate`) under an emotion style."""
        return cls(
            f0=base_f0 * style.pitch,
            pitch_range=style.pitch_range,
            rate=base_rate * style.rate,
            loudness=style.loudness,
            articulation=style.articulation,
            jaw_bias=style.jaw_bias,
        )


@dataclass
class ArticulatoryTrack:
    """Articulator trajectories of an utterance at `CONTROL_RATE` Hz (T samples each).

    Attributes:
        jaw: (T,) jaw opening 0–1.
        rounding: (T,) lip rounding -1 (spread) – 1 (rounded).
        closure: (T,) lip closure 0–1.
        front: (T,) tongue frontness 0–1.
        occlusion: (T,) oral-tract occlusion 0–1.
        voicing: (T,) vocal-fold vibration 0–1.
        frication: (T,) frication noise level 0–1.
        noise_hz: (T,) frication centre frequency in Hz.
        aspiration: (T,) glottal noise level 0–1.
        nasal: (T,) velum opening 0–1.
        loudness: (T,) relative speech level.
        f0: (T,) fundamental frequency in Hz (defined everywhere, used where voiced).
        bursts: (B, 3) stop releases: time (s), centre frequency (Hz), strength.
        segments: the phones and pauses, in time order.
    """

    jaw: np.ndarray
    rounding: np.ndarray
    closure: np.ndarray
    front: np.ndarray
    occlusion: np.ndarray
    voicing: np.ndarray
    frication: np.ndarray
    noise_hz: np.ndarray
    aspiration: np.ndarray
    nasal: np.ndarray
    loudness: np.ndarray
    f0: np.ndarray
    bursts: np.ndarray
    segments: list[Segment]

    @property
    def num_samples(self) -> int:
        """T."""
        return int(self.jaw.shape[0])

    @property
    def duration(self) -> float:
        """Seconds covered."""
        return self.num_samples / CONTROL_RATE

    def sample(self, times: np.ndarray, name: str) -> np.ndarray:
        """Track `name` linearly interpolated at `times` (seconds, any shape)."""
        track = getattr(self, name)
        grid = np.arange(self.num_samples) / CONTROL_RATE
        return np.interp(times, grid, track)


# --------------------------------------------------------------------------------------------
# Targets → smooth tracks
# --------------------------------------------------------------------------------------------

# Smoothing (standard deviation, ms) of each track: lips close fast, the jaw and the lip
# rounding move slowly, source switches are nearly instantaneous.
_SMOOTHING_MS: dict[str, float] = {
    "jaw": 24.0,
    "rounding": 30.0,
    "closure": 9.0,
    "front": 22.0,
    "occlusion": 5.0,
    "voicing": 6.0,
    "frication": 6.0,
    "noise_hz": 8.0,
    "aspiration": 6.0,
    "nasal": 12.0,
    "loudness": 25.0,
}

_DEFAULTS = {"noise_hz": 4000.0, "front": 0.5}
"""Value of a track that no segment constrains."""


def _index(t: float) -> int:
    return round(t * CONTROL_RATE)


def _filled(values: np.ndarray, default: float = 0.0) -> np.ndarray:
    """Replace NaN (free articulator) by linear interpolation between the constrained samples."""
    valid = ~np.isnan(values)
    if not valid.any():
        return np.full_like(values, default)
    grid = np.arange(values.shape[0])
    return np.interp(grid, grid[valid], values[valid])


def _pause_rest(
    rng: np.random.Generator, segments: list[Segment]
) -> dict[int, tuple[float, float]]:
    """Jaw and lip-closure rest positions of each pause (mouth mostly shut, sometimes parted)."""
    rest = {}
    for i, seg in enumerate(segments):
        if seg.phone == "SIL":
            parted = rng.random() < 0.25
            rest[i] = (
                float(rng.uniform(0.02, 0.09)),
                float(rng.uniform(0.5, 0.8) if parted else 1.0),
            )
    return rest


def _targets(segments: list[Segment], num: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-sample articulator targets (NaN where free) and the stop-release events."""
    names = (
        "jaw",
        "rounding",
        "front",
        "closure",
        "occlusion",
        "voicing",
        "frication",
        "noise_hz",
        "aspiration",
        "nasal",
        "loudness",
    )
    out: dict[str, np.ndarray] = {name: np.full(num, np.nan) for name in names}
    rest = _pause_rest(rng, segments)
    bursts = []
    for i, seg in enumerate(segments):
        a, b = _index(seg.start), max(_index(seg.end), _index(seg.start) + 1)
        phone = PHONES[seg.phone]
        _set_vowel_tract(out, phone, a, b, rest.get(i))
        _set_sources(out, phone, seg, a, b)
        if phone.kind == "stop":
            bursts.append(_release(out, phone, seg, a, b))
    out["bursts"] = np.array(bursts, dtype=np.float64).reshape(-1, 3)
    return out


def _release(
    out: dict[str, np.ndarray], phone: Phone, seg: Segment, a: int, b: int
) -> tuple[float, float, float]:
    """Open a stop over its release interval; returns its burst (time s, Hz, strength)."""
    release = min(phone.release, 0.5 * seg.duration)
    r = max(a + 1, _index(seg.end - release))
    out["closure"][r:b] = 0.0
    out["occlusion"][r:b] = 0.0
    out["voicing"][r:b] = 1.0 if phone.voiced else 0.0
    out["aspiration"][r:b] = 0.0 if phone.voiced else 0.8
    return r / CONTROL_RATE, float(phone.noise_hz or 2000.0), 0.5 if phone.voiced else 1.0


def _set_vowel_tract(
    out: dict[str, np.ndarray], phone: Phone, a: int, b: int, rest: tuple[float, float] | None
) -> None:
    """Jaw, rounding, frontness and lip-closure targets of one segment over samples [a, b)."""
    jaw, closure = rest if rest is not None else (phone.jaw, phone.closure)
    if phone.glide is not None:
        ramp = np.clip((np.arange(b - a) / max(b - a - 1, 1) - 0.25) / 0.6, 0.0, 1.0)
        start = (phone.jaw, phone.rounding, phone.front)
        for name, v0, v1 in zip(("jaw", "rounding", "front"), start, phone.glide, strict=True):
            out[name][a:b] = float(v0 or 0.0) + ramp * (v1 - float(v0 or 0.0))
    else:
        for name, value in (("jaw", jaw), ("rounding", phone.rounding), ("front", phone.front)):
            if value is not None:
                out[name][a:b] = value
    out["closure"][a:b] = closure


def _set_sources(out: dict[str, np.ndarray], phone: Phone, seg: Segment, a: int, b: int) -> None:
    """Source and level targets of one segment over samples [a, b)."""
    out["occlusion"][a:b] = phone.occlusion
    out["voicing"][a:b] = (0.35 if phone.kind == "stop" else 1.0) if phone.voiced else 0.0
    out["frication"][a:b] = phone.frication
    if phone.noise_hz is not None:
        out["noise_hz"][a:b] = phone.noise_hz
    out["aspiration"][a:b] = phone.aspiration
    out["nasal"][a:b] = 1.0 if phone.nasal else 0.0
    if phone.kind == "pause":
        level = 0.0
    elif phone.kind == "vowel":
        level = 1.0 if seg.stressed else 0.72
    else:
        level = 0.85
    out["loudness"][a:b] = level


def _pitch(
    segments: list[Segment], num: int, prosody: Prosody, rng: np.random.Generator
) -> np.ndarray:
    """f0 contour (Hz): phrase declination, accents on stressed vowels, final fall or rise."""
    t = np.arange(num) / CONTROL_RATE
    rel = np.zeros(num)
    span = prosody.pitch_range
    for phrase in sorted({s.phrase for s in segments if s.phrase >= 0}):
        members = [s for s in segments if s.phrase == phrase]
        t0, t1 = members[0].start, members[-1].end
        inside = (t >= t0) & (t < t1)
        rel[inside] += span * (0.07 - 0.14 * (t[inside] - t0) / max(t1 - t0, 1e-3))
        vowels = [s for s in members if PHONES[s.phone].kind == "vowel"]
        for seg in vowels:
            if seg.stressed:
                height = span * float(rng.uniform(0.06, 0.2))
                centre = 0.5 * (seg.start + seg.end) + 0.02
                rel += height * np.exp(-0.5 * ((t - centre) / 0.06) ** 2)
        last = vowels[-1]
        shape = -0.12 if rng.random() < 0.75 else 0.16
        ramp = np.clip((t - last.start) / max(last.duration, 1e-3), 0.0, 1.0)
        rel += span * shape * ramp * (t < last.end + 0.15)
    rel += smooth(rng.normal(0.0, 1.0, num), 0.15 * CONTROL_RATE) * 0.6
    return prosody.f0 * np.exp(smooth(rel, 0.02 * CONTROL_RATE))


def build_track(
    segments: list[Segment], prosody: Prosody, rng: np.random.Generator
) -> ArticulatoryTrack:
    """Coarticulated articulator trajectories of planned segments.

    Args:
        segments: the utterance, from `plan_utterance`.
        prosody: speaker × emotion prosody.
        rng: random generator (pause postures, pitch accents, pitch wander).

    Returns:
        The tracks at `CONTROL_RATE` Hz, covering [0, segments[-1].end).
    """
    num = _index(segments[-1].end)
    raw = _targets(segments, num, rng)
    tracks = {
        name: smooth(_filled(raw[name], _DEFAULTS.get(name, 0.0)), ms * CONTROL_RATE / 1000.0)
        for name, ms in _SMOOTHING_MS.items()
    }
    jaw = prosody.articulation * tracks["jaw"] + prosody.jaw_bias
    return ArticulatoryTrack(
        jaw=np.clip(jaw, 0.0, 1.0),
        rounding=np.clip(tracks["rounding"], -1.0, 1.0),
        closure=np.clip(tracks["closure"], 0.0, 1.0),
        front=np.clip(tracks["front"], 0.0, 1.0),
        occlusion=np.clip(tracks["occlusion"], 0.0, 1.0),
        voicing=np.clip(tracks["voicing"], 0.0, 1.0),
        frication=np.clip(tracks["frication"], 0.0, 1.0),
        noise_hz=tracks["noise_hz"],
        aspiration=np.clip(tracks["aspiration"], 0.0, 1.0),
        nasal=np.clip(tracks["nasal"], 0.0, 1.0),
        loudness=np.clip(tracks["loudness"], 0.0, None) * prosody.loudness,
        f0=_pitch(segments, num, prosody, rng),
        bursts=raw["bursts"],
        segments=segments,
    )


def sample_articulation(
    rng: np.random.Generator, duration: float, prosody: Prosody
) -> ArticulatoryTrack:
    """A random utterance of `duration` seconds and its articulatory tracks."""
    return build_track(plan_utterance(rng, duration, prosody.rate), prosody, rng)
