"""Tests of pmfs.video: read/write round trips, 25 fps resampling by timestamps, errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pmfs.video import (
    Video,
    VideoError,
    _resample_timed,
    iter_frames,
    probe_video,
    read_video,
    resample_frames,
    resample_indices,
)
from pmfs.video_writer import write_video

FRAME_TOLERANCE_SAMPLES = 640  # one video frame (40 ms) of 16 kHz audio
COUNTER_SIZE = 64
COUNTER_BLOCK = COUNTER_SIZE // 4  # 4 × 4 blocks: a 16-bit frame counter


def _counter_frames(num_frames: int) -> np.ndarray:
    """(N, 64, 64, 3) uint8 frames showing their index in binary (white block = bit set)."""
    frames = np.zeros((num_frames, COUNTER_SIZE, COUNTER_SIZE, 3), np.uint8)
    for index in range(num_frames):
        for bit in range(16):
            if (index >> bit) & 1:
                row, col = divmod(bit, 4)
                frames[
                    index,
                    row * COUNTER_BLOCK : (row + 1) * COUNTER_BLOCK,
                    col * COUNTER_BLOCK : (col + 1) * COUNTER_BLOCK,
                ] = 255
    return frames


def _read_counters(frames: np.ndarray) -> np.ndarray:
    """Decode the counters drawn by `_counter_frames` (block centres, robust to compression)."""
    counters = []
    quarter = COUNTER_BLOCK // 4
    for frame in frames:
        value = 0
        for bit in range(16):
            row, col = divmod(bit, 4)
            top, left = row * COUNTER_BLOCK + quarter, col * COUNTER_BLOCK + quarter
            block = frame[top : top + 2 * quarter, left : left + 2 * quarter]
            value |= int(block.mean() > 128) << bit
        counters.append(value)
    return np.asarray(counters)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


@pytest.fixture(scope="module")
def counter_30fps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """47 counter frames written at 30 fps: D = 47 / 30 s, so round(D · 25) = 39 at 25 fps."""
    path = tmp_path_factory.mktemp("counter") / "counter_30fps.mp4"
    write_video(path, _counter_frames(47), fps=30, crf=10)
    return path


def test_probe_samples(sample_video: Path) -> None:
    info = probe_video(sample_video)
    assert info.fps == 25.0
    assert (info.width, info.height) == (256, 256)
    assert info.num_frames in (58, 65)
    assert info.duration == pytest.approx(info.num_frames / 25)
    assert info.has_audio


def test_read_write_read_round_trip(sample_video: Path, tmp_path: Path) -> None:
    original = read_video(sample_video)
    assert isinstance(original, Video)
    assert original.frames.dtype == np.uint8
    assert original.frames.shape[1:] == (256, 256, 3)
    assert original.fps == 25.0
    assert original.audio is not None
    assert original.audio.dtype == np.float32

    out = tmp_path / "round_trip.mp4"
    write_video(out, original.frames, fps=25, audio=original.audio, crf=18)
    assert not list(tmp_path.glob("*.tmp.*")), "the temporary file must be renamed"
    copy = read_video(out)
    assert copy.frames.shape == original.frames.shape
    assert copy.fps == 25.0
    assert copy.audio is not None
    assert abs(copy.audio.shape[0] - original.audio.shape[0]) <= FRAME_TOLERANCE_SAMPLES
    assert _psnr(copy.frames, original.frames) > 35.0  # measured ≈ 42 dB at crf 18
    # Same sound, same timing: AAC keeps the waveform nearly sample-aligned.
    length = min(copy.audio.shape[0], original.audio.shape[0])
    assert np.corrcoef(copy.audio[:length], original.audio[:length])[0, 1] > 0.99


def test_written_streams(tmp_path: Path) -> None:
    out = tmp_path / "streams.mp4"
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (10, 32, 48, 3), dtype=np.uint8)
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(6400) / 16000)
    write_video(out, frames, audio=tone.astype(np.float32), sample_rate=16000)
    with av.open(str(out)) as container:
        assert len(container.streams.video) == 1
        assert len(container.streams.audio) == 1
        video, sound = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert video.average_rate == 25
        assert sound.codec_context.name == "aac"
        assert sound.codec_context.sample_rate == 16000
    info = probe_video(out)
    assert (info.num_frames, info.width, info.height, info.fps) == (10, 48, 32, 25.0)


def test_write_without_audio(tmp_path: Path) -> None:
    out = tmp_path / "mute.mp4"
    write_video(out, _counter_frames(5))
    info = probe_video(out)
    assert not info.has_audio
    assert read_video(out).audio is None


def test_30fps_resampled_to_25fps(counter_30fps: Path) -> None:
    info = probe_video(counter_30fps)
    assert (info.fps, info.num_frames) == (30.0, 47)
    native = read_video(counter_30fps)
    np.testing.assert_array_equal(_read_counters(native.frames), np.arange(47))

    video = read_video(counter_30fps, fps=25)
    assert video.fps == 25.0
    assert video.num_frames == round(47 / 30 * 25) == 39
    assert video.duration == pytest.approx(47 / 30, abs=0.04)
    # Output k at k/25 s shows the frame nearest to it: round(1.2 k).
    expected = np.minimum(np.floor(np.arange(39) * 1.2 + 0.5 + 1e-9).astype(int), 46)
    np.testing.assert_array_equal(_read_counters(video.frames), expected)
    np.testing.assert_array_equal(resample_indices(47, 30, 25), expected)


def test_iter_frames_streams_the_same_frames(counter_30fps: Path) -> None:
    whole = read_video(counter_30fps, fps=25, with_audio=False).frames
    streamed = iter_frames(counter_30fps, fps=25)
    assert not isinstance(streamed, list | np.ndarray)
    np.testing.assert_array_equal(np.stack(list(streamed)), whole)
    assert len(list(iter_frames(counter_30fps))) == 47


def _write_flv(path: Path, frames: np.ndarray, audio: np.ndarray) -> None:
    """A CREMA-D-like FLV: Sorenson video at 30 fps, 44.1 kHz mono mp3, millisecond stamps."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("flv", rate=30)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        sound = container.add_stream("libmp3lame", rate=44100, layout="mono")
        for index, rgb in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            picture.pts = index
            container.mux(video.encode(picture))
        container.mux(video.encode(None))
        chunk = av.AudioFrame.from_ndarray(audio[None], format="flt", layout="mono")
        chunk.sample_rate, chunk.pts, chunk.time_base = 44100, 0, Fraction(1, 44100)
        container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))


def test_flv_30fps_with_mp3(tmp_path: Path) -> None:
    path = tmp_path / "1001_DFA_ANG_XX.flv"
    frames = _counter_frames(45)
    tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(66150) / 44100)).astype(np.float32)
    _write_flv(path, frames, tone)
    info = probe_video(path)  # FLV headers carry no frame count: packets are counted
    assert (info.fps, info.num_frames, info.has_audio) == (30.0, 45, True)
    video = read_video(path, fps=25)
    assert video.num_frames == 38  # 1.5 s · 25 = 37.5, halves round up
    np.testing.assert_array_equal(_read_counters(video.frames), resample_indices(45, 30, 25))
    assert video.audio is not None
    assert abs(video.audio.shape[0] - 1.5 * 16000) <= FRAME_TOLERANCE_SAMPLES


@pytest.mark.parametrize(("src_fps", "num_frames"), [(15, 20), (60, 61), (30000 / 1001, 30)])
def test_timestamp_resampling_matches_index_resampling(
    tmp_path: Path, src_fps: float, num_frames: int
) -> None:
    """Upsampling (15 fps), downsampling (60 fps) and NTSC rates pick the same frames both ways."""
    path = tmp_path / "clip.mp4"
    write_video(path, _counter_frames(num_frames), fps=src_fps, crf=10, preset="ultrafast")
    counters = _read_counters(read_video(path, fps=25).frames)
    np.testing.assert_array_equal(counters, resample_indices(num_frames, src_fps, 25))


@pytest.mark.parametrize("src_fps", [10, 12.5, 24, 30, 30000 / 1001, 50, 60, 240])
def test_streaming_resampler_agrees_with_indices(src_fps: float) -> None:
    """The streaming core (which holds one output back) gives round(k · src / 25) and
    round(N · 25 / src) frames for every clip length, including the 60 fps end cases."""
    rate = Fraction(src_fps).limit_denominator(1_000_000)
    for num_frames in range(1, 150):
        timed = [(Fraction(i) / rate, np.array(i)) for i in range(num_frames)]
        chosen = [int(f) for f in _resample_timed(timed, 1 / rate, Fraction(25))]
        assert chosen == resample_indices(num_frames, src_fps, 25).tolist(), num_frames


def test_resample_frames_in_memory() -> None:
    frames = np.arange(30)[:, None] * np.ones((1, 4))  # (30, 4), row i holds i
    down = resample_frames(frames, 30, 25)
    assert down.shape == (25, 4)
    nearest = np.floor(np.arange(25) * 1.2 + 0.5 + 1e-9)  # the source frame nearest in time
    np.testing.assert_array_equal(down[:, 0], np.minimum(nearest, 29))
    up = resample_frames(frames[:15], 15, 25)
    assert up.shape == (25, 4)
    np.testing.assert_array_equal(up[:, 0], np.minimum(np.floor(np.arange(25) * 0.6 + 0.5), 14))
    np.testing.assert_array_equal(resample_frames(frames, 25, 25), frames)
    assert resample_indices(0, 30, 25).shape == (0,)


def test_odd_size_is_padded_or_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (3, 63, 65, 3), dtype=np.uint8)
    frames[:] = frames[:, :1, :1]  # flat colour per frame: survives compression
    out = tmp_path / "odd.mp4"
    write_video(out, frames, crf=0)
    copy = read_video(out).frames
    assert copy.shape == (3, 64, 66, 3)
    assert np.abs(copy[:, :63, :65].astype(int) - frames).max() <= 4
    with pytest.raises(ValueError, match="odd"):
        write_video(tmp_path / "refused.mp4", frames, pad_odd=False)
    assert not (tmp_path / "refused.mp4").exists()


def test_failed_write_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    write_video(out, _counter_frames(4))
    before = out.read_bytes()

    def frames_then_bad() -> list[np.ndarray]:
        good = list(_counter_frames(3))
        return [*good, np.zeros((10, 10, 3), np.uint8)]  # wrong size at index 3

    with pytest.raises(ValueError, match="frame 3"):
        write_video(out, iter(frames_then_bad()))
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "float.mp4", np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="suffix"):
        write_video(tmp_path / "clip.gif", _counter_frames(2))


def test_truncated_sample_raises(sample_video: Path, tmp_path: Path) -> None:
    data = sample_video.read_bytes()
    path = tmp_path / "truncated_sample.mp4"
    path.write_bytes(data[: len(data) // 2])  # the moov atom is at the end: unopenable
    with pytest.raises(VideoError, match=r"truncated_sample\.mp4"):
        read_video(path)


def test_truncated_faststart_raises(sample_video: Path, tmp_path: Path) -> None:
    """With the index first (our writer's faststart), a cut file still opens: count the frames."""
    whole = tmp_path / "whole.mp4"
    write_video(whole, read_video(sample_video, with_audio=False).frames)
    data = whole.read_bytes()
    cut = tmp_path / "cut_faststart.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(VideoError, match=r"cut_faststart\.mp4 is truncated"):
        read_video(cut)


@pytest.mark.parametrize("kind", ["empty", "random", "text", "audio_only"])
def test_unreadable_files_raise(tmp_path: Path, sample_wav: Path, kind: str) -> None:
    path = tmp_path / f"bad_{kind}.mp4"
    if kind == "random":
        path.write_bytes(np.random.default_rng(3).bytes(30000))
    elif kind == "text":
        path.write_text("not a video\n" * 100)
    elif kind == "audio_only":
        path.write_bytes(sample_wav.read_bytes())
    else:
        path.touch()
    with pytest.raises(VideoError, match=rf"bad_{kind}\.mp4"):
        read_video(path)
    with pytest.raises(VideoError, match=rf"bad_{kind}\.mp4"):
        probe_video(path)
    with pytest.raises(VideoError, match=rf"bad_{kind}\.mp4"):
        next(iter_frames(path))


def test_missing_video_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"absent\.mp4"):
        read_video(tmp_path / "absent.mp4")
