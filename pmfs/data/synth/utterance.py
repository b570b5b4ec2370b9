"""Utterances: the phone inventory and random phone sequences with timing.

One utterance is a sequence of `Segment`s (phones of an ARPAbet-like inventory, `PHONES`, grouped
in syllables, words and phrases, with pauses), each with a duration. Every phone sets *targets*
for some articulators and leaves the others free (`None`); `articulation.py` turns the targets
into smooth tracks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

PhoneKind = Literal["vowel", "stop", "fricative", "nasal", "approximant", "pause"]


@dataclass(frozen=True)
class Phone:
    """Articulatory targets of one phone (None: free, coarticulated from the neighbours).

    Attributes:
        symbol: ARPAbet-like name.
        kind: broad class.
        duration: mean duration in seconds at a normal speaking rate.
        jaw: jaw opening 0 (closed) – 1 (wide open).
        rounding: lip shape, -1 spread – 0 neutral – 1 rounded.
        front: tongue frontness 0 (back) – 1 (front); sets F2.
        closure: lip closure 0–1 (1: lips pressed together, as in /p b m/).
        occlusion: closure of the oral tract anywhere (lips or tongue), 0–1; silences it.
        voiced: vocal folds vibrate.
        frication: turbulence noise level 0–1.
        noise_hz: centre frequency of the frication (and of a stop's burst), Hz.
        aspiration: glottal noise level 0–1 (/h/, release of voiceless stops).
        nasal: velum open (nasal murmur).
        release: seconds at the end of a stop from the burst to the next sound.
        glide: (jaw, rounding, front) reached at the end of a diphthong.
    """

    symbol: str
    kind: PhoneKind
    duration: float
    jaw: float | None = None
    rounding: float | None = None
    front: float | None = None
    closure: float = 0.0
    occlusion: float = 0.0
    voiced: bool = True
    frication: float = 0.0
    noise_hz: float | None = None
    aspiration: float = 0.0
    nasal: bool = False
    release: float = 0.0
    glide: tuple[float, float, float] | None = None


def _vowel(
    symbol: str,
    jaw: float,
    rounding: float,
    front: float,
    duration: float,
    glide: tuple[float, float, float] | None = None,
) -> Phone:
    return Phone(symbol, "vowel", duration, jaw, rounding, front, glide=glide)


def _stop(
    symbol: str, jaw: float, closure: float, front: float | None, voiced: bool, noise_hz: float
) -> Phone:
    return Phone(
        symbol,
        "stop",
        0.085 if not voiced else 0.065,
        jaw,
        None,
        front,
        closure=closure,
        occlusion=1.0,
        voiced=voiced,
        noise_hz=noise_hz,
        release=0.012 if voiced else 0.045,
    )


def _fricative(
    symbol: str,
    jaw: float,
    closure: float,
    front: float | None,
    voiced: bool,
    noise_hz: float,
    level: float,
    rounding: float | None = None,
) -> Phone:
    return Phone(
        symbol,
        "fricative",
        0.085 if voiced else 0.11,
        jaw,
        rounding,
        front,
        closure=closure,
        occlusion=0.55,
        voiced=voiced,
        frication=level * (0.55 if voiced else 1.0),
        noise_hz=noise_hz,
    )


PHONES: dict[str, Phone] = {
    phone.symbol: phone
    for phone in (
        _vowel("AA", 0.85, 0.0, 0.15, 0.13),
        _vowel("AE", 0.75, -0.4, 0.8, 0.13),
        _vowel("AH", 0.55, 0.0, 0.45, 0.09),
        _vowel("AO", 0.7, 0.55, 0.1, 0.13),
        _vowel("EH", 0.5, -0.3, 0.75, 0.1),
        _vowel("IH", 0.28, -0.4, 0.85, 0.08),
        _vowel("IY", 0.14, -0.8, 1.0, 0.11),
        _vowel("UH", 0.28, 0.55, 0.3, 0.08),
        _vowel("UW", 0.14, 1.0, 0.2, 0.11),
        _vowel("ER", 0.32, 0.35, 0.5, 0.12),
        _vowel("AX", 0.35, 0.0, 0.5, 0.055),
        _vowel("EY", 0.45, -0.3, 0.8, 0.15, glide=(0.18, -0.6, 0.95)),
        _vowel("AY", 0.85, 0.0, 0.2, 0.17, glide=(0.2, -0.5, 0.9)),
        _vowel("AW", 0.85, 0.0, 0.2, 0.17, glide=(0.2, 0.9, 0.2)),
        _vowel("OW", 0.5, 0.7, 0.2, 0.15, glide=(0.2, 1.0, 0.15)),
        _vowel("OY", 0.6, 0.6, 0.1, 0.18, glide=(0.2, -0.4, 0.9)),
        _stop("P", 0.12, 1.0, None, voiced=False, noise_hz=1200.0),
        _stop("B", 0.12, 1.0, None, voiced=True, noise_hz=1000.0),
        _stop("T", 0.16, 0.0, 0.75, voiced=False, noise_hz=4200.0),
        _stop("D", 0.16, 0.0, 0.75, voiced=True, noise_hz=3800.0),
        _stop("K", 0.25, 0.0, 0.15, voiced=False, noise_hz=2200.0),
        _stop("G", 0.25, 0.0, 0.15, voiced=True, noise_hz=2000.0),
        Phone("M", "nasal", 0.08, 0.1, None, None, closure=1.0, occlusion=1.0, nasal=True),
        Phone("N", "nasal", 0.07, 0.16, None, 0.75, occlusion=1.0, nasal=True),
        Phone("NG", "nasal", 0.08, 0.25, None, 0.15, occlusion=1.0, nasal=True),
        _fricative("F", 0.14, 0.8, None, voiced=False, noise_hz=6500.0, level=0.45),
        _fricative("V", 0.14, 0.8, None, voiced=True, noise_hz=6500.0, level=0.45),
        _fricative("TH", 0.2, 0.0, 0.7, voiced=False, noise_hz=6800.0, level=0.4),
        _fricative("DH", 0.2, 0.0, 0.7, voiced=True, noise_hz=6800.0, level=0.4),
        _fricative("S", 0.1, 0.0, 0.8, voiced=False, noise_hz=5600.0, level=1.0, rounding=-0.2),
        _fricative("Z", 0.1, 0.0, 0.8, voiced=True, noise_hz=5600.0, level=1.0, rounding=-0.2),
        _fricative("SH", 0.12, 0.0, 0.7, voiced=False, noise_hz=3300.0, level=1.0, rounding=0.6),
        _fricative("ZH", 0.12, 0.0, 0.7, voiced=True, noise_hz=3300.0, level=1.0, rounding=0.6),
        Phone("HH", "fricative", 0.07, aspiration=1.0, voiced=False),
        Phone("L", "approximant", 0.06, 0.3, None, 0.6, occlusion=0.3),
        Phone("R", "approximant", 0.06, 0.25, 0.5, 0.4, occlusion=0.3),
        Phone("W", "approximant", 0.07, 0.14, 1.0, 0.2, closure=0.35, occlusion=0.3),
        Phone("Y", "approximant", 0.06, 0.12, -0.6, 1.0, occlusion=0.3),
        Phone("SIL", "pause", 0.2, 0.05, 0.0, 0.5, closure=0.9, voiced=False),
    )
}
"""The phone inventory, by symbol."""


def _weighted(spec: str) -> tuple[tuple[tuple[str, ...], float], ...]:
    """Parse "P.L:0.15 -:1.2 ..." into ((("P", "L"), 0.15), ((), 1.2), ...)."""
    out = []
    for item in spec.split():
        phones, weight = item.split(":")
        out.append((tuple(p for p in phones.split(".") if p != "-"), float(weight)))
    return tuple(out)


# Syllable building blocks with their relative frequencies ("-" = none, "." joins a cluster).
# Labials are kept common so that lip closures, the clearest visual event, happen several times
# per second.
_ONSETS = _weighted("""
    -:1.2 P:0.8 B:0.8 M:0.9 F:0.6 V:0.3 W:0.5 T:0.7 D:0.6 N:0.6 S:0.7 Z:0.2 SH:0.3 K:0.6 G:0.3
    L:0.5 R:0.5 Y:0.2 HH:0.4 TH:0.2 DH:0.4 S.T:0.2 S.P:0.15 P.L:0.15 B.R:0.15 K.L:0.1 T.R:0.15
    F.R:0.1 S.M:0.08 K.W:0.08 G.R:0.08
""")
_NUCLEI = _weighted("""
    AA:1.0 AE:1.0 AH:1.0 AO:0.7 EH:1.0 IH:1.0 IY:1.0 UH:0.4 UW:0.8 ER:0.5 EY:0.6 AY:0.6 AW:0.4
    OW:0.7 OY:0.2
""")
_CODAS = _weighted("""
    -:2.6 T:0.6 D:0.4 N:0.7 S:0.5 Z:0.4 K:0.4 M:0.5 P:0.3 L:0.4 R:0.4 NG:0.2 F:0.2 V:0.15 TH:0.1
    SH:0.1 N.D:0.15 N.T:0.12 S.T:0.12 M.P:0.1 K.S:0.1 L.D:0.08
""")


@dataclass(frozen=True)
class Segment:
    """One phone (or pause) of an utterance.

    Attributes:
        phone: symbol in `PHONES`.
        start: start time in seconds.
        end: end time in seconds.
        stressed: the phone belongs to a stressed syllable.
        phrase: index of the phrase (-1 for pauses).
        phrase_final: the phone belongs to the last syllable of its phrase.
    """

    phone: str
    start: float
    end: float
    stressed: bool = False
    phrase: int = -1
    phrase_final: bool = False

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.end - self.start


# --------------------------------------------------------------------------------------------
# Planning: syllables, words, phrases
# --------------------------------------------------------------------------------------------


def _choose(
    rng: np.random.Generator, options: tuple[tuple[tuple[str, ...], float], ...]
) -> tuple[str, ...]:
    weights = np.array([w for _, w in options], dtype=np.float64)
    return options[int(rng.choice(len(options), p=weights / weights.sum()))][0]


def _syllable(rng: np.random.Generator) -> list[str]:
    return [*_choose(rng, _ONSETS), *_choose(rng, _NUCLEI), *_choose(rng, _CODAS)]


def _phone_duration(
    rng: np.random.Generator, symbol: str, stressed: bool, final: bool, rate: float
) -> float:
    phone = PHONES[symbol]
    duration = phone.duration / rate * float(np.exp(rng.normal(0.0, 0.16)))
    if phone.kind == "vowel":
        duration *= 1.35 if stressed else 0.8
    if final:
        duration *= 1.35
    return max(duration, 0.03)


def _word(rng: np.random.Generator, start: float, phrase: int, rate: float) -> list[Segment]:
    """A word of 1–3 syllables starting at `start`, one of them stressed."""
    count = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
    stress = int(rng.integers(count))
    segments: list[Segment] = []
    t = start
    for index in range(count):
        phones = _syllable(rng)
        if index != stress and rng.random() < 0.5:
            phones = [("AX" if PHONES[p].kind == "vowel" else p) for p in phones]
        for symbol in phones:
            duration = _phone_duration(rng, symbol, index == stress, False, rate)
            segments.append(Segment(symbol, t, t + duration, index == stress, phrase))
            t += duration
    return segments


def _fitting_word(
    rng: np.random.Generator, start: float, phrase: int, rate: float, limit: float
) -> list[Segment] | None:
    """A word that ends (with phrase-final lengthening) before `limit`; None after 3 tries."""
    for _ in range(3):
        word = _word(rng, start, phrase, rate)
        if word[-1].end + 0.35 * (word[-1].end - start) <= limit:
            return word
    return None


def _mark_phrase_final(segments: list[Segment]) -> list[Segment]:
    """Lengthen the phones after the last vowel's onset of a phrase (phrase-final lengthening)."""
    last_vowel = max(i for i, s in enumerate(segments) if PHONES[s.phone].kind == "vowel")
    start = segments[0].start
    out = []
    t = start
    for i, seg in enumerate(segments):
        duration = seg.duration * (1.35 if i >= last_vowel else 1.0)
        out.append(
            dataclasses.replace(seg, start=t, end=t + duration, phrase_final=i >= last_vowel)
        )
        t += duration
    return out


def plan_utterance(rng: np.random.Generator, duration: float, rate: float) -> list[Segment]:
    """Random phrases of words, separated by pauses, filling `duration` seconds.

    The utterance starts and ends with silence (0.12–0.45 s lead, 0.2–0.4 s trail at least);
    phrases hold 2–5 words; a word that would not fit ends the utterance (the first word is
    always spoken).

    Args:
        rng: random generator.
        duration: total length in seconds, silences included.
        rate: speaking-rate factor (> 1 is faster).

    Returns:
        Segments covering [0, duration] without gaps, pauses as "SIL".
    """
    lead = float(rng.uniform(0.12, 0.45))
    speech_end = duration - float(rng.uniform(0.2, 0.4))
    segments = [Segment("SIL", 0.0, lead)]
    t, phrase = lead, 0
    while True:
        words = _phrase(rng, t, phrase, rate, speech_end, first=phrase == 0)
        if not words:
            break
        segments += words
        t = words[-1].end
        pause = float(rng.uniform(0.15, 0.4))
        if t + pause + 0.3 > speech_end:
            break
        segments.append(Segment("SIL", t, t + pause))
        t, phrase = t + pause, phrase + 1
    if segments[-1].phone == "SIL":
        segments[-1] = Segment("SIL", segments[-1].start, max(duration, segments[-1].end))
    elif segments[-1].end < duration:
        segments.append(Segment("SIL", segments[-1].end, duration))
    return _fit(segments, duration)


def _phrase(
    rng: np.random.Generator, start: float, phrase: int, rate: float, limit: float, first: bool
) -> list[Segment]:
    """2–5 words from `start` that end before `limit` (the first phrase has at least one)."""
    segments: list[Segment] = []
    t = start
    for _ in range(int(rng.integers(2, 6))):
        word = _fitting_word(rng, t, phrase, rate, limit)
        if word is None and first and not segments:
            word = _word(rng, t, phrase, rate)
        if word is None:
            break
        segments += word
        t = word[-1].end
        if rng.random() < 0.12:
            gap = float(rng.uniform(0.04, 0.1))
            segments.append(Segment("SIL", t, t + gap, phrase=phrase))
            t += gap
    while segments and segments[-1].phone == "SIL":
        segments.pop()
    return _mark_phrase_final(segments) if segments else []


def _fit(segments: list[Segment], duration: float) -> list[Segment]:
    """Scale times so the segments end exactly at `duration` (a no-op when they already do)."""
    scale = duration / segments[-1].end
    return [dataclasses.replace(s, start=s.start * scale, end=s.end * scale) for s in segments]
