"""Formant speech synthesis from articulatory tracks (16 kHz, source–filter, Klatt-style).

Sources, made at the audio rate:

- glottal: a Rosenberg pulse train (open quotient, rounded opening, fast closing) at `f0` with
  cycle-to-cycle jitter and shimmer, differentiated (lip radiation), gated by `voicing`;
- aspiration: noise scaled by `aspiration` plus breathiness during voicing, stronger in the
  glottis' open phase;
- frication: noise scaled by `frication`, plus an exponentially decaying burst at each stop
  release.

Filters, applied per 8 ms frame in the STFT domain (n_fft 512, Hann, 75 % overlap): the glottal
and aspiration sources go through a cascade of five formant resonators F1–F5 (plus a nasal tract
and a low "voice bar" resonance while the oral tract is closed); F1 rises with the jaw opening,
F2 with the tongue frontness, rounding and lip closure lower F1–F3, and the speaker's vocal-tract
length scales them all. Occlusion silences the oral path, so a lip closure is silence (or a
nasal murmur for /m/) followed by a burst. Frication noise goes through a broad resonance at the
phone's noise frequency. The result is scaled by the loudness track, normalised to a fixed speech
level and given a faint room-noise floor (no digital silence, as in a real recording).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from pmfs.audio import SAMPLE_RATE
from pmfs.data.synth.articulation import CONTROL_RATE, ArticulatoryTrack
from pmfs.data.synth.emotion import EmotionStyle
from pmfs.data.synth.seeds import smooth

N_FFT = 512
"""STFT size of the time-varying filter (32 ms)."""
HOP = 128
"""STFT hop (8 ms): the filter's update rate."""
SPEECH_RMS = 0.08
"""RMS level of the loud (voiced) parts of every clip, full scale 1.0."""
NOISE_FLOOR_RMS = 0.0012
"""RMS of the room-noise floor (about -58 dBFS)."""


@dataclass(frozen=True)
class Voice:
    """A speaker's voice.

    Attributes:
        f0: mean fundamental frequency in Hz (about 85–150 male, 160–260 female).
        formant_scale: vocal-tract length factor on every formant (1.0 adult male, ~1.15 female).
        jitter: relative cycle-to-cycle f0 perturbation (0.003–0.015).
        shimmer: relative cycle-to-cycle amplitude perturbation (0.02–0.08).
        breathiness: aspiration noise mixed into voicing (0–0.4).
        open_quotient: fraction of a glottal cycle with the folds open (0.45–0.75).
        rate: the speaker's speaking-rate factor.
    """

    f0: float
    formant_scale: float = 1.0
    jitter: float = 0.008
    shimmer: float = 0.04
    breathiness: float = 0.1
    open_quotient: float = 0.6
    rate: float = 1.0

    def with_emotion(self, style: EmotionStyle) -> Voice:
        """The voice under an emotion: jitter and breathiness change (pitch is in the track)."""
        return dataclasses.replace(
            self,
            jitter=self.jitter * style.jitter,
            breathiness=min(0.6, self.breathiness + style.breathiness),
        )


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def _audio_rate(track: np.ndarray, num_samples: int) -> np.ndarray:
    """A control-rate track linearly interpolated at every audio sample."""
    t = np.arange(num_samples) / SAMPLE_RATE
    return np.interp(t, np.arange(track.shape[0]) / CONTROL_RATE, track)


def glottal_source(
    f0: np.ndarray, voice: Voice, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Differentiated Rosenberg glottal flow at the audio rate.

    Args:
        f0: (N,) fundamental frequency per audio sample, Hz.
        voice: open quotient, jitter and shimmer.
        rng: random generator.

    Returns:
        (N,) flow derivative (unit peak flow) and (N,) open-phase indicator in [0, 1].
    """
    n = f0.shape[0]
    per_cycle = smooth(rng.normal(0.0, 1.0, n // 64 + 2), 0.7)
    jitter = voice.jitter * np.repeat(per_cycle, 64)[:n] / max(per_cycle.std(), 1e-6)
    phase = np.cumsum(f0 * (1.0 + jitter) / SAMPLE_RATE)
    cycle = np.floor(phase).astype(np.int64)
    frac = phase - cycle
    oq = voice.open_quotient
    rise = 0.62 * oq
    flow = np.where(
        frac < rise,
        0.5 * (1.0 - np.cos(np.pi * frac / rise)),
        np.where(frac < oq, np.cos(0.5 * np.pi * (frac - rise) / (oq - rise)), 0.0),
    )
    shimmer = 1.0 + voice.shimmer * rng.normal(0.0, 1.0, int(cycle[-1]) + 2)
    flow *= shimmer[cycle]
    derivative = np.diff(flow, prepend=flow[0]) * SAMPLE_RATE / 100.0 / np.maximum(f0, 40.0)
    return derivative, (frac < oq).astype(np.float64)


def noise_sources(
    track: ArticulatoryTrack, voice: Voice, open_phase: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Aspiration and frication noise at the audio rate (N = open_phase.shape[0]).

    Returns:
        (N,) aspiration (laryngeal) noise and (N,) frication noise including stop bursts.
    """
    n = open_phase.shape[0]
    voicing = _audio_rate(track.voicing, n)
    aspiration_level = _audio_rate(track.aspiration, n)
    breath = voice.breathiness * voicing * (0.3 + 0.7 * open_phase)
    aspiration = rng.normal(0.0, 1.0, n) * (0.3 * aspiration_level + 0.2 * breath)
    frication = rng.normal(0.0, 1.0, n) * _audio_rate(track.frication, n)
    burst_length = int(0.02 * SAMPLE_RATE)
    decay = np.exp(-np.arange(burst_length) / (0.004 * SAMPLE_RATE))
    for time, _hz, strength in track.bursts:
        start = round(float(time) * SAMPLE_RATE)
        stop = min(start + burst_length, n)
        if start < stop:
            frication[start:stop] += (
                2.5 * strength * decay[: stop - start] * rng.normal(0.0, 1.0, stop - start)
            )
    return aspiration, frication


# --------------------------------------------------------------------------------------------
# Filters (STFT domain)
# --------------------------------------------------------------------------------------------


@functools.cache
def _bins() -> np.ndarray:
    """(F,) frequencies of the rfft bins, Hz."""
    return np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)


def resonance(centre: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """Magnitude response of digital two-pole resonators, unit gain at 0 Hz (Klatt 1980).

    Args:
        centre: (T,) resonance frequencies, Hz.
        bandwidth: (T,) bandwidths, Hz.

    Returns:
        (T, F) |H(f)| at the STFT bins.
    """
    r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)[:, None]
    theta = (2 * np.pi * centre / SAMPLE_RATE)[:, None]
    z1 = np.exp(-1j * 2 * np.pi * _bins() / SAMPLE_RATE)[None, :]
    denominator = np.abs(1.0 - 2.0 * r * np.cos(theta) * z1 + r * r * z1 * z1)
    return (1.0 - 2.0 * r * np.cos(theta) + r * r) / denominator


def _frame_controls(track: ArticulatoryTrack, num_frames: int) -> dict[str, np.ndarray]:
    """Control values at the centre of each STFT frame."""
    times = np.arange(num_frames) * HOP / SAMPLE_RATE
    names = (
        "jaw",
        "rounding",
        "closure",
        "front",
        "occlusion",
        "voicing",
        "nasal",
        "frication",
        "noise_hz",
    )
    return {name: track.sample(times, name) for name in names}


def vocal_tract(c: dict[str, np.ndarray], scale: float) -> np.ndarray:
    """(T, F) magnitude response of the laryngeal path: oral formants, nasal tract, voice bar.

    Args:
        c: frame controls (see `_frame_controls`), each (T,).
        scale: the speaker's formant scale.
    """
    rounded = np.maximum(c["rounding"], 0.0)
    spread = np.maximum(-c["rounding"], 0.0)
    lips = 1.0 - 0.22 * c["closure"]
    formants = [
        (230 + 620 * c["jaw"]) * (1 - 0.12 * rounded) * lips,
        (800 + 1450 * c["front"]) * (1 - 0.2 * rounded) * (1 + 0.05 * spread) * lips,
        (2400 + 300 * c["front"] - 250 * rounded) * (1 - 0.05 * c["closure"]),
        np.full_like(rounded, 3400.0),
        np.full_like(rounded, 4400.0),
    ]
    oral = np.ones((rounded.shape[0], _bins().shape[0]))
    for k, (centre, bandwidth) in enumerate(zip(formants, (70, 90, 140, 220, 320), strict=True)):
        oral *= resonance(scale * centre, np.full_like(centre, bandwidth * (1 + 0.1 * k)))
    nasal_tract = resonance(np.full_like(rounded, 260.0 * scale), np.full_like(rounded, 90.0))
    nasal_tract *= resonance(np.full_like(rounded, 2100.0 * scale), np.full_like(rounded, 250.0))
    voice_bar = resonance(np.full_like(rounded, 180.0), np.full_like(rounded, 120.0))
    open_tract = (1.0 - c["occlusion"]) * (0.3 + 0.7 * np.sqrt(c["jaw"]))
    murmur = 0.45 * c["nasal"]
    bar = 0.12 * c["occlusion"] * (1.0 - c["nasal"]) * c["voicing"]
    return (
        open_tract[:, None] * oral
        + murmur[:, None] * nasal_tract * 0.5
        + bar[:, None] * voice_bar * 0.3
    )


def frication_filter(c: dict[str, np.ndarray]) -> np.ndarray:
    """(T, F) magnitude response of the frication path: a broad peak at the noise frequency."""
    centre = np.clip(c["noise_hz"], 800.0, 7200.0)[:, None]
    # Sibilants are narrow (about an octave), labio-/dental fricatives nearly flat and weak.
    width = np.where(centre > 6000.0, 1.6, 0.6)
    octaves = np.log2(np.maximum(_bins()[None, :], 50.0) / centre)
    return 0.06 * (np.exp(-0.5 * (octaves / width) ** 2) + 0.003)


def _stft(signal: np.ndarray) -> np.ndarray:
    """(T, F) STFT with a periodic Hann window, frames centred on multiples of HOP."""
    padded = np.pad(signal, N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    return np.fft.rfft(frames * _window(), axis=1)


def _istft(spectrum: np.ndarray, num_samples: int) -> np.ndarray:
    """Weighted overlap-add inverse of `_stft` (exact for an unmodified spectrum)."""
    frames = np.fft.irfft(spectrum, n=N_FFT, axis=1) * _window()
    total = (frames.shape[0] - 1) * HOP + N_FFT
    out = np.zeros(total)
    norm = np.zeros(total)
    for k in range(N_FFT // HOP):  # add the frames in HOP-aligned groups, no Python loop per frame
        group = frames[k :: N_FFT // HOP]
        starts = (np.arange(group.shape[0]) * (N_FFT // HOP) + k) * HOP
        length = group.shape[0] * N_FFT
        out[starts[0] : starts[0] + length] += group.reshape(-1)
        norm[starts[0] : starts[0] + length] += np.tile(_window() ** 2, group.shape[0])
    out = out[N_FFT // 2 : N_FFT // 2 + num_samples]
    return out / np.maximum(norm[N_FFT // 2 : N_FFT // 2 + num_samples], 1e-8)


@functools.cache
def _window() -> np.ndarray:
    n = np.arange(N_FFT)
    return 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)


# --------------------------------------------------------------------------------------------
# Synthesis
# --------------------------------------------------------------------------------------------


def _noise_floor(num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Faint pink-ish room noise of RMS `NOISE_FLOOR_RMS`."""
    spectrum = np.fft.rfft(rng.normal(0.0, 1.0, num_samples))
    freqs = np.fft.rfftfreq(num_samples, 1.0 / SAMPLE_RATE)
    spectrum /= np.sqrt(np.maximum(freqs, 50.0) / 50.0)
    noise = np.fft.irfft(spectrum, n=num_samples)
    return noise * NOISE_FLOOR_RMS / max(float(noise.std()), 1e-12)


def synthesize(
    track: ArticulatoryTrack, voice: Voice, rng: np.random.Generator, num_samples: int
) -> np.ndarray:
    """Speech audio of an articulatory track.

    Args:
        track: the utterance's articulator trajectories.
        voice: the speaker's voice (under the clip's emotion, see `Voice.with_emotion`).
        rng: random generator (jitter, shimmer, noise sources).
        num_samples: output length; the track is held at its last value beyond its end.

    Returns:
        (num_samples,) float32 mono waveform at 16 kHz, full scale 1.0.
    """
    f0 = _audio_rate(track.f0, num_samples)
    glottal, open_phase = glottal_source(f0, voice, rng)
    voicing = _audio_rate(track.voicing, num_samples)
    aspiration, frication = noise_sources(track, voice, open_phase, rng)
    laryngeal = _stft(glottal * voicing + aspiration)
    controls = _frame_controls(track, laryngeal.shape[0])
    spectrum = laryngeal * vocal_tract(controls, voice.formant_scale)
    spectrum += _stft(frication) * frication_filter(controls)
    speech = _istft(spectrum, num_samples)
    # Fixed level for the voiced parts, then the loudness track (stress, emotion) on top.
    voiced = voicing > 0.5
    level = float(np.sqrt(np.mean(speech[voiced] ** 2))) if voiced.sum() > 160 else 1.0
    speech *= SPEECH_RMS / max(level, 1e-9) * _audio_rate(track.loudness, num_samples)
    audio = 0.95 * np.tanh(speech / 0.95) + _noise_floor(num_samples, rng)
    return audio.astype(np.float32)
