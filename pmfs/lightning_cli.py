"""`pmfs fit|validate|test|predict`: LightningCLI with the framework's defaults.

- model and data are given by `class_path` (`subclass_mode`), so any stage, the PMFS system, or a
  user's own LightningModule / LightningDataModule can be configured from YAML;
- `parser_mode="omegaconf+"`: `${...}` interpolation is resolved on the merged config, so an
  overlay can refer to a value of the file it stacks on (`${trainer.max_epochs}`: paths are
  written from the config's root, without the sub-command);
- `-c/--config` stacks (later files override earlier ones), `--print_config` shows the result;
- an unknown key or a value of the wrong type fails at parse time, before any data is read;
- the resolved config is saved next to the logs (overwriting on resume).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsonargparse
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

PARSER_KWARGS: dict[str, Any] = {"parser_mode": "omegaconf+"}
# With sub-commands the merged config's root is `fit.`; let users write `${trainer.x}`.
jsonargparse.set_parsing_settings(omegaconf_absolute_to_relative_paths=True)


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
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            args=list(args) if args is not None else None,
            run=run,
        )


def run_lightning_cli(args: Sequence[str] | None = None) -> PMFSLightningCLI:
    """Run `pmfs <subcommand> ...`.

    Args:
        args: the arguments including the sub-command, e.g. `["fit", "-c", "x.yaml"]`; None reads
            `sys.argv[1:]` (the console script).
    """
    return PMFSLightningCLI(args=args)
