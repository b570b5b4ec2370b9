"""`pmfs infer` end to end: a checkpoint of a real `pmfs fit` with weights set so that what it
does is known (`known_pmfs_checkpoint`, tests/known_weights.py: the mouth follows the audio, the
renderer paints a face that changes with its sketch, on any CPU) driven by audio onto synthetic
raw clips, single images and the real sample videos (face-alignment with random test weights, see
tests/fa_weights.py), and the bad inputs of DESIGN §7.

Every run writes a real mp4 that is probed: H.264 + audio stream, the audio's length (±1 frame),
the template's resolution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from pmfs.audio import SAMPLE_RATE, load_audio
from pmfs.commands.infer import main
from pmfs.inference.crop import build_clip_inputs, crop_box
from pmfs.inference.options import InferenceOptions
from pmfs.inference.run import (
    emotion_labels,
    iter_generated,
    iter_output_frames,
    load_system,
    read_speech,
)
from pmfs.inference.template import Template, load_template
from pmfs.inference.tracking import FaceTrack, detect_template
from pmfs.landmarks import mouth_opening
from pmfs.stages import PMFS
from pmfs.video import probe_video, read_video

FRAME = 1 / 25


@pytest.fixture(scope="module")
def raw_clip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 1-second synthetic clip in the raw MEAD layout (video 112×80, audio, landmarks)."""
    from pmfs.data.synth.config import SynthConfig
    from pmfs.data.synth.generate import build_synthetic_dataset

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
    known_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    args = ("--landmarks", str(raw_clip["landmarks"]))
    assert _infer(known_pmfs_checkpoint, short_wav, raw_clip["video"], out, *args) == 0
    _check_output(out, 0.4, (80, 112))


def test_short_template_is_played_forward_and_backward(
    known_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path
) -> None:
    template = load_template(raw_clip["video"], max_frames=4)
    track = detect_template(template, InferenceOptions(), landmarks=raw_clip["landmarks"])
    audio = read_speech(short_wav)
    clip, order = build_clip_inputs(template, track, crop_box(track), audio, 64)
    assert order.tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert clip.frames.shape[0] == 4  # each template crop once, played by `frame_order`
    frames = clip.target_frames(0, clip.num_frames)  # (10, 3, 64, 64)
    for k, i in enumerate(order.tolist()):
        assert torch.equal(frames[k], frames[i])
        assert torch.equal(clip.landmarks[k], clip.landmarks[i])
    assert not torch.equal(frames[1], frames[2])  # the head moves: frames differ
    out = tmp_path / "pingpong.mp4"
    args = ("--landmarks", str(raw_clip["landmarks"]), "--template-frames", "4")
    assert _infer(known_pmfs_checkpoint, short_wav, raw_clip["video"], out, *args) == 0
    _check_output(out, 0.4, (80, 112))


def _check_only_the_face_changed(
    frame: np.ndarray, template: np.ndarray, face: np.ndarray, name: str
) -> None:
    """Output pixels far from the face, and the eyes (above the lower face the renderer
    generates), equal the template's exactly (before encoding).

    Args:
        frame, template: (H, W, 3) uint8 output and template frames.
        face: (68, 2) the template face's landmarks, pixels.
        name: which frame, for the message.
    """
    lo, hi = face.min(axis=0), face.max(axis=0)
    margin = 0.35 * (hi - lo)  # the mask is the dilated, feathered lower-face region
    (x0, y0), (x1, y1) = np.floor(lo - margin).astype(int), np.ceil(hi + margin).astype(int)
    far = np.ones(frame.shape[:2], bool)
    far[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = False
    assert (frame[far] == template[far]).all(), f"{name}: the background changed"
    eyes = np.round(face[36:48]).astype(int)  # (12, 2) x, y: above the generated region
    assert (frame[eyes[:, 1], eyes[:, 0]] == template[eyes[:, 1], eyes[:, 0]]).all(), name


def test_only_the_face_region_changes(
    known_pmfs_checkpoint: Path, raw_clip: dict[str, Path]
) -> None:
    """Only the face is replaced; frames whose face was lost for long are the template frames
    unchanged."""
    options = InferenceOptions(device="cpu", progress=False, max_gap=2)
    model, data = load_system(known_pmfs_checkpoint, torch.device("cpu"))
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
        _check_only_the_face_changed(frame, template.frames[i], track.landmarks[i], f"frame {i}")
        if 5 <= i < 9:
            assert (frame == template.frames[i]).all()
        else:  # the renderer paints its own face (α ≈ 0): never the template's pixels
            assert (frame != template.frames[i]).any(), f"frame {i}: face not replaced"


@dataclass
class Animation:
    """Output frames (N, H, W, 3) uint8 before encoding, and the (N, 68, 2) normalized landmarks
    the renderer drew them from."""

    frames: np.ndarray
    drawn: torch.Tensor


def _animate(model: PMFS, template: Template, track: FaceTrack, audio: np.ndarray) -> Animation:
    """`pmfs infer`'s frames of an image driven by `audio` (two references)."""
    labels = emotion_labels(model, None, None)
    box = crop_box(track)
    clip, order = build_clip_inputs(template, track, box, audio, 64, 2, *labels)
    assert (order == 0).all() and template.num_frames == 1
    drawn = torch.cat([landmarks for _, landmarks in iter_generated(model, clip)])
    frames = np.stack(list(iter_output_frames(model, clip, template, track, box, order)))
    assert len(frames) == len(drawn) == clip.num_frames
    return Animation(frames, drawn)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_single_image_is_animated(
    known_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path,
    suffix: str,
) -> None:  # fmt: skip
    """Speech moves the mouth the renderer draws and so the face of the output; silence does
    not; nothing but the lower face changes."""
    first = read_video(raw_clip["video"], with_audio=False).frames[0]
    image = tmp_path / f"face{suffix}"
    Image.fromarray(first).save(image)
    face = np.load(raw_clip["landmarks"])[0]  # (68, 2)
    np.save(tmp_path / "face.npy", face)
    out = tmp_path / "image.mp4"
    args = ("--landmarks", str(tmp_path / "face.npy"), "--references", "2")
    assert _infer(known_pmfs_checkpoint, short_wav, image, out, *args) == 0
    _check_output(out, 0.4, (80, 112))
    frames = read_video(out, with_audio=False).frames.astype(float)
    change = np.abs(frames - frames.mean(axis=0)).mean(axis=(0, 3))  # (H, W) motion over time
    (x0, y0), (x1, y1) = face.min(axis=0).astype(int), face.max(axis=0).astype(int)
    moving, still = change[y0:y1, x0:x1].mean(), change[:, : max(x0 - 8, 1)].mean()
    # ≈ 0.9 vs codec noise ≈ 0.03 (what happens before encoding is checked exactly below)
    assert moving > 0.2 and moving > 5 * still, f"not animated: {moving:.2f} vs {still:.2f}"
    model, _ = load_system(known_pmfs_checkpoint, torch.device("cpu"))
    template = load_template(image)
    track = detect_template(template, InferenceOptions(), landmarks=tmp_path / "face.npy")
    speech = _animate(model, template, track, read_speech(short_wav))
    silence = _animate(model, template, track, np.zeros(int(0.4 * SAMPLE_RATE), np.float32))
    assert mouth_opening(speech.drawn).std() > 0.005  # ≈ 0.02: the audio opens the mouth
    assert mouth_opening(silence.drawn).std() < 1e-6
    assert np.ptp(silence.frames.astype(int), axis=0).max() <= 1  # a still face
    assert (speech.frames[1:] != speech.frames[:-1]).any(axis=(1, 2, 3)).all()  # every frame moves
    for i, frame in enumerate(speech.frames):
        _check_only_the_face_changed(frame, template.frames[0], track.landmarks[0], f"frame {i}")
    rows = np.flatnonzero((speech.frames != template.frames[0]).any(axis=(0, 2, 3)))
    assert rows.min() > face[36:48, 1].max(), "changed above the lower face"


def test_the_temporal_flags_reach_the_frames(
    known_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path
) -> None:
    """`--smoothing none --no-vad` renders what those settings predict: the landmarks the run
    draws are the ones `iter_generated` gives with the same options, not the defaults'."""
    first = read_video(raw_clip["video"], with_audio=False).frames[0]
    image = tmp_path / "face.png"
    Image.fromarray(first).save(image)
    np.save(tmp_path / "face.npy", np.load(raw_clip["landmarks"])[0])
    common = ("--landmarks", str(tmp_path / "face.npy"), "--references", "2", "--crf", "0")
    outs = {}
    for name, flags in (("default", ()), ("raw", ("--smoothing", "none", "--no-vad"))):
        outs[name] = tmp_path / f"{name}.mp4"
        assert _infer(known_pmfs_checkpoint, short_wav, image, outs[name], *common, *flags) == 0
    default, raw = (read_video(outs[k], with_audio=False).frames.astype(int) for k in outs)
    model, _ = load_system(known_pmfs_checkpoint, torch.device("cpu"))
    template = load_template(image)
    track = detect_template(template, InferenceOptions(), landmarks=tmp_path / "face.npy")
    clip, _ = build_clip_inputs(
        template, track, crop_box(track), read_speech(short_wav), 64, 2,
        *emotion_labels(model, None, None),
    )  # fmt: skip
    options = InferenceOptions(smoothing="none", vad=False)
    drawn = {
        name: torch.cat([lm for _, lm in iter_generated(model, clip, options=opts)])
        for name, opts in (("default", InferenceOptions()), ("raw", options))
    }
    assert (drawn["default"] - drawn["raw"]).abs().max() > 1e-3  # the settings matter here
    assert np.abs(default - raw).max() > 20, "the flags did not change the rendered frames"


def test_face_alignment_on_the_sample_videos(
    known_pmfs_checkpoint: Path, sample_videos: list[Path], sample_wav: Path,
    torch_home: Path, tmp_path: Path,
) -> None:  # fmt: skip
    """The real face-alignment code (random weights) on the real videos; a short preview."""
    for video in sample_videos:
        out = tmp_path / f"{video.stem}.mp4"
        args = ("--template-frames", "1", "--duration", "0.2")
        assert _infer(known_pmfs_checkpoint, sample_wav, video, out, *args) == 0
        _check_output(out, 0.2, (256, 256))


@pytest.mark.slow
def test_face_alignment_full_length_on_the_sample_videos(
    known_pmfs_checkpoint: Path, sample_videos: list[Path], sample_wav: Path,
    torch_home: Path, tmp_path: Path,
) -> None:  # fmt: skip
    seconds = len(load_audio(sample_wav)) / SAMPLE_RATE
    for video in sample_videos:
        out = tmp_path / f"{video.stem}.mp4"
        assert _infer(known_pmfs_checkpoint, sample_wav, video, out) == 0
        _check_output(out, seconds, (256, 256))


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


def test_unknown_formats_are_clear_errors(
    known_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    face = tmp_path / "face.gif2"
    face.write_bytes(b"GIF89a")
    assert _infer(known_pmfs_checkpoint, short_wav, face, tmp_path / "o.mp4") == 1
    assert "unknown face format '.gif2'" in capsys.readouterr().err
    noise = tmp_path / "speech.xyz"
    noise.write_bytes(b"this is not audio at all" * 10)
    assert _infer(known_pmfs_checkpoint, noise, raw_clip["video"], tmp_path / "o.mp4") == 1
    assert "speech.xyz" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_zero_second_audio_is_a_clear_error(
    known_pmfs_checkpoint: Path, raw_clip: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), SAMPLE_RATE)
    assert _infer(known_pmfs_checkpoint, empty, raw_clip["video"], tmp_path / "o.mp4") == 1
    err = capsys.readouterr().err
    assert "error:" in err and "empty.wav" in err and "no audio samples" in err


def test_a_video_without_any_face_is_a_clear_error(
    known_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    none = tmp_path / "none.npy"
    np.save(none, np.full_like(np.load(raw_clip["landmarks"]), np.nan))
    args = ("--landmarks", str(none))
    assert (
        _infer(known_pmfs_checkpoint, short_wav, raw_clip["video"], tmp_path / "o.mp4", *args) == 1
    )
    assert "no face found in any of the 10 frames" in capsys.readouterr().err


def test_frames_without_a_face_are_counted(
    known_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    points = np.load(raw_clip["landmarks"]).copy()
    points[2] = np.nan  # interpolated
    points[5:9] = np.nan  # 4 > --max-gap 2: passed through
    np.save(tmp_path / "gaps.npy", points)
    out = tmp_path / "gaps.mp4"
    with caplog.at_level(logging.WARNING, logger="pmfs.inference"):
        args = ("--landmarks", str(tmp_path / "gaps.npy"), "--max-gap", "2")
        assert _infer(known_pmfs_checkpoint, short_wav, raw_clip["video"], out, *args) == 0
    assert "5 of 10 template frames have no face: 1 interpolated, 4 passed through" in caplog.text
    _check_output(out, 0.4, (80, 112))


def test_an_image_with_two_faces_uses_the_largest(
    known_pmfs_checkpoint: Path, raw_clip: dict[str, Path], short_wav: Path, tmp_path: Path,
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
    with caplog.at_level(logging.WARNING, logger="pmfs.inference"):
        args = ("--landmarks", str(tmp_path / "two.npy"))
        assert _infer(known_pmfs_checkpoint, short_wav, image, tmp_path / "o.mp4", *args) == 0
    assert "1 of 1 template frames show more than one face; the largest one is used" in caplog.text
    _check_output(tmp_path / "o.mp4", 0.4, (80, 112))
