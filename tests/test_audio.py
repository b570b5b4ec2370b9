"""Tests of pmfs.audio: loading any format/rate, the Wav2Lip log-mel, windows, and errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from pmfs import audio
from pmfs.audio import (
    AudioError,
    EmptyAudioError,
    SilentAudioError,
    UnreadableAudioError,
    check_not_silent,
    load_audio,
    mel,
    mel_window,
    mel_windows,
    num_video_frames,
    to_mono_16k,
)

SAMPLE_SECONDS = 2.73
SAMPLE_LENGTH = 43680  # 2.73 s at 16 kHz
SAMPLE_FRAMES = 69  # ceil(2.73 · 25)


def _encode_with_pyav(path: Path, samples: np.ndarray, rate: int, codec: str) -> None:
    """Write (N, C) float samples with a PyAV encoder (libmp3lame → .mp3, aac → .m4a)."""
    layout = "stereo" if samples.shape[1] == 2 else "mono"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        # Packed float: (1, N · C), interleaved.
        packed = np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(packed, format="flt", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.fixture(scope="module")
def sample_audio(sample_wav: Path) -> np.ndarray:
    """The sample clip as loaded: (43680,) float32, 16 kHz mono."""
    return load_audio(sample_wav)


@pytest.fixture(scope="module")
def sample_44k_stereo(sample_wav: Path) -> np.ndarray:
    """The sample clip resampled to 44.1 kHz, still stereo: (120393, 2) float32."""
    raw, rate = sf.read(str(sample_wav), dtype="float32", always_2d=True)
    assert rate == 16000
    assert raw.shape[1] == 2
    return soxr.resample(raw, rate, 44100, quality="HQ")


def test_sample_clip_windows(sample_audio: np.ndarray) -> None:
    assert sample_audio.dtype == np.float32
    assert sample_audio.shape == (SAMPLE_LENGTH,)
    assert num_video_frames(sample_audio.shape[0]) == SAMPLE_FRAMES
    features = mel(sample_audio)
    assert features.shape == (80, 1 + SAMPLE_LENGTH // 200)
    windows = mel_windows(sample_audio)
    assert windows.shape == (SAMPLE_FRAMES, 80, 16)
    assert windows.dtype == np.float32
    assert windows.min() >= -4.0
    assert windows.max() <= 4.0
    # Speech, not a constant: the clip spans a good part of the range.
    assert windows.max() - windows.min() > 3.0


def test_stereo_44k_matches_16k(
    tmp_path: Path, sample_audio: np.ndarray, sample_44k_stereo: np.ndarray
) -> None:
    """Tolerance on the [-4, 4] scale: mean |diff| < 0.01, max < 0.1 (16-bit WAV at 44.1 kHz).

    Measured: mean 0.0012, max 0.039 — soxr HQ there and back plus 16-bit quantisation.
    """
    path = tmp_path / "clip_44k.wav"
    sf.write(str(path), sample_44k_stereo, 44100, subtype="PCM_16")
    converted = load_audio(path)
    assert converted.shape == sample_audio.shape
    diff = np.abs(mel_windows(converted) - mel_windows(sample_audio))
    assert diff.mean() < 0.01
    assert diff.max() < 0.1


@pytest.mark.parametrize(("suffix", "codec"), [("mp3", "libmp3lame"), ("m4a", "aac")])
def test_compressed_formats_load_aligned(
    tmp_path: Path,
    sample_audio: np.ndarray,
    sample_44k_stereo: np.ndarray,
    suffix: str,
    codec: str,
) -> None:
    """Lossy versions keep the length (±1 %) and the timing: measured mean |diff| 0.03 / 0.009."""
    path = tmp_path / f"clip.{suffix}"
    _encode_with_pyav(path, sample_44k_stereo, 44100, codec)
    decoded = load_audio(path)
    assert decoded.dtype == np.float32
    assert abs(decoded.shape[0] - SAMPLE_LENGTH) <= 0.01 * SAMPLE_LENGTH
    frames = min(num_video_frames(decoded.shape[0]), SAMPLE_FRAMES)
    diff = np.abs(mel_windows(decoded)[:frames] - mel_windows(sample_audio)[:frames])
    # A shift of one codec frame (1024 samples) gives a mean of ~0.3: this checks alignment.
    assert diff.mean() < 0.1


def test_flac_loads_same(
    tmp_path: Path, sample_audio: np.ndarray, sample_44k_stereo: np.ndarray
) -> None:
    path = tmp_path / "clip.flac"
    sf.write(str(path), sample_44k_stereo, 44100)
    decoded = load_audio(path)
    assert decoded.shape == sample_audio.shape
    assert np.abs(mel_windows(decoded) - mel_windows(sample_audio)).mean() < 0.01


def test_audio_track_of_video(sample_video: Path) -> None:
    """The mp4 samples carry 44.1 kHz stereo mp3 audio of ~2.3–2.7 s."""
    track = load_audio(sample_video)
    assert track.dtype == np.float32
    assert track.ndim == 1
    with av.open(str(sample_video)) as container:
        stream = container.streams.audio[0]
        assert stream.duration is not None
        assert stream.time_base is not None
        seconds = float(stream.duration * stream.time_base)
    assert abs(track.shape[0] / 16000 - seconds) < 0.01


def test_mel_matches_librosa_reference(sample_audio: np.ndarray) -> None:
    """The numpy STFT + filterbank equal the Wav2Lip recipe written with librosa and scipy."""
    import librosa
    import scipy.signal

    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    np.testing.assert_allclose(audio._mel_filterbank(), basis, rtol=1e-5, atol=1e-8)
    emphasized = scipy.signal.lfilter([1, -0.97], [1], sample_audio)
    spectrum = librosa.stft(
        y=emphasized, n_fft=800, hop_length=200, win_length=800, pad_mode="reflect"
    )
    db = 20 * np.log10(np.maximum(1e-5, basis @ np.abs(spectrum))) - 20
    reference = np.clip(8 * (db + 100) / 100 - 4, -4, 4)
    np.testing.assert_allclose(mel(sample_audio), reference, atol=1e-4)


def test_mel_of_tone_peaks_in_the_right_band() -> None:
    """A 1 kHz tone lights the mel band whose centre is nearest 1 kHz, in every frame."""
    t = np.arange(16000) / 16000
    features = mel((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    edges = audio._mel_to_hz(np.linspace(audio._hz_to_mel(55), audio._hz_to_mel(7600), 82))
    expected_band = int(np.argmin(np.abs(edges[1:-1] - 1000)))
    assert features.shape == (80, 81)
    assert (np.argmax(features[:, 2:-2], axis=0) == expected_band).all()


def _column_index_mel(columns: int) -> np.ndarray:
    """(80, M) synthetic mel whose value encodes the column: row r, column j → j + 1000 r."""
    return (np.arange(columns)[None, :] + 1000 * np.arange(80)[:, None]).astype(np.float32)


def test_mel_window_centring_and_edge_padding() -> None:
    features = _column_index_mel(1 + SAMPLE_LENGTH // 200)  # M = 219
    last = features.shape[1] - 1
    # Frame 0: centre round(0) = 0, columns [-8, 8) → first column repeated 8 times.
    np.testing.assert_array_equal(mel_window(features, 0)[0], [0] * 8 + list(range(8)))
    # Frame 1: centre round(3.2) = 3 → [-5, 11).
    np.testing.assert_array_equal(mel_window(features, 1)[0], [0] * 5 + list(range(11)))
    # Frame 10: centre 32 → [24, 40), no padding.
    np.testing.assert_array_equal(mel_window(features, 10)[0], np.arange(24, 40))
    # Frame 3: centre round(9.6) = 10 → [2, 18).
    np.testing.assert_array_equal(mel_window(features, 3)[0], np.arange(2, 18))
    # Last frame T − 1 = 68: centre round(217.6) = 218 = M − 1 → [210, 226) clipped to 218.
    np.testing.assert_array_equal(
        mel_window(features, SAMPLE_FRAMES - 1)[0], list(range(210, 219)) + [last] * 7
    )
    # Rows are kept (row r offset by 1000 r) and the result is a copy.
    window = mel_window(features, 10)
    np.testing.assert_array_equal(window[:, 0], 24 + 1000 * np.arange(80))
    window[:] = -1
    assert features[0, 24] == 24
    for frame in (0, 10, SAMPLE_FRAMES - 1):
        assert mel_window(features, frame).flags["C_CONTIGUOUS"]


def test_mel_windows_equal_per_frame_windows(sample_audio: np.ndarray) -> None:
    features = mel(sample_audio)
    from_audio = mel_windows(sample_audio)
    from_mel = mel_windows(features, num_frames=SAMPLE_FRAMES)
    np.testing.assert_array_equal(from_audio, from_mel)
    assert mel_windows(features).shape[0] == SAMPLE_FRAMES  # default count from M
    for frame in range(SAMPLE_FRAMES):
        np.testing.assert_array_equal(from_mel[frame], mel_window(features, frame))


def test_num_video_frames() -> None:
    assert num_video_frames(0) == 0
    assert num_video_frames(640) == 1
    assert num_video_frames(641) == 2
    assert num_video_frames(16000) == 25
    assert num_video_frames(SAMPLE_LENGTH) == SAMPLE_FRAMES
    assert num_video_frames(44100, sample_rate=44100) == 25


def test_to_mono_16k_downmix_and_resample() -> None:
    rng = np.random.default_rng(0)
    noise = rng.uniform(-0.5, 0.5, 4410).astype(np.float32)
    np.testing.assert_allclose(
        to_mono_16k(np.stack([noise, noise], axis=1), 16000), noise, atol=1e-7
    )
    assert np.abs(to_mono_16k(np.stack([noise, -noise], axis=1), 16000)).max() < 1e-7
    # A 440 Hz tone at 44.1 kHz resampled equals the tone sampled at 16 kHz (edges aside).
    tone_44k = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100).astype(np.float32)
    tone_16k = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    converted = to_mono_16k(tone_44k, 44100)
    assert converted.shape == (16000,)
    assert converted.dtype == np.float32
    assert np.abs(converted[500:-500] - tone_16k[500:-500]).max() < 1e-3
    # int16 input is scaled to full scale 1.0.
    np.testing.assert_allclose(to_mono_16k(np.array([-32768, 16384], np.int16), 16000), [-1, 0.5])
    with pytest.raises(AudioError, match="channels-first"):
        to_mono_16k(np.zeros((2, 1000), np.float32), 16000)


def test_zero_byte_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(EmptyAudioError, match=r"empty\.wav"):
        load_audio(path)


@pytest.mark.parametrize("content", ["text", "random"])
def test_non_audio_file_raises(tmp_path: Path, content: str) -> None:
    path = tmp_path / f"{content}.wav"
    if content == "text":
        path.write_text("this is a text file, not a recording\n" * 40)
    else:
        path.write_bytes(np.random.default_rng(1).bytes(20000))
    with pytest.raises(UnreadableAudioError, match=rf"{content}\.wav"):
        load_audio(path)


def test_video_without_audio_raises(tmp_path: Path) -> None:
    from pmfs.video_writer import write_video

    path = tmp_path / "mute.mp4"
    write_video(path, np.zeros((3, 16, 16, 3), np.uint8))
    with pytest.raises(UnreadableAudioError, match="no audio stream"):
        load_audio(path)


@pytest.mark.parametrize("peak", [0.0, 5e-5])
def test_silent_clip_raises(tmp_path: Path, peak: float) -> None:
    path = tmp_path / "silence.wav"
    signal = (peak * np.sin(np.linspace(0, 100, 16000))).astype(np.float32)
    sf.write(str(path), signal, 16000, subtype="FLOAT")
    with pytest.raises(SilentAudioError, match=r"silence\.wav"):
        load_audio(path)
    kept = load_audio(path, allow_silent=True)
    assert kept.shape == (16000,)
    assert np.abs(kept).max() <= peak + 1e-9


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere\.wav"):
        load_audio(tmp_path / "nowhere.wav")


def test_error_hierarchy_and_check_not_silent() -> None:
    for error in (EmptyAudioError, UnreadableAudioError, SilentAudioError):
        assert issubclass(error, AudioError)
    assert issubclass(AudioError, ValueError)
    with pytest.raises(SilentAudioError, match=r"clip_7\.wav"):
        check_not_silent(np.zeros(100, np.float32), "clip_7.wav")
    check_not_silent(np.full(100, 0.01, np.float32), "clip_7.wav")
