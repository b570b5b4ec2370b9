"""The real `pmfs fit -c experiments/demo.yaml` under DDP on 2 CPU processes (gloo), and a run
killed with SIGKILL and resumed with `--ckpt_path last` (DESIGN §6, §7).

Both run `python -m pmfs` in subprocesses, as users do (Lightning's DDP launcher re-runs the
command for the second process). Metrics are read from a CSVLogger.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "experiments" / "demo.yaml"


def _overlay(tmp_path: Path, name: str) -> Path:
    """A CSV logger in `tmp_path/name` instead of the demo's W&B logger."""
    path = tmp_path / f"{name}.yaml"
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger"}
    logger["init_args"] = {"save_dir": str(tmp_path / name), "name": "csv"}  # type: ignore[assignment]
    path.write_text(yaml.safe_dump({"trainer": {"logger": logger}}))
    return path


def _fit_args(root: Path, tmp_path: Path, name: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pmfs",
        "fit",
        "-c",
        str(DEMO),
        "-c",
        str(_overlay(tmp_path, name)),
        f"--data.init_args.root={root}",
        "--data.init_args.image_size=64",  # the tiny 64² cache
        "--data.init_args.num_workers=0",
        "--model.init_args.mouth_to_face.init_args.content_noise=0.0",
        "--trainer.log_every_n_steps=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.deterministic=true",
        f"--trainer.default_root_dir={tmp_path / name}",
        *extra,
    ]


def _rows(tmp_path: Path, name: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted((tmp_path / name / "csv").glob("version_*/metrics.csv")):
        with path.open() as handle:
            rows += [row for row in csv.DictReader(handle) if row.get("train/loss")]
    return rows


def _run(args: list[str], timeout: float = 300) -> None:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONHASHSEED": "0"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def test_ddp_on_two_cpu_processes_gives_the_single_process_loss(
    tiny_synth_root: Path, tmp_path: Path
) -> None:
    """2 processes × batch 2 see the items 1 process × batch 4 sees, and log the same loss."""
    steps = ["--trainer.max_steps=4", "--trainer.limit_val_batches=0"]  # one batch: 4 optimizers
    _run(_fit_args(tiny_synth_root, tmp_path, "single", "--data.init_args.batch_size=4", *steps))
    _run(
        _fit_args(
            tiny_synth_root,
            tmp_path,
            "ddp",
            "--data.init_args.batch_size=2",
            "--trainer.strategy=ddp",
            "--trainer.devices=2",
            "--trainer.accelerator=cpu",
            *steps,
        )
    )
    single, ddp = _rows(tmp_path, "single"), _rows(tmp_path, "ddp")
    assert single and ddp
    expected, got = float(single[0]["train/loss"]), float(ddp[0]["train/loss"])
    assert got == pytest.approx(expected, rel=1e-4), (expected, got)


def test_killed_run_resumes_with_the_same_next_loss(tiny_synth_root: Path, tmp_path: Path) -> None:
    """SIGKILL after a checkpoint, `--ckpt_path last`: same step, same next loss."""
    epochs = ["--trainer.max_epochs=4", "--trainer.limit_val_batches=1"]
    batch = ["--data.init_args.batch_size=2", "--data.init_args.samples_per_clip=4"]
    _run(_fit_args(tiny_synth_root, tmp_path, "whole", *batch, *epochs))
    reference = {int(row["step"]): float(row["train/loss"]) for row in _rows(tmp_path, "whole")}

    args = _fit_args(tiny_synth_root, tmp_path, "killed", *batch, *epochs)
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONHASHSEED": "0"}
    # checkpoints go to <root>/runs/<config stems joined by +>/checkpoints (pmfs.commands.lightning)
    last = tmp_path / "killed" / "runs" / "demo+killed" / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not last.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert last.exists(), "the run died before its first checkpoint"
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    # weights_only=True, as Lightning loads it on resume; logged steps count batches, while
    # `global_step` counts the optimizer steps (one per stage and the discriminator)
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    step = int(checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"])
    assert step < max(reference), "killed after the last batch: nothing left to resume"
    _run(_fit_args(tiny_synth_root, tmp_path, "killed", *batch, *epochs, "--ckpt_path=last"))
    resumed = [r for r in _rows(tmp_path, "killed") if int(r["step"]) >= step]
    first = min(int(r["step"]) for r in resumed)
    assert first in reference, (first, sorted(reference))
    continued = {int(r["step"]): float(r["train/loss"]) for r in resumed}
    assert continued[first] == pytest.approx(reference[first], rel=1e-5, abs=1e-6)
    assert max(continued) == max(reference)  # and it finished the same schedule


@pytest.mark.slow
def test_torchrun_launches_the_same_ddp_run(tiny_synth_root: Path, tmp_path: Path) -> None:
    """`torchrun --nproc_per_node 2 -m pmfs fit ...` (as in the README's multi-node example, on
    CPU processes): Lightning takes torchrun's environment and logs the single-process loss."""
    steps = ["--trainer.max_steps=4", "--trainer.limit_val_batches=0"]
    _run(_fit_args(tiny_synth_root, tmp_path, "single", "--data.init_args.batch_size=4", *steps))
    fit = _fit_args(tiny_synth_root, tmp_path, "torchrun", "--data.init_args.batch_size=2", *steps)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2"]
    launcher += ["--master_port=29517"]
    ddp = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"]
    _run([*launcher, "-m", *fit[2:], *ddp])  # fit[:2] is `python -m`
    single, ddp_rows = _rows(tmp_path, "single"), _rows(tmp_path, "torchrun")
    assert single and ddp_rows
    expected, got = float(single[0]["train/loss"]), float(ddp_rows[0]["train/loss"])
    assert got == pytest.approx(expected, rel=1e-4), (expected, got)
