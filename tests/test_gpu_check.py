"""`scripts/gpu_check.sh`, issue 15 item 6's one-call GPU check, runs end to end.

No GPU is lent to most sessions, so the script would first run on the one that has a device, with
no time to debug it there. `PMFS_CHECK_DEVICE=cpu PMFS_CHECK_QUICK=1` runs the same commands tiny
on the CPU: the real `pmfs bench infer|train`, `pmfs data synth`, `pmfs fit -c
experiments/demo.yaml` with its command-line overrides, and `scripts/loss_trend.py`.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.sh"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("gpu_check")
    env = os.environ | {
        "OUT": str(out),
        "PMFS_CHECK_DEVICE": "cpu",
        "PMFS_CHECK_QUICK": "1",
        "PYTHON": sys.executable,
    }
    run = subprocess.run(
        ["bash", str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    return out, run


def test_script_succeeds(results: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, run = results
    logs = "\n".join(p.read_text()[-2000:] for p in sorted(out.glob("*.log")))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:] + logs


def test_inference_results_cover_every_precision_and_chunk(
    results: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, _ = results
    for precision in ("32", "bf16-mixed"):
        for chunk in (1, 4):
            path = out / f"infer_{precision}_chunk{chunk}.json"
            assert path.is_file(), f"{path.name} missing"
            payload = json.loads(path.read_text())
            assert payload["settings"]["precision"] == precision
            assert payload["settings"]["chunk"] == chunk
            runs = {run["image_size"]: run for run in payload["runs"]}
            assert set(runs) == {32, 64}
            assert all(run["frames_per_s"] > 0 for run in runs.values())
            assert payload["gemm_ceiling_gflops_per_s"] > 0


def test_training_step_and_fit_ran(results: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = results
    train = json.loads((out / "train_bf16.json").read_text())
    assert train["settings"]["precision"] == "bf16-mixed"
    assert train["settings"]["image_size"] == 64 and train["settings"]["batch_size"] == 2
    assert train["stages"][0]["step_s"] and all(t > 0 for t in train["stages"][0]["step_s"])
    metrics = out / "fit" / "demo256" / "version_0" / "metrics.csv"
    with metrics.open() as f:
        losses = [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
    assert len(losses) >= 2
    assert (out / "fit_trend.txt").read_text().strip()


@pytest.mark.parametrize(
    ("values", "flags", "code"),
    [
        ("5 4 3 2 1", (), 0),  # falling
        ("1 2 3 4 5", (), 1),  # rising
        ("1 2 3 4 5", ("--finite-only",), 0),  # the quick rehearsal: finite is enough
        ("5 4 nan 2 1", ("--finite-only",), 1),  # never a non-finite loss
    ],
)
def test_loss_trend(values: str, flags: tuple[str, ...], code: int, tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(
        "step,train/loss\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values.split()))
    )
    script = REPO / "scripts" / "loss_trend.py"
    run = subprocess.run(
        [sys.executable, str(script), str(metrics), "train/loss", *flags],
        capture_output=True,
        text=True,
    )
    assert run.returncode == code, run.stdout
