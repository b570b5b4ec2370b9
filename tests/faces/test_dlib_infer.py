"""`pmfs infer` with the dlib backend chosen by `--detector auto` (no face-alignment weights): the
one line saying which detector and why, the astronaut photo animated, and a face too small to fit
refused in one line. The checkpoint is tests/conftest.py's `known_pmfs_checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from skimage import data

from pmfs.commands.infer import main
from pmfs.faces.dlib_detector import LICENCE
from pmfs.video import probe_video


@pytest.fixture
def no_fa_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch_home_without_weights"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def _inputs(folder: Path, scale: float) -> tuple[Path, Path]:
    """The astronaut resized by `scale` as a PNG, and 0.4 s of a 44.1 kHz tone as a wav."""
    side = round(512 * scale)
    image = folder / f"astronaut_{side}.png"
    Image.fromarray(data.astronaut()).resize((side, side), Image.Resampling.LANCZOS).save(image)
    wav = folder / "tone.wav"
    t = np.arange(int(0.4 * 44100)) / 44100
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))), 44100)
    return image, wav


def _infer(ckpt: Path, audio: Path, face: Path, out: Path) -> int:
    argv = ["--ckpt", str(ckpt), "--audio", str(audio), "--face", str(face), "--out", str(out)]
    return main([*argv, "--device", "cpu", "--no-progress"])


def test_auto_uses_dlib_and_says_so_in_one_line(
    known_pmfs_checkpoint: Path, no_fa_weights: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    image, wav = _inputs(tmp_path, 1.0)
    out = tmp_path / "astronaut.mp4"
    assert _infer(known_pmfs_checkpoint, wav, image, out) == 0
    lines = capsys.readouterr().out.splitlines()
    detector = [line for line in lines if line.startswith("landmark detector:")]
    assert len(detector) == 1
    assert detector[0].startswith("landmark detector: dlib (--detector auto: face-alignment's")
    assert str(no_fa_weights) in detector[0] and LICENCE in detector[0]
    info = probe_video(out)
    assert (info.height, info.width) == (512, 512) and info.num_frames == 10  # 0.4 s at 25 fps


def test_a_face_too_small_is_refused_in_one_line(
    known_pmfs_checkpoint: Path, no_fa_weights: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    image, wav = _inputs(tmp_path, 0.5)  # the face is ~45 px: found, but under 64 px
    assert _infer(known_pmfs_checkpoint, wav, image, tmp_path / "o.mp4") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no face found in any of the 1 frames")
    assert "face too small for the 68-point model" in err[0] and "under 64 px" in err[0]
    assert not (tmp_path / "o.mp4").exists()
