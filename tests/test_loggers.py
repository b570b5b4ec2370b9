"""`pmfs.loggers.WandbLogger`: mode from credentials, group/tags from wandb's env, and the run
identity and config `pmfs fit` gives it; runs are offline and read back from their folders."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import yaml

from pmfs.cli import main
from pmfs.loggers import WandbLogger, wandb_credentials_source

wandb = pytest.importorskip("wandb")
from wandb_reader import history, offline_runs, read_records, run_info  # noqa: E402

BORING = "lightning.pytorch.demos.boring_classes"
API_KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 characters: the format wandb checks
WANDB_ENV = (
    "WANDB_API_KEY",
    "WANDB_IDENTITY_TOKEN_FILE",
    "WANDB_MODE",
    "WANDB_BASE_URL",
    "WANDB_RUN_GROUP",
    "WANDB_TAGS",
    "WANDB_DIR",
    "NETRC",
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME without W&B credentials, and no W&B variables in the environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / ".config" / "wandb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in WANDB_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


def test_no_credentials_goes_offline_and_says_so_once(
    home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert wandb_credentials_source() is None
    with caplog.at_level(logging.INFO):
        logger = WandbLogger(save_dir=str(tmp_path), project="pmfs-test")
    assert logger.mode == "offline"
    lines = [
        record.getMessage() for record in caplog.records if "wandb sync" in record.getMessage()
    ]
    assert len(lines) == 1 and "offline" in lines[0] and str(tmp_path) in lines[0]


def test_save_dir_is_created_before_wandb_looks_for_the_repository(
    home: Path, tmp_path: Path
) -> None:
    save_dir = tmp_path / "not" / "yet"
    WandbLogger(save_dir=str(save_dir), project="pmfs-test")
    assert save_dir.is_dir()  # else wandb warns "git root ... does not exist"


def test_netrc_key_for_the_wandb_host_goes_online(home: Path) -> None:
    netrc = home / ".netrc"
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {API_KEY}\n")
    netrc.chmod(0o600)
    assert wandb_credentials_source() == "netrc"
    assert WandbLogger(project="pmfs-test").mode == "online"  # decided, never connected
    netrc.write_text(f"machine example.org\n  login user\n  password {API_KEY}\n")
    assert wandb_credentials_source() is None  # a key for another host is no W&B credential


def test_api_key_variable_goes_online(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", API_KEY)
    assert wandb_credentials_source() == "WANDB_API_KEY"
    assert WandbLogger(project="pmfs-test").mode == "online"


def test_explicit_settings_win(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert WandbLogger(offline=False).mode == "online"  # forced, without credentials
    monkeypatch.setenv("WANDB_API_KEY", API_KEY)
    assert WandbLogger(offline=True).mode == "offline"  # forced, with credentials
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert WandbLogger().mode == "offline"  # WANDB_MODE wins over the credentials
    monkeypatch.delenv("WANDB_MODE")
    assert WandbLogger(mode="offline").mode == "offline"  # wandb.init's own argument
    with pytest.raises(Exception, match="log_model"):
        WandbLogger(offline=True, log_model=True)
    with pytest.raises(ValueError, match="mode"):
        WandbLogger(offline=False, mode="offline")


def test_group_and_tags_from_env_land_in_the_run(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_RUN_GROUP", "sweep-1")
    monkeypatch.setenv("WANDB_TAGS", "no_warping,extra")
    logger = WandbLogger(save_dir=str(tmp_path), project="pmfs-test", tags=["mine", "extra"])
    logger.log_metrics({"val/loss": 0.5}, step=3)
    logger.experiment.finish()
    (run_dir,) = offline_runs(tmp_path)
    info = run_info(run_dir)
    assert info.group == "sweep-1"
    assert info.tags == ["mine", "extra", "no_warping"]
    logged = history(run_dir)
    assert logged["val/loss"] == [0.5] and logged["trainer/global_step"] == [3]
    # the dashboard's x-axis: Lightning's `define_metric("*", step_metric="trainer/global_step")`
    metrics = [record.metric for record in read_records(run_dir) if record.HasField("metric")]
    assert any(m.glob_name == "*" and m.step_metric == "trainer/global_step" for m in metrics)


def _boring_config(tmp_path: Path, csv_too: bool = False) -> tuple[Path, Path]:
    """A BoringModel `full.yaml` logging to W&B (and CSV), and a `no_warping.yaml` overlay."""
    wandb_logger = {
        "class_path": "pmfs.loggers.WandbLogger",
        "init_args": {"project": "pmfs-test", "save_dir": str(tmp_path)},
    }
    csv_logger = {
        "class_path": "lightning.pytorch.loggers.CSVLogger",
        "init_args": {"save_dir": str(tmp_path / "csv")},
    }
    base = tmp_path / "full.yaml"
    base.write_text(
        yaml.safe_dump(
            {
                "seed_everything": 1,
                "trainer": {
                    "max_steps": 2,
                    "limit_val_batches": 1,
                    "accelerator": "cpu",
                    "enable_checkpointing": False,
                    "enable_progress_bar": False,
                    "default_root_dir": str(tmp_path / "runs"),
                    "logger": [wandb_logger, csv_logger] if csv_too else wandb_logger,
                },
                "model": {"class_path": f"{BORING}.BoringModel"},
                "data": {"class_path": f"{BORING}.BoringDataModule"},
            }
        )
    )
    overlay = tmp_path / "no_warping.yaml"
    overlay.write_text(yaml.safe_dump({"trainer": {"max_steps": 3}}))
    return base, overlay


def test_fit_names_groups_tags_and_logs_the_full_config(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, overlay = _boring_config(tmp_path, csv_too=True)  # a list of loggers, as full.yaml
    monkeypatch.setattr(sys, "argv", ["pmfs"])
    assert main(["fit", "-c", str(base), "-c", str(overlay)]) == 0
    wandb.finish()
    (run_dir,) = offline_runs(tmp_path)
    info = run_info(run_dir)
    assert (info.name, info.group, info.tags) == ("full+no_warping", "full", ["no_warping"])
    assert info.config["trainer"]["max_steps"] == 3  # resolved: the overlay won
    assert info.config["trainer"]["max_epochs"] is None  # defaults are logged too
    assert info.config["model"]["class_path"] == f"{BORING}.BoringModel"
    assert info.config["config_files"] == [str(base), str(overlay)]
    assert info.config["seed_everything"] == 1
    (hparams,) = (tmp_path / "csv").rglob("hparams.yaml")  # every logger gets the config
    assert yaml.safe_load(hparams.read_text())["trainer"]["max_steps"] == 3


def test_fit_keeps_names_given_by_config_or_env(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, overlay = _boring_config(tmp_path)
    monkeypatch.setattr(sys, "argv", ["pmfs"])
    monkeypatch.setenv("WANDB_RUN_GROUP", "my-sweep")
    args = ["fit", "-c", str(base), "-c", str(overlay), "--trainer.logger.init_args.name=mine"]
    assert main(args) == 0
    wandb.finish()
    (run_dir,) = offline_runs(tmp_path)
    info = run_info(run_dir)
    assert (info.name, info.group) == ("mine", "my-sweep")
