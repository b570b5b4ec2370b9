"""`pmfs figure ablation|emotions` (pmfs/commands/figure.py, pmfs/evaluation/figures.py): the PNGs.

The figures are drawn from `known_pmfs_checkpoint` (tests/known_weights.py): its renderer paints
a face of random convolutions, never the true one, so the prediction and error panels show
something on any CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pmfs.commands.figure import AblationOptions, EmotionOptions, FigureOptions, build_parser, main
from pmfs.data.cache import Cache
from pmfs.evaluation.figures import Run, emotion_clips, error_panel, parse_run, spread_indices
from pmfs.options import parser_fields
from pmfs.panels import ERROR_SCALE, GridLayout, colormap_table

MAX_FRAMES = 5  # frames generated per clip in the CLI tests (run time): one renderer window


def _panel(figure: np.ndarray, layout: GridLayout, row: int, col: int) -> np.ndarray:
    """(P, P, 3) pixels of panel (row, col) of a figure array (H, W, 3)."""
    x, y = layout.origin(row, col)
    return figure[y : y + layout.panel, x : x + layout.panel]


def _distinct_colours(image: np.ndarray) -> int:
    return len(np.unique(image.reshape(-1, 3), axis=0))


def test_error_panel_uses_the_face_video_colormap() -> None:
    truth = torch.rand(3, 16, 16)
    prediction = truth.clone()
    prediction[:, :4] = 1.0 - truth[:, :4].round()  # error ≥ 0.5 per channel in the top rows
    panel = error_panel(prediction, truth)
    table = colormap_table()
    assert panel.shape == (16, 16, 3) and panel.dtype == np.uint8
    assert (panel[4:] == table[0]).all()  # exact → the colormap's first (black) colour
    assert (panel[:4] == table[-1]).all()  # ≥ ERROR_SCALE → its top colour
    assert ERROR_SCALE >= 0.5 and table[0].sum() < 10 < 600 < table[-1].astype(int).sum()
    half = error_panel(prediction, truth, vmax=4.0)[:4]  # a wider range: mid colours
    assert (half != table[-1]).any(axis=-1).all()
    with pytest.raises(ValueError, match="positive"):
        error_panel(prediction, truth, vmax=0.0)


def test_spread_indices() -> None:
    assert spread_indices(9, 1) == [4]
    assert spread_indices(9, 3) == [0, 4, 8]
    assert spread_indices(2, 4) == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="≥ 1 frame"):
        spread_indices(0, 1)


def test_parse_run_names(tmp_path: Path) -> None:
    assert parse_run("no warp=runs/x/last.ckpt") == Run("no warp", Path("runs/x/last.ckpt"))
    assert parse_run("w/o Background=b.ckpt") == Run("w/o Background", Path("b.ckpt"))
    assert parse_run("runs/no_warp/checkpoints/last.ckpt").name == "no_warp"
    assert parse_run("runs/full/last.ckpt") == Run("full", Path("runs/full/last.ckpt"))
    lightning_name = tmp_path / "ref_random" / "checkpoints" / "epoch=3-step=100.ckpt"
    lightning_name.parent.mkdir(parents=True)
    lightning_name.touch()
    assert parse_run(str(lightning_name)) == Run("ref_random", lightning_name)


def test_ablation_figure_png(
    known_pmfs_checkpoint: Path, tiny_synth_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ablation.png"
    runs = [f"full={known_pmfs_checkpoint}", f"copy={known_pmfs_checkpoint}"]
    args = ["ablation", "--runs", *runs, "--data", str(tiny_synth_root), "--out", str(out)]
    assert main([*args, "--max-frames", str(MAX_FRAMES), "--device", "cpu"]) == 0
    figure = np.asarray(Image.open(out).convert("RGB"))
    layout = GridLayout.for_panel(64)  # the demo config's image_size
    assert (figure.shape[1], figure.shape[0]) == layout.size(rows=2, cols=4)
    assert figure.std() > 20 and _distinct_colours(figure) > 500
    cache = Cache(tiny_synth_root)
    clip = cache.open(_first_test_clip(cache))
    truth = clip.frame(MAX_FRAMES // 2, 64)  # the middle frame of the frames used
    for row in range(2):  # one row per variant: GT | PREDICT | SKETCH | ERROR
        gt, prediction, sketch, error = (_panel(figure, layout, row, c) for c in range(4))
        assert (gt == truth).all()
        assert prediction.std() > 5 and np.abs(prediction.astype(int) - gt).mean() > 0
        assert (sketch == 0).any() and (sketch == 255).any()
        assert error.std() > 5 and _distinct_colours(error) > 20
    assert (_panel(figure, layout, 0, 1) == _panel(figure, layout, 1, 1)).all()  # same model
    below = figure[layout.origin(1, 0)[1] + layout.panel :]
    assert (below == 255).all()  # nothing after the last variant's row


def test_emotion_figure_png(
    known_pmfs_checkpoint: Path, tiny_synth_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "emotions.png"
    args = ["emotions", "--checkpoint", str(known_pmfs_checkpoint), "--out", str(out)]
    args += ["--data", str(tiny_synth_root), "--frames", "2", "--max-frames", str(MAX_FRAMES)]
    assert main([*args, "--truth", "--device", "cpu"]) == 0
    cache = Cache(tiny_synth_root)
    speaker = cache.open(_first_test_clip(cache)).meta["record"]["speaker"]
    emotions = emotion_clips(cache, speaker)
    assert len(emotions) == len({r.emotion for r in cache.clips() if r.speaker == speaker}) >= 2
    figure = np.asarray(Image.open(out).convert("RGB"))
    layout = GridLayout.for_panel(64)
    assert (figure.shape[1], figure.shape[0]) == layout.size(rows=len(emotions), cols=4)
    assert figure.std() > 20 and _distinct_colours(figure) > 500
    for row, clip_id in enumerate(emotions.values()):
        reader = cache.open(clip_id)  # frames 0 and MAX_FRAMES - 1: GT | PREDICT each
        assert (_panel(figure, layout, row, 0) == reader.frame(0, 64)).all()
        assert (_panel(figure, layout, row, 2) == reader.frame(MAX_FRAMES - 1, 64)).all()
        assert _panel(figure, layout, row, 1).std() > 5 and _panel(figure, layout, row, 3).std() > 5
        label = figure[layout.origin(row, 0)[1] :][: layout.panel, : layout.label_width]
        assert (label < 128).any()  # the emotion's label


def test_emotion_clips_unknown_speaker(tiny_synth_root: Path) -> None:
    with pytest.raises(ValueError, match="no clip of speaker 'S99'"):
        emotion_clips(Cache(tiny_synth_root), "S99")


def test_missing_checkpoint_is_named(
    tiny_synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none" / "last.ckpt"
    args = ["ablation", "--runs", str(missing), "--data", str(tiny_synth_root)]
    assert main([*args, "--out", str(tmp_path / "x.png"), "--device", "cpu"]) == 1
    assert re.search(r"^error: .*none/last\.ckpt does not exist", capsys.readouterr().err)
    assert not (tmp_path / "x.png").exists()


def test_help_is_light() -> None:
    code = (
        "import sys, pmfs.commands.figure as f; f.build_parser(); assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_each_figure_parser_is_its_options_dataclasses() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, options in (("ablation", AblationOptions), ("emotions", EmotionOptions)):
        fields = {
            f.name for f in (*dataclasses.fields(options), *dataclasses.fields(FigureOptions))
        }
        assert parser_fields(sub.choices[name]) == fields


def test_bad_values_are_named_before_any_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["ablation", "--runs", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "x.png")]
    assert main([*args, "--frames", "0"]) == 1
    assert "error: --frames must be ≥ 1, got 0" in capsys.readouterr().err
    assert main([*args, "--vmax", "0"]) == 1
    assert "error: --vmax must be > 0, got 0.0" in capsys.readouterr().err


def _first_test_clip(cache: Cache) -> str:
    held_out = cache.extra["test_speakers"]
    return next(r.clip for r in cache.clips() if r.speaker in held_out)
