"""`pmfs data sheet`: the contact sheet of a cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pmfs.batch import EMOTIONS
from pmfs.commands.data import main
from pmfs.data.cache import Cache, CacheNotFoundError
from pmfs.data.sheet import SheetLayout, make_contact_sheet, pick_clip, pick_frame
from pmfs.data.synth.config import SynthConfig
from pmfs.data.synth.generate import build_synthetic_dataset


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 speakers × 9 clips (every emotion, angry twice) at 48²."""
    root = tmp_path_factory.mktemp("sheet") / "cache"
    build_synthetic_dataset(
        SynthConfig(
            out=root,
            speakers=2,
            clips=9,
            size=48,
            workers=2,
            min_seconds=1.0,
            max_seconds=1.2,
            progress=False,
        )
    )
    return root


def test_sheet_has_a_cell_per_speaker_and_emotion(cache_root: Path, tmp_path: Path) -> None:
    out = make_contact_sheet(cache_root, tmp_path / "docs" / "sheet.png", tile=64)
    layout = SheetLayout(tile=64)
    with Image.open(out) as image:
        assert image.size == layout.size(2, len(EMOTIONS))
        pixels = np.asarray(image.convert("RGB")).astype(np.float64)
    assert pixels.std() > 20  # not blank
    for row in range(2):
        for col in range(len(EMOTIONS)):
            x, y = layout.cell(row, col)
            cell = pixels[y : y + 64, x : x + 64]
            assert cell.std() > 15, f"cell ({row}, {col}) looks empty"
    title_band = pixels[: layout.header_height // 2]
    assert (title_band > 200).any()  # the labels are drawn


def test_pick_clip_prefers_the_highest_level(cache_root: Path) -> None:
    records = Cache(cache_root).clips()
    angry = [r for r in records if r.speaker == "S02" and r.emotion == "angry"]
    assert len(angry) == 2
    chosen = pick_clip(records, "S02", "angry")
    assert chosen is not None and chosen.level == max(r.level for r in angry)
    assert pick_clip(records, "S09", "angry") is None


def test_sheet_command(
    cache_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sheet.png"
    assert main(["sheet", "--cache", str(cache_root), "--out", str(out), "--tile", "48"]) == 0
    assert out.is_file() and "contact sheet" in capsys.readouterr().out
    missing = tmp_path / "nothing"
    assert main(["sheet", "--cache", str(missing), "--out", str(out)]) == 1
    assert "pmfs data synth" in capsys.readouterr().err
    with pytest.raises(CacheNotFoundError):
        make_contact_sheet(missing, out)
    with pytest.raises(ValueError, match="tile"):
        make_contact_sheet(cache_root, out, tile=8)


def test_pick_frame_skips_blinks() -> None:
    landmarks = np.zeros((3, 68, 2), dtype=np.float32)
    landmarks[:, [37, 38, 43, 44], 1] = -2.0  # eyes 2 px open
    landmarks[:, [66, 67, 65], 1] = [[1.0], [6.0], [4.0]]  # mouth opening 1, 6, 4 px
    landmarks[1, [37, 38, 43, 44], 1] = 0.0  # frame 1 blinks
    assert pick_frame(landmarks) == 2
