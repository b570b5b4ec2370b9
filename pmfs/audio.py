"""Audio I/O and log-mel features (DESIGN §2, Audio).

Conventions, shared by every stage and loader:

- Waveforms are mono float32 at `SAMPLE_RATE` = 16 kHz, shape (N,). Any input rate and channel
  count is converted: channels are averaged, then the signal is resampled with soxr ("HQ").
- Log-mel features follow the Wav2Lip / IP-LAP recipe: pre-emphasis 0.97, STFT (n_fft 800, hop
  200, periodic Hann window 800, centred frames with reflect padding), magnitude, 80 Slaney mel
  bands 55–7600 Hz, `20·log10(max(1e-5, x)) − 20` dB, then `(db + 100) / 100` mapped to [-4, 4]
  and clipped. A (N,) waveform gives (80, 1 + N // 200) features: 80 mel frames per second.
- Video runs at `VIDEO_FPS` = 25, so video frame t sits at mel index t·80/25 = 3.2t. Its window is
  the `MEL_WINDOW` = 16 mel frames `[c − 8, c + 8)` with `c = round(3.2t)` (the centre is column 8
  of the window), edge-padded (the first/last mel frame repeated) at the clip's ends.

The module imports neither librosa nor scipy (numba's import alone costs ~0.5 s per process);
the STFT and the Slaney filterbank are reimplemented in numpy and tested against librosa.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import TypeVar

import av
import numpy as np
import soundfile as sf
import soxr

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""Sample rate of every waveform in the project, Hz."""
VIDEO_FPS = 25
"""Frame rate of every video in the project."""
NUM_MELS = 80
"""Mel bands per frame."""
HOP_LENGTH = 200
"""STFT hop in samples: 16000 / 200 = 80 mel frames per second."""
MEL_FPS = SAMPLE_RATE // HOP_LENGTH
"""Mel frames per second (80)."""
MEL_WINDOW = 16
"""Mel frames per video frame's window (0.2 s)."""
N_FFT = 800
"""STFT size and window length (50 ms)."""
PREEMPHASIS = 0.97
MEL_FMIN = 55.0
MEL_FMAX = 7600.0
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS_VALUE = 4.0
"""Features are scaled to [-MAX_ABS_VALUE, MAX_ABS_VALUE]."""
SILENCE_PEAK = 1e-4
"""A clip whose peak |amplitude| is below this (full scale 1.0) is treated as silent."""

PathLike = str | os.PathLike[str]
_FrameIndex = TypeVar("_FrameIndex", int, np.ndarray)


class AudioError(ValueError):
    """An audio file or array that cannot be used; the message names the file and the fix."""


class EmptyAudioError(AudioError):
    """A 0-byte file, or a file that decodes to no samples."""


class UnreadableAudioError(AudioError):
    """A file that is not audio, is corrupt, or has no audio stream."""


class SilentAudioError(AudioError):
    """A clip that is all zeros or whose peak amplitude is below `SILENCE_PEAK`."""


def load_audio(
    path: PathLike, sample_rate: int = SAMPLE_RATE, *, allow_silent: bool = False
) -> np.ndarray:
    """Read the audio of a file as mono float32 at `sample_rate`.

    Reads wav/flac/ogg/mp3 with soundfile and everything else (m4a, aac, the audio track of
    mp4/flv/mkv, ...) with PyAV. Channels are averaged, the rate converted with soxr.

    Args:
        path: An audio file, or a video file with an audio track (the first one is used).
        sample_rate: Output rate in Hz.
        allow_silent: Return silent clips instead of raising `SilentAudioError`, for callers
            that record silence themselves.

    Returns:
        (N,) float32 waveform, nominally in [-1, 1].

    Raises:
        FileNotFoundError: `path` does not exist.
        EmptyAudioError: The file is 0 bytes or holds no samples.
        UnreadableAudioError: The file is not audio, is corrupt, or has no audio stream.
        SilentAudioError: The clip is silent (peak < `SILENCE_PEAK`) and `allow_silent` is False.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"audio file not found: {path}")
    if not path.is_file():
        raise UnreadableAudioError(f"{path} is not a regular file; pass an audio or video file")
    if path.stat().st_size == 0:
        raise EmptyAudioError(f"{path} is empty (0 bytes); re-export or re-download it")
    try:
        samples, rate = _read_soundfile(path)
    except sf.SoundFileError:
        samples, rate = _read_pyav(path)
    if samples.shape[0] == 0:
        raise EmptyAudioError(f"{path} decodes to no audio samples; re-export it")
    if not np.isfinite(samples).all():
        raise UnreadableAudioError(f"{path} holds NaN or infinite samples; the file is corrupt")
    audio = to_mono_16k(samples, rate, sample_rate)
    if not allow_silent:
        check_not_silent(audio, path)
    return audio


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    """Read with libsndfile: ((N, C) float32, rate). Raises `sf.SoundFileError` if it cannot."""
    samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return samples, int(rate)


def _read_pyav(path: Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with PyAV: ((N, C) float32, rate)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise UnreadableAudioError(
                    f"{path} has no audio stream; pass a file with an audio track"
                )
            stream = container.streams.audio[0]
            # fltp keeps the layout and rate: float planar frames, (C, n) each.
            resampler = av.AudioResampler(format="fltp")
            chunks: list[np.ndarray] = []
            rate = 0
            for frame in container.decode(stream):
                rate = frame.sample_rate
                chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray() for out in resampler.resample(None))
            declared = _declared_samples(stream, rate)
    except av.FFmpegError as exc:
        raise UnreadableAudioError(
            f"cannot read audio from {path}: {exc}; check that it is a complete audio/video file "
            "(wav, flac, mp3, m4a, aac, mp4, flv, ...)"
        ) from exc
    if not chunks:
        return np.zeros((0, 1), dtype=np.float32), max(rate, 1)
    samples = np.concatenate(chunks, axis=1).T  # (N, C)
    # Decoders emit whole codec frames (1024 samples for AAC): cut the last frame's padding.
    if 0 < declared < samples.shape[0] <= declared + _MAX_CODEC_PADDING:
        samples = samples[:declared]
    return samples.astype(np.float32, copy=False), rate


_MAX_CODEC_PADDING = 4096
"""Decoded samples past a stream's declared duration are trimmed up to this many."""


def _declared_samples(stream: av.audio.stream.AudioStream, rate: int) -> int:
    """Samples in the stream according to the container (0 when it does not say)."""
    if not stream.duration or stream.time_base is None or rate <= 0:
        return 0
    return round(stream.duration * stream.time_base * rate)


def to_mono_16k(
    audio: np.ndarray, sample_rate: float, target_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Downmix (mean over channels) and resample (soxr "HQ") an in-memory waveform.

    Args:
        audio: (N,) or (N, C) samples, channels last (soundfile's layout). Float input is taken
            as full scale 1.0; integer input is scaled by its dtype's range.
        sample_rate: Rate of `audio` in Hz.
        target_rate: Output rate in Hz (default 16 kHz).

    Returns:
        (M,) float32 with M = round(N · target_rate / sample_rate).
    """
    audio = np.asarray(audio)
    if audio.ndim not in (1, 2):
        raise AudioError(f"audio must be (N,) or (N, C), got shape {audio.shape}")
    if audio.ndim == 2 and audio.shape[1] > 32:
        raise AudioError(
            f"audio of shape {audio.shape} looks channels-first; pass (N, C), e.g. audio.T"
        )
    if sample_rate <= 0:
        raise AudioError(f"sample_rate must be positive, got {sample_rate}")
    if np.issubdtype(audio.dtype, np.integer):
        info = np.iinfo(audio.dtype)
        half_range = (int(info.max) - int(info.min) + 1) / 2
        audio = (audio.astype(np.float32) - (int(info.max) + int(info.min) + 1) / 2) / half_range
    mono = audio.astype(np.float32, copy=False)
    if mono.ndim == 2:
        mono = mono.mean(axis=1, dtype=np.float32)
    if sample_rate != target_rate and mono.size > 0:
        mono = soxr.resample(mono, sample_rate, target_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def check_not_silent(
    audio: np.ndarray, path: PathLike | None = None, threshold: float = SILENCE_PEAK
) -> None:
    """Raise `SilentAudioError` if the peak |amplitude| of `audio` is below `threshold`.

    Args:
        audio: Waveform of any shape, full scale 1.0.
        path: The file it came from, named in the message.
        threshold: Peak amplitude under which the clip counts as silent.
    """
    peak = float(np.max(np.abs(audio))) if np.size(audio) else 0.0
    if peak < threshold:
        source = str(path) if path is not None else "audio array"
        raise SilentAudioError(
            f"{source} is silent (peak amplitude {peak:.2e} < {threshold:g}); check the "
            "recording, or pass allow_silent=True to keep silent clips"
        )


def num_video_frames(num_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Video frames (25 fps) covering `num_samples` of audio: ceil(seconds × 25)."""
    return -(-int(num_samples) * VIDEO_FPS // int(sample_rate))


def mel(audio: np.ndarray) -> np.ndarray:
    """Log-mel features of a 16 kHz mono waveform (Wav2Lip / IP-LAP convention).

    Args:
        audio: (N,) float waveform at 16 kHz, full scale 1.0.

    Returns:
        (80, M) float32 in [-4, 4], M = 1 + N // 200 (80 frames per second); column j is
        centred on sample 200·j.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise AudioError(f"mel needs a non-empty (N,) waveform, got shape {audio.shape}")
    emphasized = np.empty_like(audio)
    emphasized[0] = audio[0]
    emphasized[1:] = audio[1:] - PREEMPHASIS * audio[:-1]
    magnitude = np.abs(_stft(emphasized))  # (N_FFT // 2 + 1, M)
    mel_amplitude = _mel_filterbank() @ magnitude  # (80, M)
    db = 20.0 * np.log10(np.maximum(1e-5, mel_amplitude)) - REF_LEVEL_DB
    scaled = 2 * MAX_ABS_VALUE * (db - MIN_LEVEL_DB) / -MIN_LEVEL_DB - MAX_ABS_VALUE
    return np.clip(scaled, -MAX_ABS_VALUE, MAX_ABS_VALUE).astype(np.float32)


def _stft(audio: np.ndarray) -> np.ndarray:
    """Centred STFT with reflect padding, as librosa.stft(pad_mode="reflect"): (401, M) complex."""
    padded = np.pad(audio, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]  # (M, N_FFT)
    return np.fft.rfft(frames * _hann_window(), axis=1).T


@functools.cache
def _hann_window() -> np.ndarray:
    """Periodic Hann window of N_FFT samples (scipy.signal.get_window("hann", fftbins=True))."""
    n = np.arange(N_FFT)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float32)


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above (librosa, htk=False)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, logarithmic, linear)


def _mel_to_hz(mels: np.ndarray | float) -> np.ndarray:
    """Inverse of `_hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    linear = mels * (200.0 / 3)
    logarithmic = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels - 15.0))
    return np.where(mels >= 15.0, logarithmic, linear)


@functools.cache
def _mel_filterbank() -> np.ndarray:
    """(80, 401) float32 Slaney-normalised triangular filters, = librosa.filters.mel(...)."""
    fft_freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(MEL_FMIN), _hz_to_mel(MEL_FMAX), NUM_MELS + 2)
    )  # (82,) band edges in Hz
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]  # (82, 401)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # equal area per band (Slaney)
    return weights.astype(np.float32)


def _window_start(frame: _FrameIndex) -> _FrameIndex:
    """First mel index of frame(s) `frame`'s window: round(frame · 80 / 25) − 8, exactly.

    Integer arithmetic; frame · 80 / 25 has fractional part in {0, .2, .4, .6, .8}: no ties.
    """
    centre = (2 * MEL_FPS * frame + VIDEO_FPS) // (2 * VIDEO_FPS)
    return centre - MEL_WINDOW // 2


def mel_window(mel: np.ndarray, frame: int) -> np.ndarray:
    """The 16 mel frames centred on video frame `frame`, edge-padded at the clip's ends.

    Cheap enough to call per sample from a cached mel (a slice copy; fancy indexing only at the
    ends). Frames outside the clip are allowed and clamp to its first/last mel frame.

    Args:
        mel: (80, M) features from `mel`.
        frame: Video frame index (25 fps).

    Returns:
        (80, 16) array (a copy) holding mel columns `round(3.2·frame) − 8 … round(3.2·frame) + 7`,
        each clamped to [0, M − 1].
    """
    num_columns = mel.shape[-1]
    start = _window_start(int(frame))
    if start >= 0 and start + MEL_WINDOW <= num_columns:
        return np.array(mel[:, start : start + MEL_WINDOW])  # a plain ndarray, even from a memmap
    columns = np.clip(np.arange(start, start + MEL_WINDOW), 0, num_columns - 1)
    return np.ascontiguousarray(mel[:, columns])


def mel_windows(audio_or_mel: np.ndarray, num_frames: int | None = None) -> np.ndarray:
    """Mel windows of every video frame of a clip.

    Args:
        audio_or_mel: (N,) 16 kHz waveform, or (80, M) features from `mel`.
        num_frames: Number of video frames T. Default: `num_video_frames(N)` for a waveform;
            for features, ceil((M − 1) · 25 / 80), which can differ by one from the waveform's
            count, so pass it when the clip's frame count is known.

    Returns:
        (T, 80, 16) float32; entry t equals `mel_window(mel, t)`.
    """
    array = np.asarray(audio_or_mel)
    if array.ndim == 1:
        features = mel(array)
        default_frames = num_video_frames(array.shape[0])
    elif array.ndim == 2 and array.shape[0] == NUM_MELS:
        features = array.astype(np.float32, copy=False)
        default_frames = -(-(array.shape[1] - 1) * VIDEO_FPS // MEL_FPS)
    else:
        raise AudioError(f"expected a (N,) waveform or ({NUM_MELS}, M) mel, got {array.shape}")
    total = default_frames if num_frames is None else int(num_frames)
    starts = _window_start(np.arange(total, dtype=np.int64))  # (T,)
    columns = np.clip(starts[:, None] + np.arange(MEL_WINDOW), 0, features.shape[1] - 1)
    return np.ascontiguousarray(features[:, columns].transpose(1, 0, 2))  # (T, 80, 16)
