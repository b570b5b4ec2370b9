"""Experiment loggers: Lightning's `WandbLogger` that goes offline by itself without credentials.

Use it from YAML::

    trainer:
      logger:
        class_path: pmfs.loggers.WandbLogger
        init_args: {project: pmfs}

- Mode: an explicit `offline=` or `WANDB_MODE` wins; otherwise the run is online when W&B
  credentials exist on this machine (`WANDB_API_KEY`, `WANDB_IDENTITY_TOKEN_FILE`, an API key for
  the W&B host in the netrc file or in wandb's settings file) and offline when none do, with one
  log line that says how to upload it later (`wandb sync <dir>`). Deciding never contacts a server.
- Group and tags: `group=` / `tags=` from the config, else wandb's own `WANDB_RUN_GROUP` /
  `WANDB_TAGS` (`pmfs sweep` sets them); tags from the config and from `WANDB_TAGS` are merged.
- The x-axis of every metric is `trainer/global_step` (Lightning's default, kept as is).
"""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Mapping
from typing import Any, Literal

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import MisconfigurationException

log = logging.getLogger(__name__)

GROUP_ENV = "WANDB_RUN_GROUP"
TAGS_ENV = "WANDB_TAGS"
MODE_ENV = "WANDB_MODE"


def wandb_credentials_source() -> str | None:
    """Where wandb would find an API key on this machine, without contacting the server.

    Follows wandb's own order (`wandb.sdk.lib.wbauth`): environment variables, then the netrc
    file (`$NETRC`, `~/.netrc`) for the configured host (`WANDB_BASE_URL` or wandb's settings),
    then an `api_key` in wandb's settings file (`$WANDB_CONFIG_DIR/settings`).

    Returns:
        A short description of the source ("WANDB_API_KEY", "netrc", ...), or None when there
        are no credentials.
    """
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        if os.environ.get(name):
            return name
    from wandb.errors import AuthenticationError
    from wandb.sdk.lib.wbauth import read_netrc_auth

    settings = _wandb_settings()
    try:
        if read_netrc_auth(host=settings.base_url):
            return "netrc"
    except AuthenticationError as error:  # a malformed key: wandb would refuse it too
        log.warning("ignoring the W&B key in the netrc file: %s", error)
    if settings.api_key:
        return "wandb settings"
    return None


def own_wandb_service(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for a child process that logs its own W&B runs.

    A process with a W&B run open exports `WANDB_SERVICE`, and children that inherit it hand
    their runs to that process's service: the runs then resolve relative paths against the
    parent's working directory and are not complete on disk when the child exits. Without the
    variable the child starts its own service.
    """
    return {name: value for name, value in env.items() if name != "WANDB_SERVICE"}


def _wandb_settings() -> Any:
    """wandb's settings from its settings file and the environment, built fresh (not cached)."""
    from wandb.sdk.wandb_settings import Settings

    settings = Settings()
    config_dir = os.environ.get("WANDB_CONFIG_DIR")
    path = pathlib.Path(config_dir or "~/.config/wandb").expanduser() / "settings"
    settings.settings_system = str(path)
    settings.update_from_system_settings()
    settings.update_from_env_vars(dict(os.environ))
    return settings


def _merge_tags(tags: list[str] | None) -> list[str] | None:
    """Tags from the config followed by those of `WANDB_TAGS`, without repeats (None: none)."""
    env_tags = [tag for tag in os.environ.get(TAGS_ENV, "").split(",") if tag]
    merged = list(dict.fromkeys([*(tags or []), *env_tags]))
    return merged or None


class WandbLogger(LightningWandbLogger):
    """Lightning's `WandbLogger` with automatic offline mode, group and tags (see module doc).

    Args:
        name: display name of the run; `pmfs fit` derives one from the config files
            (`full+no_warping`) when none is given.
        save_dir: folder of the `wandb/` run folders.
        version: id of the run to resume.
        offline: True/False force the mode; None (default) decides from `mode` (an argument of
            `wandb.init`), `WANDB_MODE` and the credentials found on this machine.
        dir: alias of `save_dir` (wandb's name).
        id: alias of `version`.
        anonymous: allow anonymous logging.
        project: W&B project (`WANDB_PROJECT`, else "lightning_logs").
        log_model: upload checkpoints as artifacts (not with `offline=True`).
        experiment: an existing run to log to.
        prefix: prefix of every metric key.
        checkpoint_name: name of the checkpoint artifacts.
        group: run group; None uses `WANDB_RUN_GROUP`.
        tags: run tags, merged with those of `WANDB_TAGS`.
        add_file_policy: policy of checkpoint artifacts.
        **kwargs: more arguments of `wandb.init`.
    """

    def __init__(
        self,
        name: str | None = None,
        save_dir: str = ".",
        version: str | None = None,
        offline: bool | None = None,
        dir: str | None = None,
        id: str | None = None,
        anonymous: bool | None = None,
        project: str | None = None,
        log_model: Literal["all"] | bool = False,
        experiment: Any = None,
        prefix: str = "",
        checkpoint_name: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        add_file_policy: Literal["mutable", "immutable"] = "mutable",
        **kwargs: Any,
    ) -> None:
        if offline and log_model:
            raise MisconfigurationException(
                f"log_model={log_model!r} with offline=True: checkpoints cannot be uploaded from an"
                " offline run; set offline to null (auto) or false, or log_model to false."
            )
        mode = kwargs.pop("mode", None)  # `wandb.init(mode=...)` given in the config
        if mode is not None and offline is not None:
            raise ValueError(f"give offline={offline} or mode={mode!r} to WandbLogger, not both")
        kwargs["mode"] = mode or self._decide_mode(offline, save_dir or dir or ".")
        # wandb looks for the git repository from this folder; a missing one prints a warning
        os.makedirs(save_dir or dir or ".", exist_ok=True)
        # read wandb's variables here too: wandb caches the environment of its first run in a
        # process, and a later run in the same process (tests, notebooks) would miss changes
        if (group := group or os.environ.get(GROUP_ENV)) is not None:
            kwargs["group"] = group
        if (merged := _merge_tags(tags)) is not None:
            kwargs["tags"] = merged
        super().__init__(
            name=name,
            save_dir=save_dir,
            version=version,
            offline=False,  # the mode goes to `wandb.init`; Lightning's flag would set WANDB_MODE
            dir=dir,
            id=id,
            anonymous=anonymous,
            project=project,
            log_model=log_model,
            experiment=experiment,
            prefix=prefix,
            checkpoint_name=checkpoint_name,
            add_file_policy=add_file_policy,
            **kwargs,
        )
        self._offline = kwargs["mode"] in ("offline", "dryrun")
        if anonymous is None:  # Lightning passes None on, and wandb warns that it is deprecated
            self._wandb_init.pop("anonymous", None)

    @property
    def mode(self) -> str:
        """The mode given to `wandb.init`: "online", "offline" (or `WANDB_MODE`'s value)."""
        mode: str = self._wandb_init["mode"]
        return mode

    @staticmethod
    def _decide_mode(offline: bool | None, save_dir: str) -> str:
        if offline is not None:
            return "offline" if offline else "online"
        if env_mode := os.environ.get(MODE_ENV):
            return env_mode
        source = wandb_credentials_source()
        if source is None:
            runs = os.path.join(save_dir, "wandb", "offline-run-*")
            # Lightning's console logger: shown by default, once (rank zero)
            rank_zero_info(
                "W&B: no credentials found (WANDB_API_KEY, netrc, `wandb login`): logging offline;"
                f" upload later with `wandb sync {runs}`"
            )
            return "offline"
        log.debug("W&B credentials from %s: logging online", source)
        return "online"
