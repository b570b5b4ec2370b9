"""Issue 14 item 2 on real footage: `pmfs data preprocess videos --detector dlib` crops the
talking man's head as MEAD's crops are cut (the landmarks land where `pmfs.landmarks.TEMPLATE`
puts them), and a 30 fps copy of the video, resampled to 25 fps, keeps the mouth in sync with
the audio (its mouth-opening track lines up with the 25 fps original's at lag 0).

Both videos are the first 8 s of the sample at half size (540×960), the audio beside the 30 fps
one as a .wav: the layout's "audio beside" case too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pmfs.audio import SAMPLE_RATE, load_audio
from pmfs.commands.data import main as data_main
from pmfs.data.cache import Cache
from pmfs.landmarks import TEMPLATE, mouth_opening, pixels_to_normalized
from pmfs.video import iter_frames
from pmfs.video_writer import write_video

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
VIDEO = SAMPLES / "talking_man_1080x1920.mp4"
SECONDS = 8.0
STABLE = np.r_[27:36, 36:48]
"""Nose and eyes: where the crop puts the face (the jaw and mouth move with speech)."""

pytestmark = pytest.mark.skipif(not VIDEO.is_file(), reason=f"the sample is absent ({VIDEO})")


def half_size_copy(out: Path, fps: int) -> Path:
    """The first `SECONDS` of the sample at `fps` (timestamp resampling), half size, with its
    own audio written beside it as `<stem>.wav` (16 kHz)."""
    frames = [f[::2, ::2] for _, f in zip(range(int(SECONDS * fps)), iter_frames(VIDEO, fps=fps),
                                         strict=False)]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    write_video(out, np.stack(frames), fps=fps)
    audio = load_audio(VIDEO)[: int(SECONDS * SAMPLE_RATE)]
    sf.write(out.with_suffix(".wav"), audio, SAMPLE_RATE)
    return out


def preprocess(raw: Path, cache: Path) -> Cache:
    """One clip per video (no cut: the longest clip is longer than the video)."""
    argv = ["preprocess", "videos", "--root", str(raw), "--out", str(cache), "--size", "128"]
    argv += ["--detector", "dlib", "--max-clip", "30", "--min-clip", "2", "--no-progress"]
    assert data_main(argv) == 0
    return Cache(cache)


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Cache]:
    """fps → the cache of the half-size copy at that rate."""
    root = tmp_path_factory.mktemp("real_preprocess")
    out = {}
    for fps in (25, 30):
        half_size_copy(root / f"raw{fps}" / "man.mp4", fps)
        out[fps] = preprocess(root / f"raw{fps}", root / f"cache{fps}")
    return out


def clip_landmarks(cache: Cache) -> np.ndarray:
    """(N, 68, 2) crop pixels of the cache's only clip."""
    records = [r for r in cache.clips() if r.status == "ok"]
    assert len(records) == 1, records
    reader = cache.open(records[0].clip)
    try:
        return np.asarray(reader.landmarks)
    finally:
        reader.close()


def test_every_frame_is_kept_and_the_crop_is_cut_like_mead(caches: dict[int, Cache]) -> None:
    points = clip_landmarks(caches[25])
    assert len(points) == int(SECONDS * 25)
    assert not np.isnan(points).any()
    placed = np.median(pixels_to_normalized(points, 128), axis=0)  # (68, 2) in [-1, 1]
    offset = np.abs(placed[STABLE] - TEMPLATE[STABLE]).max()
    assert offset < 0.12, f"nose and eyes {offset:.3f} (normalized) from the template's place"
    chin, brows = placed[8, 1], placed[17:27, 1].min()
    assert chin < 0.95 and brows > -0.6, "the crop shows the chin and room above the brows"


def test_a_30_fps_video_keeps_the_mouth_in_sync(caches: dict[int, Cache]) -> None:
    original, resampled = (mouth_opening(clip_landmarks(caches[fps])) for fps in (25, 30))
    n = min(len(original), len(resampled))
    assert abs(len(original) - len(resampled)) <= 1
    a = (original[:n] - original[:n].mean()) / original[:n].std()
    b = (resampled[:n] - resampled[:n].mean()) / resampled[:n].std()
    lags = list(range(-3, 4))  # b[t + k] against a[t]
    corr = [float(np.mean(a[: n - k] * b[k:] if k >= 0 else a[-k:] * b[: n + k])) for k in lags]
    best = lags[int(np.argmax(corr))]
    assert best == 0, f"the 30 fps copy's mouth is {best} frames off: correlations {corr}"
    assert corr[3] > 0.8, corr
