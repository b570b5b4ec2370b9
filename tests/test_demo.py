"""`pmfs demo` end to end on a tiny synthetic set: the README's main command, minus the venv.

The real thing: `pmfs fit -c experiments/demo.yaml` in a subprocess (a few batches), the W&B run
offline, `pmfs infer`'s pipeline for demo.mp4, `pmfs figure` for the figures.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pmfs.audio import SAMPLE_RATE
from pmfs.commands.demo import (
    DEMO_CONFIG,
    DemoOptions,
    build_parser,
    main,
    pick_demo_clips,
    size_args,
)
from pmfs.data.cache import Cache
from pmfs.options import options_from_args, parser_fields
from pmfs.video import probe_video, read_video

TINY = ["--speakers", "2", "--clips", "2", "--size", "128"]
FIT = [
    "--fit-arg=--trainer.max_epochs=2",  # FaceVideoLogger logs every 2nd epoch
    "--fit-arg=--trainer.limit_train_batches=2",
    "--fit-arg=--trainer.limit_val_batches=1",
    "--fit-arg=--data.init_args.num_workers=0",
    "--fit-arg=--data.init_args.batch_size=4",
]


def test_demo_trains_renders_and_draws(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no netrc, no wandb settings: offline
    # as if this process had a W&B run open: the training must log through its own service
    monkeypatch.setenv("WANDB_SERVICE", "2-1-tcp-localhost-9")
    out = tmp_path / "outputs"
    assert main(["--out", str(out), *TINY, *FIT]) == 0
    printed = capsys.readouterr().out
    sheet = np.asarray(Image.open(out / "contact_sheet.png").convert("RGB"))
    assert sheet.std() > 10  # not blank
    assert (out / "runs" / "demo" / "checkpoints" / "last.ckpt").is_file()
    # demo.mp4: the face clip's frames (128² crops, the renderer's network at 64²), the speech
    # clip's length, with audio, and its sharpness against the face clip
    cache = Cache(out / "data" / "synthetic")
    clips = pick_demo_clips(cache)
    assert clips.speaker in cache.extra["test_speakers"] and clips.face != clips.speech
    speech = cache.open(clips.speech)
    info = probe_video(out / "demo.mp4")
    assert info.has_audio and (info.width, info.height) == (128, 128)
    (ratio,) = re.findall(r"sharpness\s+([0-9.]+) \(demo.mp4", printed)
    assert 0 < float(ratio) < 10
    assert info.num_frames == -(-len(speech.audio) * 25 // SAMPLE_RATE)
    video = read_video(out / "demo.mp4")
    assert video.audio is not None and video.frames.std() > 5
    for name in ("ablation", "emotions"):
        figure = np.asarray(Image.open(out / "figures" / f"{name}.png").convert("RGB"))
        assert figure.shape[0] > 64 and figure.std() > 20, name
    # the offline W&B run and how to upload it
    (run,) = (out / "runs" / "wandb").glob("offline-run-*")
    assert f"W&B run       {run}" in printed and f"wandb sync {run}" in printed
    media = list(out.rglob("face_epoch*_video.mp4"))
    assert media, "the validation video of FaceVideoLogger"
    # a rerun reuses the dataset and the finished training, and names the same W&B run
    stamp = (out / "runs" / "demo" / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    assert main(["--out", str(out), *TINY, *FIT]) == 0
    printed = capsys.readouterr().out
    assert "not retrained" in printed and f"W&B run       {run}" in printed
    assert (out / "runs" / "demo" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp
    assert len(list((out / "runs" / "wandb").glob("offline-run-*"))) == 1
    # an interrupted training (no record of it finishing) resumes from its last checkpoint
    (out / "runs" / "demo" / "demo_training.json").unlink()
    assert main(["--out", str(out), *TINY, *FIT]) == 0
    assert "--ckpt_path=last" in capsys.readouterr().out


def test_missing_config_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--out", str(tmp_path / "o"), *TINY, "--config", str(tmp_path / "none.yaml")]
    assert main(args) == 1
    assert "none.yaml not found" in capsys.readouterr().err


def test_parser_is_the_options_dataclass() -> None:
    parser = build_parser()
    assert parser_fields(parser) == {f.name for f in dataclasses.fields(DemoOptions)}
    assert options_from_args(DemoOptions, parser.parse_args([])) == DemoOptions()
    options = options_from_args(DemoOptions, parser.parse_args([*FIT[:2], "--speakers", "2"]))
    assert options.fit_arg == ("--trainer.max_epochs=2", "--trainer.limit_train_batches=2")
    assert options.speakers == 2 and options.clips is None


def test_a_smaller_set_trains_at_its_own_size(tmp_path: Path) -> None:
    """demo.yaml trains on 256² frames; `--size 128` builds a 128² set, so the fit gets 128²."""
    assert size_args(DEMO_CONFIG, 128) == ["--data.init_args.image_size=128"]
    assert size_args(DEMO_CONFIG, 256) == []
    assert size_args(tmp_path / "none.yaml", 128) == []
