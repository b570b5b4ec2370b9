"""`pmfs bench loader` runs on a generated cache and reports positive numbers (no timing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pmfs import bench
from pmfs.data.cache import CacheWriter, ClipData


def _write_cache(root: Path, size: int = 32, frames: int = 24) -> Path:
    """Two speakers × two clips of random, structurally valid data."""
    rng = np.random.default_rng(0)
    with CacheWriter(root, "synthetic", {"size": size}, extra={"test_speakers": ["S02"]}) as w:
        for speaker in ("S01", "S02"):
            for j in range(2):
                data = ClipData(
                    frames=rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8),
                    landmarks=rng.uniform(0, size - 1, (frames, 68, 2)).astype(np.float32),
                    fg_mask=rng.integers(0, 256, (frames, size, size), dtype=np.uint8),
                    audio=(rng.standard_normal(640 * frames) * 0.1).astype(np.float32),
                    mel=rng.uniform(-4, 4, (80, int(3.2 * frames) + 1)).astype(np.float32),
                    meta={"fps": 25, "size": size},
                )
                w.write_clip(w.record(speaker, "happy", 2, f"{speaker}_happy_{j}"), data)
    return root


def test_bench_loader_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = _write_cache(tmp_path / "cache")
    out = tmp_path / "bench" / "loader.json"
    argv = ["loader", "--cache", str(cache), "--json", str(out), "--workers", "0", "1"]
    argv += ["--landmark-samples", "64", "--image-samples", "16", "--batch-size", "4"]
    argv += ["--landmark-batch-size", "16", "--image-size", "32", "--profile-samples", "8"]
    argv += ["--background", "remove"]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "loader"
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu"]
    assert result["cache"]["clips"] == 4
    runs = {(r["kind"], r["workers"]): r for r in result["runs"]}
    kinds = ("landmarks", "stage3", "stage3_uint8")
    assert set(runs) == {(kind, workers) for kind in kinds for workers in (0, 1)}
    for run in runs.values():
        assert run["samples"] == (64 if run["kind"] == "landmarks" else 16)
        assert run["seconds"] > 0 and run["samples_per_s"] > 0 and run["per_worker"] > 0
    assert set(result["scaling_1_to_2_workers"]) == set(kinds)  # None: no 2-worker run
    profile = result["profile_stage3_ms_per_sample"]
    assert set(profile) >= {"jpeg_decode", "mask_decode", "item", "collate"}
    assert all(r["per_cpu_second"] > 0 and r["cpu_seconds"] > 0 for r in runs.values())
    assert all(v > 0 for v in profile.values())
    table = capsys.readouterr().out
    assert "| landmarks | 1 | 16 |" in table and "| stage3 | 0 | 4 |" in table


def test_bench_requires_a_subcommand() -> None:
    with pytest.raises(SystemExit):
        bench.main([])


def test_bench_loader_missing_cache_is_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert bench.main(["loader", "--cache", str(tmp_path / "none")]) == 2
    assert "pmfs data synth" in caplog.text
