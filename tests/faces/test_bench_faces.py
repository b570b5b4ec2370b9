"""`pmfs bench faces` runs the real dlib path on tiny frame counts and reports positive numbers
(nothing timed is asserted): on the astronaut photo, and on the talking-man sample when present."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pmfs.commands import bench
from pmfs.commands.bench.faces import SAMPLE, default_video

TINY = ["--frames", "2", "--warmup", "0", "--repeats", "1"]


def _check(path: Path, source: str, sizes: dict[str, tuple[int, int]]) -> None:
    result = json.loads(path.read_text())
    assert result["benchmark"] == "faces" and result["machine"]["cores"] >= 1
    assert source in result["settings"]["source"]
    runs = {r["size"]: r for r in result["runs"]}
    assert {size: (r["width"], r["height"]) for size, r in runs.items()} == sizes
    for run in runs.values():
        assert run["frames"] == 2 and run["frames_with_face"] == 2, run
        assert run["frames_per_s"] > 0 and run["detect_ms_per_frame"] > 0
        assert run["fit_ms_per_face"] > 0


def test_bench_faces_on_the_astronaut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PMFS_SAMPLES", str(tmp_path / "no_samples"))
    assert default_video() is None
    out = tmp_path / "faces.json"
    assert bench.main(["faces", *TINY, "--json", str(out)]) == 0
    sizes = {"256": (256, 256), "720p": (1280, 720), "1080p": (1920, 1080)}  # padded to 16:9
    _check(out, "astronaut", sizes)
    table = capsys.readouterr().out
    assert "| 1080p | 1920×1080 |" in table and "frames/s per worker" in table


def test_bench_faces_on_the_talking_man(tmp_path: Path) -> None:
    if default_video() is None:
        samples = os.environ.get("PMFS_SAMPLES", "../shared/samples")
        pytest.skip(f"sample {SAMPLE} not found in {samples}")
    out = tmp_path / "faces.json"
    assert bench.main(["faces", *TINY, "--sizes", "720p", "1080p", "--json", str(out)]) == 0
    _check(out, SAMPLE, {"720p": (720, 1280), "1080p": (1080, 1920)})
