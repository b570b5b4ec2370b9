"""`pmfs fit|validate|test|predict`: LightningCLI with the framework's defaults.

- model and data are given by `class_path` (`subclass_mode`), so any stage, the PMFS system, or a
  user's own LightningModule / LightningDataModule can be configured from YAML;
- `parser_mode="omegaconf+"`: `${...}` interpolation is resolved on the merged config, so an
  overlay can refer to a value of the file it stacks on (`${trainer.max_epochs}`: paths are
  written from the config's root, without the sub-command);
- `-c/--config` stacks (later files override earlier ones), `--print_config` shows the result;
- an unknown key or a value of the wrong type fails at parse time, before any data is read;
- the resolved config is saved next to the logs (overwriting on resume) and logged in full to
  every logger (`log_hyperparams`: the W&B run config), so a dashboard can filter on any key;
- a `pmfs.loggers.WandbLogger` without a name is named after the stacked config files
  (`-c experiments/full.yaml -c experiments/ablations/no_warping.yaml` → `full+no_warping`),
  grouped by the first (`full`, unless `WANDB_RUN_GROUP` is set) and tagged by the others;
- a `ModelCheckpoint` without a `dirpath` writes to `<default_root_dir>/runs/<name>/checkpoints`
  (`<name>` as above), a folder that does not change between runs of the same experiment, so
  `--ckpt_path last` resumes its latest run whatever the logger's run id or version;
- every Trainer gets `pmfs.distributed.ReleaseProcessGroup`, so each DDP rank on CPUs (gloo)
  destroys its process group before it exits instead of aborting in the interpreter's teardown;
- model and data are checked against each other before the loop starts (`check_model_meets_data`:
  a `FaceRenderer` composites for the background the DataModule prepares its frames for), here,
  where they meet, so that the stages know nothing of the DataModules.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonargparse
import yaml
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from pmfs.data.dataset import SampleSpec
from pmfs.distributed import ReleaseProcessGroup
from pmfs.loggers import WandbLogger
from pmfs.stages.face_renderer import FaceRenderer

PARSER_KWARGS: dict[str, Any] = {"parser_mode": "omegaconf+"}
# With sub-commands the merged config's root is `fit.`; let users write `${trainer.x}`.
jsonargparse.set_parsing_settings(omegaconf_absolute_to_relative_paths=True)


def config_stems(config_files: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The names of stacked config files without folder and suffix, each once, in order."""
    return list(dict.fromkeys(Path(os.fspath(path)).stem for path in config_files))


class LoggerSaveConfigCallback(SaveConfigCallback):
    """Saves the config next to the logs and logs it in full to every logger.

    The resolved config (every default filled in, `${...}` resolved) goes to `log_hyperparams` as
    nested mappings (`model.init_args.warping`, ...); the stacked files go as `config_files`.
    """

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Log the config to `trainer.loggers` (rank zero only; Lightning calls it there)."""
        config: dict[str, Any] = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        config.pop("config", None)  # the dump leaves the config files out; they are logged here
        files = [os.fspath(path) for path in self.config.get("config") or []]
        params = {**config, "config_files": files}
        for logger in trainer.loggers:
            logger.log_hyperparams(params)


class PMFSLightningCLI(LightningCLI):
    """LightningCLI configured for PMFS experiments (see the module docstring)."""

    def __init__(self, args: Sequence[str] | None = None, run: bool = True) -> None:
        subcommands = ("fit", "validate", "test", "predict")
        super().__init__(
            model_class=LightningModule,
            datamodule_class=LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            parser_kwargs={
                "prog": "pmfs",
                **PARSER_KWARGS,
                **{name: dict(PARSER_KWARGS) for name in subcommands},
            },
            save_config_callback=LoggerSaveConfigCallback,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"callbacks": [ReleaseProcessGroup()]},
            auto_configure_optimizers=False,
            args=list(args) if args is not None else None,
            run=run,
        )

    def before_instantiate_classes(self) -> None:
        """Name W&B runs and place checkpoints after the config files, unless the config does."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        stems = config_stems(config.get("config") or [])
        if not stems:
            return
        loggers = config.trainer.logger
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            if _is_class(logger, WandbLogger):
                _default_run_identity(logger.init_args, stems)
        root = config.trainer.get("default_root_dir") or "."
        for callback in config.trainer.get("callbacks") or []:
            if _is_class(callback, ModelCheckpoint) and callback.init_args.get("dirpath") is None:
                callback.init_args.dirpath = os.path.join(
                    root, "runs", "+".join(stems), "checkpoints"
                )

    def before_fit(self) -> None:
        """Check model against data before training (`check_model_meets_data`)."""
        check_model_meets_data(self.model, self.datamodule)

    before_validate = before_test = before_predict = before_fit


def check_model_meets_data(model: LightningModule, datamodule: LightningDataModule | None) -> None:
    """Fail before any batch is read when the model and the DataModule disagree.

    Every `FaceRenderer` of the model (the model itself, or the `PMFS` system's stage 3) must
    composite for the background mode the DataModule prepares its frames for (the `spec` of a
    `data_modules.TalkingFaceDataModule`; `pmfs` does not import `data_modules`, which builds on
    it, so the DataModule is known by its library `SampleSpec`).

    Raises:
        ValueError: the two background modes differ (`FaceRenderer.check_background`).
    """
    spec = getattr(datamodule, "spec", None)
    if not isinstance(spec, SampleSpec):
        return
    for module in model.modules():
        if isinstance(module, FaceRenderer):
            module.check_background(spec.background)


def _is_class(entry: Any, base: type) -> bool:
    """Whether a parsed `class_path` entry (a logger, a callback) names `base` or a subclass."""
    class_path = getattr(entry, "class_path", None)
    if not isinstance(class_path, str) or "." not in class_path:
        return False
    module_name, _, class_name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    return isinstance(cls, type) and issubclass(cls, base)


def _default_run_identity(init_args: jsonargparse.Namespace, stems: list[str]) -> None:
    """Fill name, group and tags of a W&B logger's init args from the config stems."""
    if init_args.get("name") is None:
        init_args.name = "+".join(stems)
    if init_args.get("group") is None and not os.environ.get("WANDB_RUN_GROUP"):
        init_args.group = stems[0]
    if not init_args.get("tags") and len(stems) > 1:
        init_args.tags = stems[1:]


def run_lightning_cli(args: Sequence[str] | None = None) -> PMFSLightningCLI:
    """Run `pmfs <subcommand> ...`.

    Args:
        args: the arguments including the sub-command, e.g. `["fit", "-c", "x.yaml"]`; None reads
            `sys.argv[1:]` (the console script).
    """
    return PMFSLightningCLI(args=args)
