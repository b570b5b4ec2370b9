"""The paper's qualitative figures (`pmfs figure`), drawn from `pmfs fit` checkpoints.

- `ablation_figure`: one row per variant, like the paper's ablation figure: ground truth |
  prediction | sketch | error heatmap of one frame of a test clip (or of N frames spread over
  it, N groups of those four columns).
- `emotion_figure`: one identity (speaker) across emotions: one clip per emotion the speaker has
  in the cache, generated from its audio, one row per emotion.

The panels and the labelled grid are `pmfs.panels`' (the same as the training videos'): the
error heatmap is the per-pixel mean absolute error over RGB through inferno on a fixed scale,
black where the prediction is exact. Clips are prepared as each checkpoint's data module
prepared them (`pmfs.data.clips.clip_inputs_as_trained`). The command is
`pmfs.commands.figure`, which imports this module only when it draws.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pmfs.panels import (
    ERROR_SCALE,
    GridLayout,
    compose_grid,
    error_heatmap,
    image_panels,
    sketch_panels,
)

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image
    from torch import Tensor

    from pmfs.clip import ClipInputs
    from pmfs.data.cache import Cache
    from pmfs.stages import PMFS

log = logging.getLogger(__name__)

ABLATION_HEADERS: tuple[str, ...] = ("GT", "PREDICT", "SKETCH", "ERROR")
"""Column headers of one frame of the ablation figure, in panel order."""

# -- panels -----------------------------------------------------------------------------------


def error_panel(prediction: Tensor, truth: Tensor, vmax: float | None = None) -> np.ndarray:
    """The error heatmap of one frame (`pmfs.panels.error_heatmap`).

    Args:
        prediction: (3, H, W) float [0, 1].
        truth: (3, H, W) float [0, 1].
        vmax: mean absolute error shown as the colormap's top colour (None: `ERROR_SCALE`, the
            training videos' scale, so figures and training videos compare).

    Returns:
        (H, W, 3) uint8 RGB, inferno: black where the prediction is exact.
    """
    scale = ERROR_SCALE if vmax is None else vmax
    if scale <= 0:
        raise ValueError(f"the error range (--vmax) must be positive, got {scale}")
    return error_heatmap(prediction[None].cpu(), truth[None].cpu(), scale)[0].numpy()


def spread_indices(num_frames: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over a clip; one frame → the middle one."""
    import numpy as np

    if count < 1 or num_frames < 1:
        raise ValueError(f"need ≥ 1 frame of a ≥ 1-frame clip, got {count} of {num_frames}")
    if count == 1:
        return [num_frames // 2]
    return np.linspace(0, num_frames - 1, count).round().astype(int).tolist()


# -- models and clips -------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One variant of an ablation figure: its row label and its `pmfs fit` checkpoint."""

    name: str
    checkpoint: Path


def parse_run(text: str) -> Run:
    """`NAME=CKPT`, or a checkpoint path named after its run folder.

    The text is split at its first "=" unless it is an existing file, so names may hold "/"
    ("w/o Background=runs/no_bg/last.ckpt") and Lightning's `epoch=3-step=100.ckpt` files can be
    given alone. The run folder of `runs/no_warp/checkpoints/last.ckpt` (and of
    `runs/no_warp/last.ckpt`) is `no_warp`.
    """
    name, sep, path = text.partition("=")
    if sep and name and not Path(text).is_file():
        return Run(name, Path(path))
    checkpoint = Path(text)
    folder = checkpoint.parent
    if folder.name == "checkpoints":
        folder = folder.parent
    return Run(folder.name or checkpoint.stem, checkpoint)


def require_checkpoint(checkpoint: Path) -> None:
    """Raise FileNotFoundError naming `checkpoint` when it is not a file."""
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist (a `pmfs fit` .ckpt)")


def load_pmfs(checkpoint: Path, device: str) -> PMFS:
    """The whole-chain model of a checkpoint, in eval mode on `device`."""
    from pmfs.checkpoints import CheckpointError, load_model
    from pmfs.stages import PMFS

    require_checkpoint(checkpoint)
    model = load_model(checkpoint, map_location=device)
    if not isinstance(model, PMFS):
        raise CheckpointError(
            f"{checkpoint} holds a {type(model).__name__}, not the whole chain (pmfs.PMFS); "
            f"figures need a `pmfs fit` checkpoint of a PMFS model (e.g. experiments/demo.yaml)"
        )
    return model.to(device)


def default_clip(cache: Cache, checkpoint: Path) -> str:
    """The first clip of the first test speaker, as the checkpoint's data module holds them out.

    Test speakers: the data module's `test_speakers`, else MEAD's standard ones or the synthetic
    or videos cache's `extra["test_speakers"]`; a videos cache split by time: its first test clip
    (`extra["test_clips"]`); the cache's first clip when none of them is in the cache.
    """
    from pmfs.batch import MEAD_TEST_SPEAKERS
    from pmfs.checkpoints import data_config

    held_out = data_config(checkpoint).get("test_speakers")
    clips = cache.clips()
    if not clips:
        raise ValueError(f"{cache.root}: the cache has no usable clip")
    if held_out is None and cache.extra.get("test_clips"):
        test_clips = set(cache.extra["test_clips"])
        return next((r.clip for r in clips if r.clip in test_clips), clips[0].clip)
    if held_out is None:
        mead = cache.dataset == "mead"
        held_out = MEAD_TEST_SPEAKERS if mead else cache.extra.get("test_speakers", [])
    return next((r.clip for r in clips if r.speaker in held_out), clips[0].clip)


# -- figures ----------------------------------------------------------------------------------


def ablation_row(
    model: PMFS, clip: ClipInputs, frames: Sequence[int], vmax: float | None = None
) -> list[np.ndarray]:
    """GT | prediction | sketch | error panels of `frames` of a clip generated from its audio.

    Returns:
        4 · len(frames) (H, W, 3) uint8 panels, frame by frame.
    """
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        output = model.generate_clip(clip.to(device))
    panels: list[np.ndarray] = []
    for i in frames:
        truth, prediction = clip.frames[i], output.frames[i].cpu()
        panels += [image_panels(truth), image_panels(prediction), sketch_panels(output.sketches[i])]
        panels.append(error_panel(prediction, truth, vmax))
    return panels


def ablation_figure(
    runs: Sequence[Run],
    cache_root: Path,
    clip_id: str | None = None,
    num_frames: int = 1,
    device: str = "cpu",
    vmax: float | None = None,
    max_frames: int | None = None,
) -> Image.Image:
    """The paper's ablation figure: a row per variant, GT | PREDICT | SKETCH | ERROR.

    Args:
        runs: the variants, in row order.
        cache_root: the cache holding the clip.
        clip_id: the clip (None: the first test clip).
        num_frames: frames per row, spread over the clip (1: its middle frame, as the paper).
        device: where the models run.
        vmax: error at the top of the heatmap's colormap (None: the video callback's).
        max_frames: use the first frames of the clip only (None: all; bounds the run time).

    Returns:
        The figure; panels at the largest image size among the variants.
    """
    from pmfs.checkpoints import data_config
    from pmfs.data.cache import Cache
    from pmfs.data.clips import clip_inputs_as_trained

    if not runs:
        raise ValueError("an ablation figure needs at least one run (--runs NAME=CKPT ...)")
    for run in runs:
        require_checkpoint(run.checkpoint)
    cache = Cache(cache_root)
    clip_id = clip_id or default_clip(cache, runs[0].checkpoint)
    rows, panel = [], 0
    for run in runs:
        model = load_pmfs(run.checkpoint, device)
        clip = clip_inputs_as_trained(cache, clip_id, data_config(run.checkpoint), max_frames)
        frames = spread_indices(clip.num_frames, num_frames)
        rows.append(ablation_row(model, clip, frames, vmax))
        panel = max(panel, clip.size)
        log.info("%s: %s, frames %s", run.name, clip_id, frames)
    headers = _frame_headers(ABLATION_HEADERS, frames if num_frames > 1 else None)
    return compose_grid(rows, [run.name for run in runs], headers, GridLayout.for_panel(panel))


def _frame_headers(names: Sequence[str], frames: Sequence[int] | None) -> list[str]:
    """`names` once (one frame), or once per frame with its index."""
    if frames is None:
        return list(names)
    return [f"{name}\nframe {i}" for i in frames for name in names]


def emotion_clips(cache: Cache, speaker: str) -> dict[str, str]:
    """One clip per emotion of a speaker (its first of the highest level), in EMOTIONS order.

    Raises:
        ValueError: the speaker has no clip, or no clip with emotion labels (a videos cache).
    """
    from pmfs.batch import EMOTIONS

    records = [r for r in cache.clips() if r.speaker == speaker]
    if not records:
        speakers = sorted({r.speaker for r in cache.clips()})
        raise ValueError(f"{cache.root}: no clip of speaker {speaker!r}; speakers: {speakers}")
    labelled = [r for r in records if r.emotion is not None]
    if not labelled:
        raise ValueError(
            f"{cache.root}: the clips of {speaker!r} have no emotion labels (a {cache.dataset} "
            "cache); the emotion figure needs a labelled dataset (MEAD, synthetic)"
        )
    chosen: dict[str, str] = {}
    for record in sorted(labelled, key=lambda r: (-(r.level or 0), r.clip)):
        chosen.setdefault(str(record.emotion), record.clip)
    order = {name: i for i, name in enumerate(EMOTIONS)}
    return dict(sorted(chosen.items(), key=lambda item: order.get(item[0], len(order))))


def emotion_figure(
    checkpoint: Path,
    cache_root: Path,
    speaker: str | None = None,
    num_frames: int = 4,
    truth: bool = False,
    device: str = "cpu",
    max_frames: int | None = None,
) -> Image.Image:
    """One identity across emotions: a row per emotion of frames generated from its clip's audio.

    Args:
        checkpoint: a `pmfs fit` checkpoint of `pmfs.PMFS`.
        cache_root: the cache.
        speaker: the identity (None: the speaker of the first test clip).
        num_frames: generated frames per row, the same indices in every clip, spread over the
            shortest one.
        truth: put the ground-truth frame before each generated one.
        device: where the model runs.
        max_frames: use the first frames of each clip only (None: all; bounds the run time).

    Returns:
        The figure; rows labelled "<emotion> level <n>".
    """
    from pmfs.checkpoints import data_config
    from pmfs.data.cache import Cache
    from pmfs.data.clips import clip_inputs_as_trained

    require_checkpoint(checkpoint)
    cache = Cache(cache_root)
    if speaker is None:
        first = default_clip(cache, checkpoint)
        speaker = next(r.speaker for r in cache.clips() if r.clip == first)
    model = load_pmfs(checkpoint, device)
    chosen = emotion_clips(cache, speaker)
    config = data_config(checkpoint)
    clips = {e: clip_inputs_as_trained(cache, c, config, max_frames) for e, c in chosen.items()}
    frames = spread_indices(min(clip.num_frames for clip in clips.values()), num_frames)
    rows, labels = [], []
    for emotion, clip in clips.items():
        rows.append(emotion_row(model, clip, frames, truth))
        labels.append(f"{emotion} {_level(cache, chosen[emotion])}")
        log.info("%s %s: %s, frames %s", speaker, emotion, chosen[emotion], frames)
    names = ("GT", "PREDICT") if truth else ("PREDICT",)
    headers = _frame_headers(names, frames if num_frames > 1 else None)
    panel = max(clip.size for clip in clips.values())
    return compose_grid(rows, labels, headers, GridLayout.for_panel(panel))


def emotion_row(
    model: PMFS, clip: ClipInputs, frames: Sequence[int], truth: bool = False
) -> list[np.ndarray]:
    """`frames` of a clip generated from its audio, each after its ground truth if `truth`.

    Returns:
        (1 + `truth`) · len(frames) (H, W, 3) uint8 panels.
    """
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        output = model.generate_clip(clip.to(device))
    row: list[np.ndarray] = []
    for i in frames:
        row += [image_panels(clip.frames[i])] if truth else []
        row.append(image_panels(output.frames[i]))
    return row


def _level(cache: Cache, clip_id: str) -> str:
    """ "level N" of a clip, from its manifest row."""
    return f"level {next(r.level for r in cache.clips() if r.clip == clip_id)}"


def data_root(checkpoint: Path) -> Path:
    """The cache a checkpoint was trained on (its DataModule's `root`)."""
    from pmfs.checkpoints import data_config

    require_checkpoint(checkpoint)
    root = data_config(checkpoint).get("root")
    if root is None:
        raise ValueError(f"{checkpoint} records no data root; pass the cache with --data")
    return Path(root)
