"""`pmfs infer` end to end: a checkpoint trained in the test (`tiny_pmfs_checkpoint`) driven by
audio onto synthetic raw clips, single images and the real sample videos (face-alignment with
random test weights, see tests/fa_weights.py), and the bad inputs of DESIGN §7.

Every run writes a real mp4 that is probed: H.264 + audio stream, the audio's length (±1 frame),
the template's resolution.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from pmfs.audio import SAMPLE_RATE, load_audio
from pmfs.infer import main
from pmfs.landmarks import mouth_opening
from pmfs.pipeline import (
    InferenceOptions,
    build_clip_inputs,
    crop_box,
    detect_template,
    emotion_labels,
    iter_generated,
    iter_output_frames,
    load_system,
    load_template,
    read_speech,
)
from pmfs.video import probe_video, read_video

FRAME = 1 / 25


@pytest.fixture(scope="module")
def raw_clip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 1-second synthetic clip in the raw MEAD layout (video 112×80, audio, landmarks)."""
    from pmfs.data.synth import SynthConfig, build_synthetic_dataset

    out = tmp_path_factory.mktemp("raw_synth")
    config = SynthConfig(
        out=out, speakers=1, clips=1, size=64, raw=True, workers=1, min_seconds=1.0,
        max_seconds=1.0, progress=False,
    )  # fmt: skip
    build_synthetic_dataset(config)
    found = {kind: sorted((out / "raw").rglob(f"*.{ext}")) for kind, ext in
             (("video", "mp4"), ("audio", "m4a"), ("landmarks", "npy"))}  # fmt: skip
    assert all(len(paths) == 1 for paths in found.values()), found
    return {kind: paths[0] for kind, paths in found.items()}


@pytest.fixture(scope="module")
def short_wav(raw_clip: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.4 s of the clip's speech as a 44.1 kHz stereo wav (not the model's 16 kHz mono)."""
    import soxr

    audio = load_audio(raw_clip["audio"])[: int(0.4 * SAMPLE_RATE)]
    stereo = np.stack([audio, 0.5 * audio], axis=1)
    path = tmp_path_factory.mktemp("wav") / "speech.wav"
    sf.write(path, soxr.resample(stereo, SAMPLE_RATE, 44100), 44100)
    return path


def _infer(ckpt: Path, audio: Path, face: Path, out: Path, *extra: str) -> int:
    argv = ["--ckpt", str(ckpt), "--audio", str(audio), "--face", str(face), "--out", str(out)]
    return main([*argv, "--device", "cpu", "--no-progress", *extra])


def _check_output(out: Path, seconds: float, size: tuple[int, int]) -> None:
    """A valid H.264 mp4 with audio, of `seconds` (±1 frame), `size` = (height, width)."""
    info = probe_video(out)
    assert info.has_audio, "no audio stream"
    assert (info.height, info.width) == size
    assert info.fps == 25
    assert info.num_frames == -(-round(seconds * SAMPLE_RATE) * 25 // SAMPLE_RATE)
    assert abs(info.duration - seconds) <= FRAME + 1e-6
    audio = load_audio(out, allow_silent=True)
    assert abs(len(audio) / SAMPLE_RATE - seconds) <= FRAME + 0.03  # AAC priming/padding
    video = read_video(out, with_audio=False)
    assert video.num_frames == info.num_frames and video.frames.std() > 1


def test_synthetic_clip_longer_than_the_audio_is_trimmed(
    tiny_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    args = ("--landmarks", str(raw_clip["landmarks"]))
    assert _infer(tiny_pmfs_checkpoint, short_wav, raw_clip["video"], out, *args) == 0
    _check_output(out, 0.4, (80, 112))


def test_short_template_is_played_forward_and_backward(
    tiny_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path
) -> None:
    template = load_template(raw_clip["video"], max_frames=4)
    track = detect_template(template, InferenceOptions(), landmarks=raw_clip["landmarks"])
    audio = read_speech(short_wav)
    clip, order = build_clip_inputs(template, track, crop_box(track), audio, 64)
    assert order.tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    for k, i in enumerate(order.tolist()):
        assert torch.equal(clip.frames[k], clip.frames[i])
        assert torch.equal(clip.landmarks[k], clip.landmarks[i])
    assert not torch.equal(clip.frames[1], clip.frames[2])  # the head moves: frames differ
    out = tmp_path / "pingpong.mp4"
    args = ("--landmarks", str(raw_clip["landmarks"]), "--template-frames", "4")
    assert _infer(tiny_pmfs_checkpoint, short_wav, raw_clip["video"], out, *args) == 0
    _check_output(out, 0.4, (80, 112))


def test_only_the_face_region_changes(
    tiny_pmfs_checkpoint: Path, raw_clip: dict[str, Path]
) -> None:
    """Before encoding: output pixels far from the face, and the eyes (above the lower face the
    renderer generates), equal the template's exactly; frames whose face was lost for long are
    the template frames unchanged."""
    options = InferenceOptions(device="cpu", progress=False, max_gap=2)
    model, data = load_system(tiny_pmfs_checkpoint, torch.device("cpu"))
    audio = read_speech(raw_clip["audio"])[: int(0.48 * SAMPLE_RATE)]  # 12 frames
    template = load_template(raw_clip["video"], max_frames=12)
    points = np.load(raw_clip["landmarks"])[:12].copy()
    points[5:9] = np.nan  # 4 frames > max_gap: passed through
    lost = template.source.with_name("lost.npy")
    np.save(lost, points)
    track = detect_template(template, options, landmarks=lost)
    box = crop_box(track)
    labels = emotion_labels(model, None, None)
    clip, order = build_clip_inputs(template, track, box, audio, data["image_size"], 3, *labels)
    frames = list(iter_output_frames(model, clip, template, track, box, order))
    assert len(frames) == 12 and order.tolist() == list(range(12))
    for i, frame in enumerate(frames):
        face = track.landmarks[i]
        lo, hi = face.min(axis=0), face.max(axis=0)
        margin = 0.35 * (hi - lo)  # the mask is the dilated, feathered face hull
        (x0, y0), (x1, y1) = np.floor(lo - margin).astype(int), np.ceil(hi + margin).astype(int)
        far = np.ones(frame.shape[:2], bool)
        far[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = False
        assert (frame[far] == template.frames[i][far]).all(), f"frame {i}: background changed"
        eyes = np.round(face[36:48]).astype(int)  # (12, 2) x, y: above the generated region
        assert (frame[eyes[:, 1], eyes[:, 0]] == template.frames[i][eyes[:, 1], eyes[:, 0]]).all()
        if 5 <= i < 9:
            assert (frame == template.frames[i]).all()
        else:
            assert (frame != template.frames[i]).any(), f"frame {i}: face not replaced"


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_single_image_is_animated(
    tiny_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path,
    suffix: str,
) -> None:  # fmt: skip
    first = read_video(raw_clip["video"], with_audio=False).frames[0]
    image = tmp_path / f"face{suffix}"
    Image.fromarray(first).save(image)
    face = np.load(raw_clip["landmarks"])[0]  # (68, 2)
    np.save(tmp_path / "face.npy", face)
    out = tmp_path / "image.mp4"
    args = ("--landmarks", str(tmp_path / "face.npy"), "--references", "2")
    assert _infer(tiny_pmfs_checkpoint, short_wav, image, out, *args) == 0
    _check_output(out, 0.4, (80, 112))
    frames = read_video(out, with_audio=False).frames.astype(float)
    change = np.abs(frames - frames.mean(axis=0)).mean(axis=(0, 3))  # (H, W) motion over time
    (x0, y0), (x1, y1) = face.min(axis=0).astype(int), face.max(axis=0).astype(int)
    moving, still = change[y0:y1, x0:x1].mean(), change[:, : max(x0 - 8, 1)].mean()
    # the face moves more than the background (codec noise only): by how much depends on the
    # barely trained model; that the audio drives it is checked on the chain's landmarks below
    assert moving > 2 * still, f"not animated: {moving:.2f} vs {still:.2f}"
    model, _ = load_system(tiny_pmfs_checkpoint, torch.device("cpu"))
    template = load_template(image)
    track = detect_template(template, InferenceOptions(), landmarks=tmp_path / "face.npy")
    labels = emotion_labels(model, None, None)
    audio = read_speech(short_wav)
    clip, order = build_clip_inputs(template, track, crop_box(track), audio, 64, 2, *labels)
    assert (order == 0).all() and template.num_frames == 1
    generated, drawn = (
        torch.cat(parts) for parts in zip(*iter_generated(model, clip), strict=True)
    )
    assert len(generated) == 10 and (generated[1:] != generated[:-1]).any(dim=(1, 2, 3)).all()
    assert mouth_opening(drawn).std() > 1e-3  # the mouth the audio drives opens and closes


def test_face_alignment_on_the_sample_videos(
    tiny_pmfs_checkpoint: Path, sample_videos: list[Path], sample_wav: Path,
    torch_home: Path, tmp_path: Path,
) -> None:  # fmt: skip
    """The real face-alignment code (random weights) on the real videos; a short preview."""
    for video in sample_videos:
        out = tmp_path / f"{video.stem}.mp4"
        args = ("--template-frames", "1", "--duration", "0.2")
        assert _infer(tiny_pmfs_checkpoint, sample_wav, video, out, *args) == 0
        _check_output(out, 0.2, (256, 256))


@pytest.mark.slow
def test_face_alignment_full_length_on_the_sample_videos(
    tiny_pmfs_checkpoint: Path, sample_videos: list[Path], sample_wav: Path,
    torch_home: Path, tmp_path: Path,
) -> None:  # fmt: skip
    seconds = len(load_audio(sample_wav)) / SAMPLE_RATE
    for video in sample_videos:
        out = tmp_path / f"{video.stem}.mp4"
        assert _infer(tiny_pmfs_checkpoint, sample_wav, video, out) == 0
        _check_output(out, seconds, (256, 256))


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


def test_unknown_formats_are_clear_errors(
    tiny_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    face = tmp_path / "face.gif2"
    face.write_bytes(b"GIF89a")
    assert _infer(tiny_pmfs_checkpoint, short_wav, face, tmp_path / "o.mp4") == 1
    assert "unknown face format '.gif2'" in capsys.readouterr().err
    noise = tmp_path / "speech.xyz"
    noise.write_bytes(b"this is not audio at all" * 10)
    assert _infer(tiny_pmfs_checkpoint, noise, raw_clip["video"], tmp_path / "o.mp4") == 1
    assert "speech.xyz" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_zero_second_audio_is_a_clear_error(
    tiny_pmfs_checkpoint: Path, raw_clip: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), SAMPLE_RATE)
    assert _infer(tiny_pmfs_checkpoint, empty, raw_clip["video"], tmp_path / "o.mp4") == 1
    err = capsys.readouterr().err
    assert "error:" in err and "empty.wav" in err and "no audio samples" in err


def test_a_video_without_any_face_is_a_clear_error(
    tiny_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    none = tmp_path / "none.npy"
    np.save(none, np.full_like(np.load(raw_clip["landmarks"]), np.nan))
    args = ("--landmarks", str(none))
    assert (
        _infer(tiny_pmfs_checkpoint, short_wav, raw_clip["video"], tmp_path / "o.mp4", *args) == 1
    )
    assert "no face found in any of the 10 frames" in capsys.readouterr().err


def test_frames_without_a_face_are_counted(
    tiny_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    points = np.load(raw_clip["landmarks"]).copy()
    points[2] = np.nan  # interpolated
    points[5:9] = np.nan  # 4 > --max-gap 2: passed through
    np.save(tmp_path / "gaps.npy", points)
    out = tmp_path / "gaps.mp4"
    with caplog.at_level(logging.WARNING, logger="pmfs.pipeline"):
        args = ("--landmarks", str(tmp_path / "gaps.npy"), "--max-gap", "2")
        assert _infer(tiny_pmfs_checkpoint, short_wav, raw_clip["video"], out, *args) == 0
    assert "5 of 10 template frames have no face: 1 interpolated, 4 passed through" in caplog.text
    _check_output(out, 0.4, (80, 112))


def test_an_image_with_two_faces_uses_the_largest(
    tiny_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    image = tmp_path / "two.png"
    Image.fromarray(read_video(raw_clip["video"], with_audio=False).frames[0]).save(image)
    face = np.load(raw_clip["landmarks"])[0]
    small = (face - face.mean(axis=0)) * 0.3 + [15.0, 15.0]
    np.save(tmp_path / "two.npy", np.stack([small, face])[None])  # (1, 2, 68, 2)
    template = load_template(image)
    track = detect_template(template, InferenceOptions(), landmarks=tmp_path / "two.npy")
    np.testing.assert_allclose(track.landmarks[0], face, atol=1e-4)
    with caplog.at_level(logging.WARNING, logger="pmfs.pipeline"):
        args = ("--landmarks", str(tmp_path / "two.npy"))
        assert _infer(tiny_pmfs_checkpoint, short_wav, image, tmp_path / "o.mp4", *args) == 0
    assert "1 of 1 template frames show more than one face; the largest one is used" in caplog.text
    _check_output(tmp_path / "o.mp4", 0.4, (80, 112))
