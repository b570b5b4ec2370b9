"""Issue 16 item 5: `pmfs infer` runs long audio in bounded memory.

The clip holds each template crop once (`ClipInputs.frame_order` plays them to the output's
length) and the renderer builds each chunk's target frames on demand, giving the same frames as
the old per-output-frame tensor. Measured for real: the peak RSS of a `pmfs infer` process
(the kernel's, `pmfs bench memory`) does not grow with the audio. That needs frames large enough
for the old growth to show above a ~0.8 GB process (3 × 256² × 4 B = 0.75 MB per output frame)
and so takes minutes on 2 CPU cores: it is marked slow.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pmfs.audio import SAMPLE_RATE, load_audio
from pmfs.commands.bench.memory import MemoryOptions, memory_payload, syllables
from pmfs.inference.crop import build_clip_inputs, crop_box
from pmfs.inference.options import InferenceOptions
from pmfs.inference.run import emotion_labels, load_system
from pmfs.inference.template import load_template
from pmfs.inference.tracking import detect_template


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 1-second synthetic raw clip: video (112×80, 25 frames), audio, landmarks .npy."""
    from pmfs.data.synth.config import SynthConfig
    from pmfs.data.synth.generate import build_synthetic_dataset

    out = tmp_path_factory.mktemp("memory_synth")
    build_synthetic_dataset(
        SynthConfig(out=out, speakers=1, clips=1, size=64, raw=True, workers=1, min_seconds=1.0,
                    max_seconds=1.0, progress=False)
    )  # fmt: skip
    raw = out / "raw"
    return {k: next(raw.rglob(f"*.{e}")) for k, e in (("video", "mp4"), ("audio", "m4a"),
                                                      ("npy", "npy"))}  # fmt: skip


def test_a_minute_of_audio_holds_each_template_crop_once(clip_files: dict[str, Path]) -> None:
    """60 s at 256²: 25 crops (19 MB), not 1500 (1.2 GB); each output frame reads its crop."""
    template = load_template(clip_files["video"])
    track = detect_template(template, InferenceOptions(), landmarks=clip_files["npy"])
    audio = np.resize(load_audio(clip_files["audio"]), 60 * SAMPLE_RATE)
    clip, order = build_clip_inputs(template, track, crop_box(track), audio, 256)
    assert clip.num_frames == 1500 and clip.frames.shape == (25, 3, 256, 256)
    tensors = [clip.mel, clip.frames, clip.landmarks, clip.ref_frames, clip.ref_landmarks]
    assert sum(t.nbytes for t in tensors) < 40e6  # frames 19.7 MB, mel windows 7.7 MB
    assert clip.frame_order is not None and clip.frame_order.tolist() == order.tolist()
    for start in (0, 17, 1490):
        chunk = clip.target_frames(start, start + 16)  # (≤ 16, 3, 256, 256)
        assert torch.equal(chunk, clip.frames[order[start : start + 16]])
    head = clip.head(30)
    assert head.num_frames == 30 and torch.equal(
        head.target_frames(0, 30), clip.target_frames(0, 30)
    )


def test_streamed_targets_render_as_the_materialized_clip(
    known_pmfs_checkpoint: Path, clip_files: dict[str, Path]
) -> None:
    """The whole chain on a ping-pong clip equals the chain on its per-frame tensor."""
    model, _ = load_system(known_pmfs_checkpoint, torch.device("cpu"))
    template = load_template(clip_files["video"], max_frames=4)
    track = detect_template(template, InferenceOptions(), landmarks=clip_files["npy"])
    audio = load_audio(clip_files["audio"])[: int(0.8 * SAMPLE_RATE)]  # 20 frames over 4 crops
    labels = emotion_labels(model, None, None)
    clip, order = build_clip_inputs(template, track, crop_box(track), audio, 64, 3, *labels)
    eager = replace(clip, frames=clip.frames[order], frame_order=None)  # (20, 3, 64, 64)
    lazy_out = model.generate_clip(clip, chunk=6)
    eager_out = model.generate_clip(eager, chunk=6)
    assert torch.equal(lazy_out.frames, eager_out.frames)


@pytest.mark.slow
def test_peak_rss_does_not_grow_with_the_audio(
    known_pmfs_checkpoint: Path, clip_files: dict[str, Path]
) -> None:
    """A real `pmfs infer` process at 256² crops: 3 s vs 8 s of audio. Before issue 16 the 125
    extra frames cost 114 MB (863 → 977 MB); after, 833 → 862 MB (run-to-run noise of the peak
    is about ±30 MB, hence the bound)."""
    options = MemoryOptions(
        ckpt=known_pmfs_checkpoint,
        face=clip_files["video"],
        landmarks=clip_files["npy"],
        seconds=(3.0, 8.0),
        infer_args="--size 256",
    )
    payload = memory_payload(options)
    assert payload is not None, "pmfs infer failed (see the log)"
    short, long = (run["peak_rss_mb"] for run in payload["runs"])
    assert long - short < 60, f"peak RSS grew from {short:.0f} to {long:.0f} MB"
    assert payload["rss_ratio"] < 1.2


def test_bench_memory_needs_a_checkpoint(
    tmp_path: Path, clip_files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    options = MemoryOptions(ckpt=tmp_path / "no.ckpt", face=clip_files["video"])
    assert memory_payload(options) is None
    assert f"checkpoint {tmp_path / 'no.ckpt'} not found; give --ckpt" in caplog.text
    speech = syllables(2.5)
    assert speech.shape == (40000,) and speech.dtype == np.float32
    assert 0.05 < np.abs(speech).max() <= 1 and (np.abs(speech) < 1e-6).mean() > 0.1  # pauses
