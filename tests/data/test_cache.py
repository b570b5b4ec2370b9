"""The cache format: round trips, atomic writes, the manifest journal, resume and versioning."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from pmfs.data.cache import (
    CACHE_VERSION,
    MANIFEST_FIELDS,
    Cache,
    CacheError,
    CacheNotFoundError,
    ImagePack,
    clip_dir,
)
from pmfs.data.cache_writer import CacheWriter, ClipData, write_image_pack


def _clip(n: int = 6, size: int = 32, seed: int = 0) -> ClipData:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    frames = np.stack(  # smooth images (JPEG-friendly), different per frame
        [
            np.stack([(xx * 7 + i * 20) % 256, (yy * 5) % 256, np.full_like(xx, 40 * i % 256)], -1)
            for i in range(n)
        ]
    ).astype(np.uint8)
    masks = ((xx[None] - size / 2) ** 2 + (yy[None] - size / 2) ** 2 < (size / 3) ** 2) * 255
    return ClipData(
        frames=frames,
        landmarks=(rng.random((n, 68, 2)) * (size - 1)).astype(np.float32),
        fg_mask=np.repeat(masks.astype(np.uint8), n, axis=0),
        audio=rng.standard_normal(640 * n).astype(np.float32) * 0.1,
        mel=rng.uniform(-4, 4, (80, 4 * n)).astype(np.float32),
        meta={"fps": 25, "size": size, "source": "test"},
    )


def test_clip_round_trip(tmp_path: Path) -> None:
    data = _clip()
    with CacheWriter(tmp_path, "synthetic", {"size": 32}, extra={"test_speakers": ["S02"]}) as w:
        rec = w.write_clip(w.record("S01", "happy", 2, "S01_happy_2_000"), data)
    assert rec.frames == 6 and rec.status == "ok"
    cache = Cache(tmp_path)
    assert cache.dataset == "synthetic" and cache.extra["test_speakers"] == ["S02"]
    assert [r.clip for r in cache.clips()] == ["S01_happy_2_000"]
    clip = cache.open("S01_happy_2_000")
    assert clip.num_frames == 6 and clip.size == 32
    np.testing.assert_array_equal(clip.landmarks, data.landmarks)
    np.testing.assert_array_equal(clip.mel, data.mel)
    np.testing.assert_array_equal(clip.audio, data.audio)
    np.testing.assert_array_equal(clip.mask(3), data.fg_mask[3])  # PNG: lossless
    for i in (0, 5, 2):  # random access, JPEG q95: close
        assert np.abs(clip.frame(i).astype(int) - data.frames[i]).mean() < 3
    assert clip.frames([4, 1]).shape == (2, 32, 32, 3)
    assert clip.frame(0, size=16).shape == (16, 16, 3)
    assert clip.meta["source"] == "test" and clip.meta["record"]["emotion"] == "happy"


def test_image_pack_is_one_file_with_random_access(tmp_path: Path) -> None:
    images = [np.full((8, 8, 3), 30 * i, np.uint8) for i in range(5)]
    assert write_image_pack(tmp_path / "x.pack", images, "png") == 5
    assert os.listdir(tmp_path) == ["x.pack"]
    pack = ImagePack(tmp_path / "x.pack")
    assert len(pack) == 5
    np.testing.assert_array_equal(pack.read(4), images[4])
    with pytest.raises(IndexError):
        pack.read(5)
    (tmp_path / "bad.pack").write_bytes(b"not a pack at all, just bytes")
    with pytest.raises(CacheError, match=r"bad\.pack"):
        len(ImagePack(tmp_path / "bad.pack"))


def test_clip_data_is_validated(tmp_path: Path) -> None:
    data = _clip()
    data.landmarks = data.landmarks[:, :60]
    with CacheWriter(tmp_path, "synthetic", {}) as w, pytest.raises(ValueError, match="landmarks"):
        w.write_clip(w.record("S01", "sad", 1, "c"), data)
    assert not any(clip_dir(tmp_path, "S01", "c").parent.glob("*")), "no partial clip left"


def test_manifest_journal_resume_and_settings_hash(tmp_path: Path) -> None:
    w = CacheWriter(tmp_path, "mead", {"size": 32})
    w.write_clip(w.record("M005", "angry", 1, "a"), _clip())
    w.skip_clip(w.record("M005", "sad", 3, "b"), "no face in 40/50 frames")
    # a killed run leaves a torn last line: readers ignore it
    with open(tmp_path / "manifest.csv", "a") as f:
        f.write("mead,M005,angry,1,c,1")
    assert {r.clip for r in Cache(tmp_path).records} == {"a", "b"}
    resumed = CacheWriter(tmp_path, "mead", {"size": 32})
    assert resumed.is_done("a") and resumed.is_done("b") and not resumed.is_done("c")
    resumed.close()
    rows = (tmp_path / "manifest.csv").read_text().splitlines()
    assert rows[0].split(",") == list(MANIFEST_FIELDS) and len(rows) == 3
    assert "no face in 40/50 frames" in rows[2]
    skipped = Cache(tmp_path).skipped()
    assert [(r.clip, r.reason) for r in skipped] == [("b", "no face in 40/50 frames")]
    changed = CacheWriter(tmp_path, "mead", {"size": 64})  # other settings: nothing is done
    assert not changed.is_done("a") and not changed.is_done("b")


def test_rewriting_a_clip_replaces_it_whole(tmp_path: Path) -> None:
    with CacheWriter(tmp_path, "synthetic", {}) as w:
        w.write_clip(w.record("S01", "fear", 1, "x"), _clip(n=6, seed=1))
        w.write_clip(w.record("S01", "fear", 1, "x"), _clip(n=4, seed=2))
    clip = Cache(tmp_path).open("x")
    assert clip.num_frames == 4
    np.testing.assert_array_equal(clip.landmarks, _clip(n=4, seed=2).landmarks)
    assert sorted(p.name for p in (tmp_path / "clips" / "S01").iterdir()) == ["x"]


def test_missing_and_foreign_caches_are_explained(tmp_path: Path) -> None:
    with pytest.raises(CacheNotFoundError, match="pmfs data synth"):
        Cache(tmp_path / "nowhere")
    CacheWriter(tmp_path, "synthetic", {}).close()
    info = json.loads((tmp_path / "cache.json").read_text())
    info["version"] = CACHE_VERSION + 1
    (tmp_path / "cache.json").write_text(json.dumps(info))
    with pytest.raises(CacheError, match="version"):
        Cache(tmp_path)
    with pytest.raises(CacheError, match="version"):
        CacheWriter(tmp_path, "synthetic", {})
    CacheWriter(tmp_path / "other", "synthetic", {}).close()
    with pytest.raises(CacheError, match="no usable clip 'zzz'"):
        Cache(tmp_path / "other").open("zzz")
