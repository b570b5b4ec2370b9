"""`ReleaseProcessGroup`: each DDP rank on CPUs destroys its gloo group before it exits.

Without it a rank can abort in the interpreter's teardown after training finished (SIGABRT,
`terminate called without an active exception`; it failed a CI run of the DDP sampler test).
The abort is a race, so the tests check its cause deterministically: a probe registered at the
start of each spawned rank's setup runs *after* every later `atexit` handler and records whether
the group still exists when the interpreter is about to tear down.
"""

from __future__ import annotations

import atexit
import json
from pathlib import Path

import pytest
import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel

from pmfs.commands.lightning import PMFSLightningCLI
from pmfs.distributed import ReleaseProcessGroup


def _record_at_exit(path: str) -> None:
    Path(path).write_text(json.dumps({"group_alive": dist.is_initialized()}))


class _ExitProbe(Callback):
    """Registers, in every rank, an `atexit` handler that records whether the group is alive.

    Listed before `ReleaseProcessGroup`, its `setup` runs first, so its handler runs last
    (`atexit` runs handlers in reverse order of registration).
    """

    def __init__(self, out: str) -> None:
        self.out = out

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        atexit.register(_record_at_exit, f"{self.out}/rank{trainer.global_rank}.json")


def _spawn_fit(out: Path, callbacks: list[Callback]) -> list[bool]:
    """Fit a BoringModel on 2 CPU processes (`ddp_spawn`, gloo); each rank's record at exit."""
    trainer = Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_steps=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_ExitProbe(str(out)), *callbacks],
    )
    trainer.fit(BoringModel(), BoringDataModule())
    return [json.loads((out / f"rank{r}.json").read_text())["group_alive"] for r in range(2)]


@pytest.mark.parametrize("release", [True, False], ids=["released", "without-callback"])
def test_every_rank_destroys_its_group_before_exit(tmp_path: Path, release: bool) -> None:
    alive = _spawn_fit(tmp_path, [ReleaseProcessGroup()] if release else [])
    # Without the callback the group is still there when teardown starts (Lightning destroys
    # NCCL groups only): the probe can tell, so the released case is a real check.
    assert alive == ([False, False] if release else [True, True])


def test_the_cli_gives_every_trainer_the_callback(tmp_path: Path) -> None:
    boring = "lightning.pytorch.demos.boring_classes"
    cli = PMFSLightningCLI(
        args=[
            f"--model={boring}.BoringModel",
            f"--data={boring}.BoringDataModule",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.logger=false",
            "--trainer.callbacks+=lightning.pytorch.callbacks.LearningRateMonitor",
        ],
        run=False,
    )
    kinds = [type(callback) for callback in cli.trainer.callbacks]
    assert kinds.count(ReleaseProcessGroup) == 1
    assert any(kind.__name__ == "LearningRateMonitor" for kind in kinds)  # config's kept too
