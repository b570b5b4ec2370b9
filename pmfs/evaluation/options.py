"""`EvaluateOptions`: what `pmfs evaluate` evaluates and where it writes; also its parser.

The fields are the command line (`pmfs.options`): `pmfs.commands.evaluate` builds its parser
from them, so the two cannot drift. This module imports no torch (`pmfs evaluate --help`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from pmfs.batch import DatasetName, Split
from pmfs.inference.options import TemporalOptions
from pmfs.options import check_bounds, option

HUB = "default: the file in the torch hub cache, <torch hub dir>/checkpoints/"
WEIGHTS = ("lpips_weights", "alexnet_weights", "fid_weights", "syncnet_weights")
"""The fields of the optional metrics' weights (one argument group of `--help`)."""


@dataclass
class EvaluateOptions:
    """What `pmfs evaluate` evaluates and where it writes (the command line's options).

    Attributes:
        ckpt: a `pmfs fit` checkpoint of `PMFS` or of a `FaceRenderer`.
        data: the cache folder.
        dataset: "mead", "cremad" or "synthetic"; None: what the cache says it holds.
        split: the DataModule split evaluated ("test" for CREMA-D, which has nothing else).
        out: folder of metrics.json / metrics.md (and the W&B run folder).
        max_clips: evaluate the first clips only (None: all).
        max_frames: first frames of each clip only (None: all).
        device: torch device; None: CUDA when available, else CPU.
        chunk: frames per forward pass.
        lpips_weights: the lpips package's v0.1 `alex.pth`; None: the torch hub cache's.
        alexnet_weights: torchvision's `alexnet-owt-7be5be79.pth`; None: the hub cache's.
        fid_weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`; None: the hub cache's.
        syncnet_weights: `syncnet_v2.model`; None: the hub cache's.
        wandb: log the tables to a W&B run (also done whenever a run is active).
        wandb_project: project of that run.
        per_clip: keep every clip's metrics in the JSON.
        progress: show a progress bar.
        temporal: the post-processing of the landmarks predicted from audio (smoothing, the
            voice-activity gate): `pmfs infer`'s defaults, so the `from_audio` path scores what
            inference makes (not a flag).
    """

    ckpt: Path = option(help="PMFS or FaceRenderer .ckpt")
    data: Path = option(help="the cache folder")
    dataset: DatasetName | None = option(
        None, help="what the cache holds (default: read from its cache.json)"
    )
    split: Split = option("test", help="the split evaluated (CREMA-D has only test)")
    out: Path = option(Path("evaluation"), help="output folder")
    max_clips: int | None = option(None, help="first N clips of the split only", minimum=1)
    max_frames: int | None = option(None, help="first N frames of each clip only", minimum=1)
    device: str | None = option(None, help="torch device (default: cuda when available, else cpu)")
    chunk: int = option(16, help="frames per forward pass", minimum=1)
    lpips_weights: Path | None = option(None, help=f"LPIPS v0.1 alex.pth ({HUB})")
    alexnet_weights: Path | None = option(None, help=f"alexnet-owt-7be5be79.pth for LPIPS ({HUB})")
    fid_weights: Path | None = option(None, help=f"pt_inception-2015-12-05-6726825d.pth ({HUB})")
    syncnet_weights: Path | None = option(None, help=f"syncnet_v2.model ({HUB})")
    wandb: bool = option(False, help="log the tables to a W&B run")
    wandb_project: str = option("pmfs", help="W&B project (default: pmfs)")
    per_clip: bool = option(True, help="leave per_clip out")
    progress: bool = option(True, help="hide the progress bar")
    temporal: TemporalOptions = field(default_factory=TemporalOptions)

    def __post_init__(self) -> None:
        """Options built in Python are bounds-checked as the command line's are."""
        for item in dataclasses.fields(self):
            check_bounds(item, getattr(self, item.name))
