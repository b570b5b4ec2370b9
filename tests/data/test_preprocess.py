"""`pmfs data preprocess` on generated raw MEAD / CREMA-D layouts with `--detector precomputed`.

The raw clips are drawn here: a textured background with a simple face (skin ellipse, eyes, a
mouth polygon that opens and closes) whose 68 landmarks are known exactly in raw pixels. The
"direct" reference of a clip is what a perfect preprocessor would produce from those exact
landmarks and the uncompressed frames: `stable_box` of the exact track, the crop of the raw
frame, the exact landmarks moved into it, and the mel of the exact audio.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image, ImageDraw

from pmfs.audio import mel
from pmfs.commands.data import add_preprocess_parser, run_preprocess
from pmfs.data.cache import Cache
from pmfs.data.preprocess.layouts import cremad_labels, discover
from pmfs.data.preprocess.mask import foreground_mask
from pmfs.data.preprocess.pipeline import PreprocessSettings, preprocess
from pmfs.faces import crop as crop_mod
from pmfs.landmarks import TEMPLATE
from pmfs.video import resample_indices
from pmfs.video_writer import write_video

RAW_W, RAW_H, FACE = 320, 240, 70.0  # raw frame size; face width in pixels
SIZE = 96  # crop side of the tests
SR = 16000
PRECOMPUTED = PreprocessSettings(size=SIZE, detector="precomputed")


# --------------------------------------------------------------------------------------------
# Raw clip generator
# --------------------------------------------------------------------------------------------


def face_track(num: int, fps: float, seed: int) -> np.ndarray:
    """(num, 68, 2) float32 raw pixels: a face drifting slowly, mouth opening at ~2 Hz."""
    rng = np.random.default_rng(seed)
    t = np.arange(num) / fps
    centre = np.stack(
        [150 + 12 * np.sin(0.9 * t + rng.uniform(0, 6)), 105 + 6 * np.sin(0.7 * t)], axis=1
    )
    points = TEMPLATE[None] * FACE / 1.12 + centre[:, None, :]
    opening = (0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t + rng.uniform(0, 6)))[:, None]
    lower = [*range(5, 12), *range(55, 60), *range(64, 68)]
    points[:, lower, 1] += 0.12 * FACE * opening
    return points.astype(np.float32)


def _background(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 200, size=(RAW_H // 16, RAW_W // 16, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((RAW_W, RAW_H), Image.Resampling.BICUBIC))


def render(points: np.ndarray, background: np.ndarray) -> np.ndarray:
    """(RAW_H, RAW_W, 3) uint8 frame of a face with landmarks `points` (68, 2)."""
    image = Image.fromarray(background.copy())
    draw = ImageDraw.Draw(image)
    lo, hi = points.min(axis=0), points.max(axis=0)
    draw.ellipse([lo[0], lo[1] - 0.3 * (hi[1] - lo[1]), hi[0], hi[1]], fill=(220, 180, 150))
    for eye in (points[36:42], points[42:48]):
        draw.polygon([tuple(p) for p in eye.tolist()], fill=(40, 30, 30))
    draw.polygon([tuple(p) for p in points[48:60].tolist()], fill=(150, 40, 50))
    draw.polygon([tuple(p) for p in points[60:68].tolist()], fill=(30, 10, 10))
    draw.line([tuple(p) for p in points[17:22].tolist()], fill=(60, 40, 30), width=3)
    draw.line([tuple(p) for p in points[22:27].tolist()], fill=(60, 40, 30), width=3)
    return np.asarray(image)


def speech(seconds: float, seed: int) -> np.ndarray:
    """(A,) float32 16 kHz: a voiced, amplitude-modulated harmonic signal."""
    t = np.arange(round(seconds * SR)) / SR
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = np.sum([np.sin(k * phase) / k for k in range(1, 8)], axis=0)
    return (0.2 * voice * (0.55 + 0.45 * np.sin(2 * np.pi * 2.0 * t))).astype(np.float32)


@dataclass
class RawClip:
    """A generated clip and its exact data."""

    clip: str
    frames: np.ndarray  # (N, H, W, 3) uint8 as written
    landmarks: np.ndarray  # (N, 68, 2) exact raw pixels
    audio: np.ndarray | None
    fps: float


def write_mead_clip(
    root: Path,
    speaker: str,
    stem: str,
    *,
    emotion: str = "happy",
    level: int = 2,
    num: int = 30,
    fps: float = 25.0,
    seed: int = 0,
    audio_seconds: float | None = None,
    audio_gain: float = 1.0,
    with_audio: bool = True,
    no_face: bool = False,
) -> RawClip:
    """Write `<root>/<speaker>/video/front/<emotion>/level_<n>/<stem>.mp4` and its landmarks."""
    points = face_track(num, fps, seed)
    background = _background(seed)
    frames = np.stack([render(p, background) for p in points])
    seconds = num / fps if audio_seconds is None else audio_seconds
    audio = speech(seconds, seed) * audio_gain if with_audio else None
    rel = Path(emotion, f"level_{level}")
    write_video(root / speaker / "video/front" / rel / f"{stem}.mp4", frames, fps, audio, crf=12)
    stored = np.full_like(points, np.nan) if no_face else points
    lm_path = root / speaker / "landmarks/front" / rel / f"{stem}.npy"
    lm_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(lm_path, stored)
    return RawClip(f"{speaker}_{emotion}_{level}_{stem}", frames, points, audio, fps)


def write_flv(path: Path, frames: np.ndarray, fps: int) -> None:
    """An H.264 flv without audio (CREMA-D keeps its audio in AudioWAV/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="flv") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = RAW_W, RAW_H, "yuv420p"
        stream.options = {"crf": "12"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def write_cremad_clip(root: Path, stem: str, num: int = 36, seed: int = 0) -> RawClip:
    """`VideoFlash/<stem>.flv` at 30 fps + `AudioWAV/<stem>.wav` + `Landmarks/<stem>.npy`."""
    points = face_track(num, 30.0, seed)
    background = _background(seed)
    frames = np.stack([render(p, background) for p in points])
    write_flv(root / "VideoFlash" / f"{stem}.flv", frames, 30)
    audio = speech(num / 30.0, seed)
    (root / "AudioWAV").mkdir(parents=True, exist_ok=True)
    sf.write(root / "AudioWAV" / f"{stem}.wav", audio, SR)
    (root / "Landmarks").mkdir(parents=True, exist_ok=True)
    np.save(root / "Landmarks" / f"{stem}.npy", points)
    return RawClip(stem, frames, points, audio, 30.0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    err = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float(10 * np.log10(255.0**2 / max(err, 1e-12)))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pmfs data")
    add_preprocess_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["preprocess", *argv])


def tree_hashes(root: Path) -> dict[str, str]:
    """relative path → sha1 of every file of a cache."""
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


def test_cremad_label_mapping() -> None:
    assert cremad_labels("ANG", "HI") == ("angry", 3)
    assert cremad_labels("NEU", "XX") == ("neutral", 1)
    assert cremad_labels("SAD", "XX") == ("sad", 2)
    assert cremad_labels("FEA", "LO") == ("fear", 1)
    with pytest.raises(ValueError, match="unknown CREMA-D emotion 'XYZ'"):
        cremad_labels("XYZ", "LO")


def test_default_crop_follows_the_template() -> None:
    assert (PRECOMPUTED.crop_scale, PRECOMPUTED.crop_shift) == crop_mod.template_geometry()
    box = crop_mod.stable_box(TEMPLATE[None] * 64 + 63.5, *crop_mod.template_geometry())
    assert abs(box.side - 128) <= 1 and abs(box.x0) <= 1 and abs(box.y0) <= 1  # template crop


def test_parser_needs_no_heavy_imports() -> None:
    code = (
        "import sys; from pmfs.commands.data import main, add_preprocess_parser; "
        "import argparse; p = argparse.ArgumentParser(); "
        "add_preprocess_parser(p.add_subparsers()); "
        "print(sorted({'torch', 'av', 'numpy', 'scipy', 'face_alignment'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_fill_gaps_interpolates_short_gaps_and_refuses_long_ones() -> None:
    track = np.linspace(0, 9, 10, dtype=np.float32)[:, None, None] * np.ones((1, 68, 2))
    holed = track.astype(np.float32)
    holed[[0, 4, 5, 6]] = np.nan
    filled, n = crop_mod.fill_gaps(holed, max_gap=3)
    assert n == 4
    np.testing.assert_allclose(filled[4:7], track[4:7], atol=1e-5)  # linear inside
    np.testing.assert_allclose(filled[0], track[1])  # held at the start
    with pytest.raises(crop_mod.LandmarkGapError, match=r"lost_frames: .* 3 consecutive"):
        crop_mod.fill_gaps(holed, max_gap=2)
    with pytest.raises(crop_mod.LandmarkGapError, match="no_face"):
        crop_mod.fill_gaps(np.full((5, 68, 2), np.nan, np.float32), max_gap=10)


def test_smoothing_keeps_quadratic_motion_and_damps_jitter() -> None:
    t = np.arange(40, dtype=np.float64)
    motion = (0.02 * t**2)[:, None, None] * np.ones((1, 68, 2))
    np.testing.assert_allclose(crop_mod.smooth(motion.astype(np.float32), 5), motion, atol=1e-3)
    noise = np.random.default_rng(0).normal(0, 1, (40, 68, 2)).astype(np.float32)
    assert crop_mod.smooth(noise, 5).std() < 0.8 * noise.std()


def test_crop_moves_points_with_the_pixels() -> None:
    """A single bright pixel of the raw frame lands where `points_to_crop` puts it."""
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[90, 140] = 255
    box = crop_mod.CropBox(x0=100, y0=40, side=120)
    crop = crop_mod.crop_frame(frame, box, 240).astype(np.float64).sum(axis=2)
    ys, xs = np.mgrid[:240, :240]
    centroid = np.array([(xs * crop).sum(), (ys * crop).sum()]) / crop.sum()
    expected = crop_mod.points_to_crop(np.array([140.0, 90.0]), box, 240)
    np.testing.assert_allclose(centroid, expected, atol=0.1)
    edge = crop_mod.crop_frame(frame, crop_mod.CropBox(-50, -20, 100), 100)  # padded
    assert edge.shape == (100, 100, 3)


def test_mask_covers_the_face_and_not_the_corners() -> None:
    points = TEMPLATE * 40 + 64  # a face in a 128 crop
    mask = foreground_mask(points.astype(np.float32), 128)
    assert mask.shape == (128, 128) and mask.dtype == np.uint8
    nose = points[30].round().astype(int)
    assert mask[nose[1], nose[0]] == 255
    assert mask[2, 2] == 0 and mask[2, 125] == 0  # top corners: background
    assert mask[127, 64] == 255  # shoulders/neck reach the bottom


# --------------------------------------------------------------------------------------------
# End to end (acceptance 1–3)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mead_raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RawClip]]:
    root = tmp_path_factory.mktemp("mead_raw")
    clips = [
        write_mead_clip(root, speaker, f"{i:03d}", emotion=emotion, seed=10 * s + i)
        for s, speaker in enumerate(("M003", "M005", "W009"))
        for i, emotion in enumerate(("happy", "angry"))
    ]
    return root, clips


@pytest.fixture(scope="module")
def mead_cache(
    mead_raw: tuple[Path, list[RawClip]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("mead_cache") / "cache"
    args = parse(["mead", "--root", str(mead_raw[0]), "--out", str(out), "--size", str(SIZE)])
    args.detector, args.no_progress = "precomputed", True
    assert run_preprocess(args) == 0
    return out


def test_layout_discovery(mead_raw: tuple[Path, list[RawClip]]) -> None:
    jobs = discover("mead", mead_raw[0])
    assert [j.clip for j in jobs] == sorted(c.clip for c in mead_raw[1])
    job = jobs[0]
    assert (job.speaker, job.emotion, job.level) == ("M003", "angry", 2)
    assert job.audio is None and job.landmarks is not None and job.landmarks.is_file()


def test_matches_the_direct_reference(
    mead_raw: tuple[Path, list[RawClip]], mead_cache: Path
) -> None:
    """Landmarks within 0.3 px (of a 96 crop), the same crop box ±1 px, frames ≥ 30 dB, mel ≈."""
    cache = Cache(mead_cache)
    assert cache.dataset == "mead" and len(cache.clips()) == 6 and not cache.skipped()
    for raw in mead_raw[1]:
        reader = cache.open(raw.clip)
        exact = crop_mod.stable_box(raw.landmarks, PRECOMPUTED.crop_scale, PRECOMPUTED.crop_shift)
        box = crop_mod.CropBox(*reader.meta["crop_box"])  # from the smoothed track
        assert max(abs(box.x0 - exact.x0), abs(box.y0 - exact.y0), abs(box.side - exact.side)) <= 1
        expected = crop_mod.points_to_crop(raw.landmarks, box, SIZE)
        assert reader.landmarks.shape == (30, 68, 2)
        assert np.abs(reader.landmarks - expected).max() < 0.3
        crops = [crop_mod.crop_frame(f, box, SIZE) for f in raw.frames[::7]]
        assert psnr(reader.frames(range(0, 30, 7)), np.stack(crops)) > 30
        assert raw.audio is not None
        reference = mel(raw.audio[: 30 * 640])
        assert reader.mel.shape == reference.shape
        assert np.abs(reader.mel - reference).mean() < 0.1  # AAC round trip, in [-4, 4] units
        assert reader.mask(0).shape == (SIZE, SIZE)


def test_trains_through_the_datamodule(mead_cache: Path) -> None:
    from data_modules.talking_face import TalkingFaceDataModule

    dm = TalkingFaceDataModule(
        str(mead_cache), dataset="mead", image_size=SIZE, batch_size=2, num_workers=0,
        val_fraction=0.25, samples_per_clip=2,
    )  # fmt: skip
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["target"].shape == (2, 3, SIZE, SIZE)
    assert batch["landmarks"].shape == (2, 5, 68, 2)
    assert batch["mel"].shape == (2, 5, 80, 16)
    assert not {"M003"} & set(batch["speaker"])  # MEAD test speaker held out


def test_matches_the_synthetic_generators_direct_cache(tmp_path: Path) -> None:
    """`pmfs data synth --raw` → preprocess (precomputed) ≈ the generator's own cache.

    Tolerances (crop side S = 64): landmarks mapped back to raw pixels equal the generator's to
    0.01 px without smoothing and 1 px with the default smoothing (measured 0.45); crop centre
    within 2 px (measured ≤ 1); crop side 75–100 % of S (measured 81–84 %: the synthetic faces
    are smaller than `TEMPLATE`'s, which sets our crop scale); same frame and mel counts, mel
    mean |difference| < 0.1 (measured 0.05, the AAC round trip of the raw m4a).
    """
    from data_modules.talking_face import TalkingFaceDataModule
    from pmfs.data.synth.config import SynthConfig
    from pmfs.data.synth.generate import build_synthetic_dataset

    size, direct = 64, tmp_path / "synth"
    config = SynthConfig(out=direct, speakers=2, clips=2, size=size, raw=True, workers=1,
                         min_seconds=1.0, max_seconds=1.5, progress=False)  # fmt: skip
    build_synthetic_dataset(config)
    for window, tolerance in ((1, 0.01), (PRECOMPUTED.smooth_window, 1.0)):
        out = tmp_path / f"pre{window}"
        settings = PreprocessSettings(size=size, detector="precomputed", smooth_window=window)
        assert preprocess("mead", config.raw_root, out, settings, progress=False).exit_code == 0
        ours, theirs = Cache(out), Cache(direct)
        assert [r.clip for r in ours.clips()] == [r.clip for r in theirs.clips()]
        for record in theirs.clips():
            a, b = theirs.open(record.clip), ours.open(record.clip)
            ax, ay, _, _ = a.meta["crop_box"]
            bx, by, side = b.meta["crop_box"]
            raw_a = a.landmarks + np.array([ax, ay], np.float32)
            raw_b = (b.landmarks + 0.5) * side / size - 0.5 + np.array([bx, by], np.float32)
            assert np.abs(raw_a - raw_b).max() < tolerance
            centre_a, centre_b = np.array([ax, ay]) + size / 2, np.array([bx, by]) + side / 2
            assert np.abs(centre_a - centre_b).max() <= 2 and 0.75 * size <= side <= size
            assert a.num_frames == b.num_frames and a.mel.shape == b.mel.shape
            assert np.abs(a.mel - b.mel).mean() < 0.1
    dm = TalkingFaceDataModule(str(out), dataset="mead", image_size=size, batch_size=2,
                               num_workers=0, test_speakers=["S02"], val_fraction=0.5,
                               samples_per_clip=2)  # fmt: skip
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["target"].shape == (2, 3, size, size) and set(batch["speaker"]) == {"S01"}


def test_cremad_30fps_flv_is_converted(tmp_path: Path) -> None:
    raw = write_cremad_clip(tmp_path / "raw", "1001_DFA_ANG_XX", num=36)
    summary = preprocess(
        "cremad", tmp_path / "raw", tmp_path / "cache", PRECOMPUTED, progress=False
    )
    assert summary.ok == 1 and summary.exit_code == 0
    reader = Cache(tmp_path / "cache").open("1001_DFA_ANG_XX")
    assert reader.meta["record"]["emotion"] == "angry" and reader.meta["source_fps"] == 30
    assert reader.num_frames == 30  # 36 frames at 30 fps = 1.2 s = 30 frames at 25 fps
    kept = raw.landmarks[resample_indices(36, 30)]  # the frame nearest each 25 fps time
    box = crop_mod.stable_box(kept, PRECOMPUTED.crop_scale, PRECOMPUTED.crop_shift)
    expected = crop_mod.points_to_crop(kept, box, SIZE)
    assert np.abs(reader.landmarks - expected).max() < 0.8


# --------------------------------------------------------------------------------------------
# Bad input (acceptance 5)
# --------------------------------------------------------------------------------------------


BAD_CASES = {
    "truncated": "unreadable_video",
    "no_audio": "no_audio",
    "silent": "silent_audio",
    "av_mismatch": "av_mismatch",
    "no_face": "no_face",
    "fps30": "ok",
    "good": "ok",
}


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    root = tmp_path_factory.mktemp("bad_raw")
    write_mead_clip(root, "M010", "good")
    write_mead_clip(root, "M010", "truncated")
    write_mead_clip(root, "M010", "no_audio", with_audio=False)
    write_mead_clip(root, "M010", "silent", audio_gain=0.0)
    write_mead_clip(root, "M010", "av_mismatch", audio_seconds=2.0)
    write_mead_clip(root, "M010", "no_face", no_face=True)
    write_mead_clip(root, "M010", "fps30", num=36, fps=30.0)
    video = root / "M010/video/front/happy/level_2/truncated.mp4"
    video.write_bytes(video.read_bytes()[: video.stat().st_size * 2 // 3])
    out = tmp_path_factory.mktemp("bad_cache") / "cache"
    args = parse(["mead", "--root", str(root), "--out", str(out), "--size", str(SIZE)])
    args.detector, args.no_progress = "precomputed", True
    import contextlib
    import io

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        code = run_preprocess(args)
    return out, code, text.getvalue()


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_recorded_and_the_run_goes_on(
    bad_run: tuple[Path, int, str], case: str
) -> None:
    out, code, text = bad_run
    records = {r.clip: r for r in Cache(out).records}
    assert len(records) == len(BAD_CASES)  # nothing lost
    record = records[f"M010_happy_2_{case}"]
    if BAD_CASES[case] == "ok":
        assert record.status == "ok" and record.frames == 30  # 30 fps: converted, not dropped
    else:
        assert record.status == "skipped" and record.reason.startswith(BAD_CASES[case] + ":")
        assert f"skipped 1 × {BAD_CASES[case]}" in text
    assert code == 3 and "7 clips: 2 usable, 5 skipped" in text


def test_rerun_still_reports_the_skipped_clips(bad_run: tuple[Path, int, str]) -> None:
    out = bad_run[0]
    root = Path(Cache(out).open("M010_happy_2_good").meta["source_video"]).parents[5]
    summary = preprocess("mead", root, out, PRECOMPUTED, progress=False)
    assert (summary.already_done, summary.ok, summary.exit_code) == (7, 0, 3)
    assert summary.skipped["silent_audio"] == 1 and "7 clips: 2 usable, 5 skipped" in summary.text()


# --------------------------------------------------------------------------------------------
# Resume and settings (acceptance 6)
# --------------------------------------------------------------------------------------------


def test_rerun_skips_done_clips_and_settings_change_redoes_them(
    mead_raw: tuple[Path, list[RawClip]], tmp_path: Path
) -> None:
    root, out = mead_raw[0], tmp_path / "cache"
    first = preprocess("mead", root, out, PRECOMPUTED, progress=False)
    before = tree_hashes(out)
    again = preprocess("mead", root, out, PRECOMPUTED, progress=False)
    assert (first.ok, again.already_done, again.ok) == (6, 6, 0)
    assert tree_hashes(out) == before
    changed = PreprocessSettings(size=SIZE, detector="precomputed", smooth_window=1)
    redo = preprocess("mead", root, out, changed, progress=False)
    assert (redo.already_done, redo.ok) == (0, 6)


def test_parallel_workers_give_the_same_cache(
    mead_raw: tuple[Path, list[RawClip]], mead_cache: Path, tmp_path: Path
) -> None:
    """Two spawned workers write the same bytes as the in-process run of `mead_cache`."""
    out = tmp_path / "parallel"
    summary = preprocess("mead", mead_raw[0], out, PRECOMPUTED, workers=2, progress=False)
    assert (summary.ok, summary.exit_code) == (6, 0)
    assert tree_hashes(out) == tree_hashes(mead_cache)


def _complete_clip_dirs_only(out: Path) -> None:
    """No folder under a clip's final name lacks a file (temporary folders are hidden)."""
    for folder in out.glob("clips/*/*"):
        if not folder.name.startswith("."):
            names = {p.name for p in folder.iterdir()}
            assert {"meta.json", "frames.pack", "masks.pack", "landmarks.npy"} <= names, folder


def test_kill_and_resume_gives_the_uninterrupted_result(
    mead_raw: tuple[Path, list[RawClip]], tmp_path: Path
) -> None:
    root = mead_raw[0]
    argv = ["mead", "--root", str(root), "--size", str(SIZE), "--detector", "precomputed"]
    argv += ["--no-progress"]
    command = [sys.executable, "-m", "pmfs", "data", "preprocess", *argv]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    reference = tmp_path / "reference"
    subprocess.run([*command, "--out", str(reference)], check=True, env=env, timeout=300)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*command, "--out", str(killed)], env=env)
    manifest = killed / "manifest.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        _complete_clip_dirs_only(killed) if killed.exists() else None
        if manifest.is_file() and len(manifest.read_text().splitlines()) >= 3:  # 2 clips done
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    _complete_clip_dirs_only(killed)
    assert len(Cache(killed).clips()) < 6

    subprocess.run([*command, "--out", str(killed)], check=True, env=env, timeout=300)
    assert tree_hashes(killed) == tree_hashes(reference)
