"""`pmfs data synth` end to end: the cache it writes, determinism, resume, the audio → mouth link,
the raw MEAD layout, and the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pmfs.audio import SAMPLE_RATE, VIDEO_FPS, load_audio, mel_window
from pmfs.batch import EMOTIONS
from pmfs.commands.data import main
from pmfs.data.cache import Cache
from pmfs.data.synth.config import SynthConfig
from pmfs.data.synth.generate import build_synthetic_dataset
from pmfs.data.synth.make import raw_frame_size
from pmfs.data.synth.raw import raw_paths
from pmfs.landmarks import mouth_opening
from pmfs.video import read_video


def _tiny(
    out: Path, speakers: int, clips: int, workers: int = 1, seed: int = 0, overwrite: bool = False
) -> SynthConfig:
    """A 48² set of 1–1.4 s clips."""
    return SynthConfig(
        out=out,
        speakers=speakers,
        clips=clips,
        size=48,
        seed=seed,
        workers=workers,
        min_seconds=1.0,
        max_seconds=1.4,
        overwrite=overwrite,
        progress=False,
    )


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 speakers × 3 clips at 64², the last 2 speakers held out (built with 2 workers)."""
    root = tmp_path_factory.mktemp("synth") / "cache"
    config = SynthConfig(
        out=root, speakers=5, clips=3, size=64, test_speakers=2, workers=2, progress=False
    )
    summary = build_synthetic_dataset(config)
    assert summary.made == summary.clips == 15
    return root


def test_cache_follows_the_contract(cache_root: Path) -> None:
    cache = Cache(cache_root)
    assert cache.dataset == "synthetic"
    assert cache.extra["test_speakers"] == ["S04", "S05"]
    records = cache.clips()
    assert len(records) == 15 and not cache.skipped()
    assert {r.speaker for r in records} == {f"S0{k}" for k in range(1, 6)}
    assert {r.emotion for r in records} == set(EMOTIONS[:3])
    for record in records:
        assert record.clip == f"{record.speaker}_{record.emotion}_{record.level}_001"
        clip = cache.open(record.clip)
        n = clip.num_frames
        assert n == record.frames and 2.0 * VIDEO_FPS <= n <= 4.0 * VIDEO_FPS
        assert clip.audio.shape == (n * SAMPLE_RATE // VIDEO_FPS,)
        assert clip.mel.shape == (80, 1 + clip.audio.shape[0] // 200)
        assert clip.frame(n - 1).shape == (64, 64, 3) and clip.mask(0).shape == (64, 64)
        assert clip.meta["crop_box"][2:] == [64, 64] and len(clip.meta["phones"]) > 5
        assert np.all((clip.landmarks > -1) & (clip.landmarks < 65))


def _design(
    cache: Cache, clips: list[str], mels: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Mel windows (flattened) → mouth opening, over every frame of the clips."""
    features, targets = [], []
    for clip_id, features_mel in zip(clips, mels, strict=True):
        landmarks = cache.open(clip_id).landmarks
        features.append(
            np.stack([mel_window(features_mel, t).ravel() for t in range(len(landmarks))])
        )
        targets.append(mouth_opening(landmarks))
    return np.concatenate(features), np.concatenate(targets)


def _ridge_r2(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    penalty: float = 1000.0,
) -> float:
    """Closed-form ridge regression on standardised features; R² on the test set."""
    x, y = train
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    weights = np.linalg.solve(z.T @ z + penalty * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    x_test, y_test = test
    predicted = ((x_test - mean) / scale) @ weights + y.mean()
    return float(1 - ((y_test - predicted) ** 2).sum() / ((y_test - y_test.mean()) ** 2).sum())


def test_audio_predicts_the_mouth_on_held_out_speakers(cache_root: Path) -> None:
    cache = Cache(cache_root)
    held_out = set(cache.extra["test_speakers"])
    train = [r.clip for r in cache.clips() if r.speaker not in held_out]
    test = [r.clip for r in cache.clips() if r.speaker in held_out]
    mels = {c: cache.open(c).mel for c in train + test}
    aligned = _ridge_r2(
        _design(cache, train, [mels[c] for c in train]),
        _design(cache, test, [mels[c] for c in test]),
    )
    # Audio of another clip (the next one in the list) for every clip: no link left.
    shuffled = _ridge_r2(
        _design(cache, train, [mels[c] for c in np.roll(train, 1)]),
        _design(cache, test, [mels[c] for c in np.roll(test, 1)]),
    )
    assert aligned >= 0.5, f"R² {aligned:.3f} from mel to mouth opening on held-out speakers"
    assert shuffled <= 0.1, f"R² {shuffled:.3f} with audio shuffled across clips"


def _files(root: Path) -> dict[str, bytes]:
    names = ("landmarks.npy", "audio.npy", "mel.npy", "frames.pack", "masks.pack")
    out = {"manifest.csv": (root / "manifest.csv").read_bytes()}
    for path in sorted((root / "clips").rglob("*")):
        if path.name in names:
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def test_same_seed_gives_the_same_bytes_with_any_workers(tmp_path: Path) -> None:
    one = build_synthetic_dataset(_tiny(tmp_path / "a", 2, 2, workers=1))
    two = build_synthetic_dataset(_tiny(tmp_path / "b", 2, 2, workers=2))
    files_one, files_two = _files(one.cache), _files(two.cache)
    assert len(files_one) == 1 + 4 * 5
    assert files_one == files_two
    other = build_synthetic_dataset(_tiny(tmp_path / "c", 2, 2, workers=1, seed=1))
    different = _files(other.cache)
    assert different.keys() == files_one.keys()
    assert all(different[k] != files_one[k] for k in files_one if k.endswith("audio.npy"))


def test_rerun_skips_finished_clips_and_refuses_other_settings(tmp_path: Path) -> None:
    config = _tiny(tmp_path / "cache", 1, 2, workers=1)
    build_synthetic_dataset(config)
    before = _files(config.out)
    again = build_synthetic_dataset(config)
    assert again.made == 0 and again.clips == 2
    assert _files(config.out) == before
    bigger = _tiny(config.out, 1, 3, workers=1)
    with pytest.raises(ValueError, match="--overwrite"):
        build_synthetic_dataset(bigger)
    replaced = build_synthetic_dataset(_tiny(config.out, 1, 3, workers=1, overwrite=True))
    assert replaced.made == 3 and len(Cache(config.out).clips()) == 3


def test_raw_layout_maps_onto_the_cache(tmp_path: Path) -> None:
    config = SynthConfig(
        out=tmp_path / "cache",
        speakers=1,
        clips=2,
        size=64,
        raw=True,
        workers=1,
        min_seconds=1.0,
        max_seconds=1.4,
        progress=False,
    )
    summary = build_synthetic_dataset(config)
    assert summary.raw == tmp_path / "cache" / "raw" and summary.raw_bytes > 0
    cache = Cache(config.out)
    height, width = raw_frame_size(64)
    for record in cache.clips():
        clip = cache.open(record.clip)
        paths = raw_paths(config.raw_root, record.speaker, record.emotion, record.level, 1)
        assert paths.exist()
        video = read_video(paths.video)
        assert video.fps == VIDEO_FPS and video.frames.shape == (clip.num_frames, height, width, 3)
        assert video.audio is not None
        assert abs(video.audio.shape[0] - clip.audio.shape[0]) <= 1024  # one AAC frame
        audio = load_audio(paths.audio)
        assert abs(audio.shape[0] - clip.audio.shape[0]) <= 1024
        assert np.corrcoef(audio[:8000], clip.audio[:8000])[0, 1] > 0.9
        x0, y0, w, h = clip.meta["crop_box"]
        raw_landmarks = np.load(paths.landmarks)
        assert raw_landmarks.shape == (clip.num_frames, 68, 2) and raw_landmarks.dtype == np.float32
        np.testing.assert_allclose(raw_landmarks - [x0, y0], clip.landmarks, atol=1e-4)
        crop = video.frames[:, y0 : y0 + h, x0 : x0 + w].astype(np.float64)
        cached = np.stack([clip.frame(i) for i in range(clip.num_frames)]).astype(np.float64)
        assert np.abs(crop - cached).mean() < 6.0  # the same picture through H.264 and JPEG


def test_cli_help_and_a_tiny_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for option in ("--out", "--speakers", "--clips", "--size", "--seed", "--raw", "--workers"):
        assert option in help_text
    out = tmp_path / "cli"
    code = main(
        [
            "synth",
            "--out",
            str(out),
            "--speakers",
            "1",
            "--clips",
            "2",
            "--size",
            "48",
            "--min-seconds",
            "1",
            "--max-seconds",
            "1.2",
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    assert "2 clips" in capsys.readouterr().out
    assert len(Cache(out).clips()) == 2
    code = main(["synth", "--out", str(out), "--speakers", "2", "--clips", "2", "--no-progress"])
    assert code == 1 and "--overwrite" in capsys.readouterr().err
