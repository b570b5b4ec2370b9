"""`pmfs demo` end to end on a tiny synthetic set: the README's main command, minus the venv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pmfs.demo import main
from pmfs.video import probe_video, read_video


def test_demo_writes_dataset_sheet_and_video(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    args = ["--out", str(out), "--speakers", "2", "--clips", "2", "--size", "64"]
    assert main(args) == 0
    sheet = np.asarray(Image.open(out / "contact_sheet.png").convert("RGB"))
    assert sheet.std() > 10  # not blank
    info = probe_video(out / "demo.mp4")
    assert info.has_audio
    assert (info.width, info.height) == (3 * 64, 64)  # frame | sketch | overlay
    video = read_video(out / "demo.mp4")
    assert video.audio is not None
    assert abs(len(video.audio) / 16000 - video.num_frames / 25) < 0.08
    sketch_panel = video.frames[:, :, 64:128].astype(np.float32)
    assert sketch_panel.max() > 150  # sketch lines are drawn ...
    assert (sketch_panel < 40).mean() > 0.5  # ... on a mostly black canvas
    # a rerun reuses the finished dataset and still succeeds
    assert main(args) == 0
