"""`pmfs data preprocess videos`: any talking-head footage as a dataset.

The footage is drawn here (the face of tests/data/test_preprocess.py, whose 68 landmarks are
known exactly, and a harmonic voice with pauses of true silence at known times), written with
real PyAV encoders into the containers users have (mp4, mov, mkv, avi, webm), with the audio
inside the video or beside it (wav, flac, m4a, mp3), and preprocessed with
`--detector precomputed` (the exact landmarks in `<stem>.npy` beside each video). What is
checked: the layouts, the cuts at pauses, 30 fps input, the split by time, shards + merge = one
run byte for byte, resume after SIGKILL, bad input, and that the DataModule and `pmfs evaluate`
take a cache without emotion labels.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from test_preprocess import face_track, render, speech, write_mead_clip

from pmfs.batch import EMOTIONS, UNLABELLED
from pmfs.commands.data import build_parser
from pmfs.data.cache import Cache, CacheError
from pmfs.data.preprocess.layouts import discover_videos
from pmfs.data.preprocess.pipeline import PreprocessSettings, preprocess
from pmfs.data.preprocess.reading import iter_frame_range
from pmfs.data.preprocess.segment import cut_range, frame_levels, pause_runs, plan_pieces
from pmfs.data.preprocess.settings import VideoSettings
from pmfs.data.preprocess.shards import Shard, manifest_parts, merge, parse_shard
from pmfs.data.synth.raw import write_m4a
from pmfs.faces import crop as crop_mod
from pmfs.video import iter_frames, resample_indices
from pmfs.video_writer import write_video

SIZE = 64  # crops: the size of the session's tiny PMFS checkpoint
SR = 16000
SETTINGS = PreprocessSettings(size=SIZE, detector="precomputed")
CUTS = VideoSettings(min_clip=1.0, max_clip=3.0)
REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# Footage
# --------------------------------------------------------------------------------------------


def voice(seconds: float, pauses: list[tuple[float, float]], seed: int) -> np.ndarray:
    """(A,) float32 16 kHz speech-like audio, digital silence inside `pauses` (seconds)."""
    audio = speech(seconds, seed)
    for start, stop in pauses:
        audio[round(start * SR) : round(stop * SR)] = 0.0
    return audio


def write_container(
    path: Path, frames: np.ndarray, fps: float, audio: np.ndarray | None, vcodec: str, acodec: str
) -> None:
    """Video (and audio) in any container PyAV writes: avi (mpeg4 + mp3), webm (vp9 + opus)."""
    rate = 48000 if acodec == "libopus" else 44100
    with av.open(str(path), "w") as container:
        video = container.add_stream(vcodec, rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        video.options = {"crf": "20", "b:v": "0"} if vcodec == "libvpx-vp9" else {"qscale": "2"}
        sound = None
        if audio is not None:
            sound = container.add_stream(acodec, rate=rate, layout="mono")
        for frame in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode(None))
        if sound is not None and audio is not None:
            import soxr

            samples = soxr.resample(audio, SR, rate).astype(np.float32)
            step = sound.codec_context.frame_size or 1152
            for i in range(0, len(samples), step):
                chunk = samples[None, i : i + step]
                if chunk.shape[1] < step:
                    chunk = np.pad(chunk, ((0, 0), (0, step - chunk.shape[1])))
                out = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                out.sample_rate, out.pts = rate, i
                container.mux(sound.encode(out))
            container.mux(sound.encode(None))


def write_talking_video(
    path: Path,
    seconds: float,
    *,
    fps: float = 25.0,
    pauses: list[tuple[float, float]] = (),  # type: ignore[assignment]
    seed: int = 0,
    beside: str | None = None,
    with_audio: bool = True,
) -> np.ndarray:
    """A talking face with its voice: the video at `path`, its exact landmarks in `<stem>.npy`
    (raw pixels at `fps`), the audio inside it or in `<stem><beside>`; returns the landmarks."""
    num = round(seconds * fps)
    points = face_track(num, fps, seed)
    background = np.asarray(
        np.random.default_rng(seed).integers(60, 180, size=(240, 320, 3)), np.uint8
    )
    frames = np.stack([render(p, background) for p in points])
    audio = voice(seconds, list(pauses), seed) if with_audio else None
    path.parent.mkdir(parents=True, exist_ok=True)
    inside = audio if beside is None else None
    if path.suffix == ".avi":
        write_container(path, frames, fps, inside, "mpeg4", "libmp3lame")
    elif path.suffix == ".webm":
        write_container(path, frames, fps, inside, "libvpx-vp9", "libopus")
    else:
        write_video(path, frames, fps, inside, crf=12, preset="ultrafast")
    if beside is not None and audio is not None:
        target = path.with_suffix(beside)
        if beside == ".m4a":
            write_m4a(target, audio)
        else:
            sf.write(target, audio, SR)
    np.save(path.with_suffix(".npy"), points)
    return points


def tree_hashes(root: Path) -> dict[str, str]:
    """relative path → sha1 of every file of a cache."""
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def cli(argv: list[str]) -> tuple[int, str, str]:
    """Run `pmfs data ...` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(argv)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = int(args.func(args))
    return code, out.getvalue(), err.getvalue()


PAUSES = [(2.0, 2.4), (4.6, 5.0)]  # alice's long talk: one cut in each pause


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four speakers, nested and flat, five containers, audio inside and beside, 25 and 30 fps."""
    root = tmp_path_factory.mktemp("footage")
    write_talking_video(root / "alice" / "talk.mp4", 6.4, pauses=PAUSES, seed=1)
    write_talking_video(root / "alice" / "day2" / "short.mkv", 2.2, seed=2)
    write_talking_video(root / "bob" / "intro.mov", 2.6, fps=30.0, seed=3, beside=".wav")
    write_talking_video(root / "carol.webm", 2.0, seed=4, pauses=[(0.9, 1.2)])
    write_talking_video(root / "dave.avi", 2.4, fps=30.0, seed=5, beside=".flac")
    (root / "notes.txt").write_text("not a video")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.mp4").write_bytes(b"ignored")
    return root


@pytest.fixture(scope="module")
def cache(footage: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The footage preprocessed by one run through the command line."""
    out = tmp_path_factory.mktemp("videos_cache") / "cache"
    argv = ["preprocess", "videos", "--root", str(footage), "--out", str(out)]
    argv += ["--size", str(SIZE), "--detector", "precomputed", "--min-clip", "1", "--max-clip"]
    argv += ["3", "--no-progress"]
    code, printed, _ = cli(argv)
    assert code == 0, printed
    assert "the clips of 5 videos" in printed
    return out


# --------------------------------------------------------------------------------------------
# Units: cutting, reading a range, the layout
# --------------------------------------------------------------------------------------------


def test_cuts_fall_in_pauses_within_the_clip_lengths() -> None:
    audio = voice(12.0, [(2.5, 2.9), (3.6, 3.76), (7.0, 7.5), (9.0, 9.1)], seed=0)
    levels = frame_levels(audio, 300)
    runs = pause_runs(levels, min_pause=5)
    assert runs == [(63, 72), (175, 187)]  # the 0.16 s and 0.1 s pauses are too short
    clips = cut_range(0, 300, runs, min_len=50, max_len=125)
    assert clips == [(0, 67), (67, 181), (181, 300)]  # the middle of each pause
    assert all(50 <= b - a <= 125 for a, b in clips)
    # with no pause: fixed length, and the last clip no shorter than the shortest
    noise = np.random.default_rng(0).normal(0, 0.1, 12 * SR).astype(np.float32)
    assert pause_runs(frame_levels(noise, 300), 5) == []
    assert cut_range(0, 300, [], 50, 125) == [(0, 125), (125, 250), (250, 300)]
    assert cut_range(0, 260, [], 50, 125) == [(0, 125), (125, 210), (210, 260)]
    assert cut_range(0, 40, [], 50, 125) == []  # shorter than a clip


def test_split_by_time_cuts_at_the_boundary() -> None:
    audio = voice(10.0, [(3.6, 4.0)], seed=0)
    pieces = plan_pieces(audio, 250, 25, 100, 5, test_fraction=0.2)
    assert [(p.start, p.stop, p.split) for p in pieces] == [
        (0, 95, "train"),  # in the pause
        (95, 175, "train"),  # no pause: the longest clip that leaves 1 s before the boundary
        (175, 200, "train"),
        (200, 250, "test"),  # the last 20 %, cut at the boundary
    ]
    short = plan_pieces(audio, 250, 60, 150, 5, test_fraction=0.2)
    assert short[-1].too_short and short[-1].split == "test"  # 2 s of test < 2.4 s


@pytest.mark.parametrize(
    ("name", "fps"),
    [("a.mp4", 30.0), ("b.mkv", 25.0), ("c.webm", 25.0), ("d.avi", 30.0), ("e.mov", 24.0)],
)
def test_a_range_of_frames_is_what_the_whole_decode_gives(
    tmp_path: Path, name: str, fps: float, caplog: pytest.LogCaptureFixture
) -> None:
    """Seeking to the keyframe before a clip (no fallback to decoding from the start) gives the
    frames that decoding the whole video at 25 fps gives, for 24, 25 and 30 fps sources."""
    path = tmp_path / name
    write_talking_video(path, 4.0, fps=fps, with_audio=False)
    whole = list(iter_frames(path, 25))
    with caplog.at_level(logging.DEBUG, logger="pmfs.data.preprocess.reading"):
        for start, stop in ((0, 7), (31, 52), (60, None), (len(whole) - 2, None), (45, 100)):
            part = list(iter_frame_range(path, 25, start, stop))
            assert len(part) == len(whole[start:stop])
            assert all(np.array_equal(a, b) for a, b in zip(part, whole[start:stop], strict=True))
    assert "missed" not in caplog.text


def test_layout_nested_flat_and_audio_beside(footage: Path) -> None:
    sources = {s.video_id: s for s in discover_videos(footage)}
    assert sorted(sources) == ["alice_day2_short", "alice_talk", "bob_intro", "carol", "dave"]
    speakers = [sources[k].speaker for k in sorted(sources)]
    assert speakers == ["alice", "alice", "bob", "carol", "dave"]
    assert sources["bob_intro"].audio == footage / "bob" / "intro.wav"
    assert sources["dave"].audio == footage / "dave.flac"
    assert sources["alice_talk"].audio is None and sources["carol"].audio is None
    assert sources["carol"].landmarks == footage / "carol.npy"


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------


def test_clips_cover_each_video_and_cut_at_its_pauses(footage: Path, cache: Path) -> None:
    reader = Cache(cache)
    assert reader.dataset == "videos" and not reader.skipped()
    records = {r.clip: r for r in reader.clips()}
    assert all(r.emotion is None and r.level is None for r in records.values())  # not invented
    assert {r.speaker for r in records.values()} == {"alice", "bob", "carol", "dave"}
    by_video: dict[str, list[tuple[int, int]]] = {}
    for clip in records:
        segment = reader.open(clip).meta["segment"]
        by_video.setdefault(segment["video_id"], []).append((segment["start"], segment["stop"]))
    # every frame of every video is in exactly one clip, clips of 1-3 s
    frames = {"alice_talk": 160, "alice_day2_short": 55, "bob_intro": 65, "carol": 50, "dave": 60}
    for video, segments in by_video.items():
        segments.sort()
        assert segments[0][0] == 0 and segments[-1][1] == frames[video]
        assert all(a[1] == b[0] for a, b in itertools.pairwise(segments))
        assert all(25 <= stop - start <= 75 for start, stop in segments)
    cuts = [stop / 25 for _, stop in by_video["alice_talk"][:-1]]
    assert len(cuts) == 2 and all(a < cut < b for cut, (a, b) in zip(cuts, PAUSES, strict=True))
    assert records["alice_talk_000"].frames == by_video["alice_talk"][0][1]


def test_landmarks_and_audio_of_a_cut_clip_are_its_own(footage: Path, cache: Path) -> None:
    """The second clip of a 25 fps and of a 30 fps video: the exact landmarks of its frames
    (0.3 px of a 64 crop after smoothing), and its part of the voice."""
    for clip, video, fps, seed in (("alice_talk_001", "alice/talk", 25.0, 1),
                                   ("bob_intro_000", "bob/intro", 30.0, 3)):  # fmt: skip
        reader = Cache(cache).open(clip)
        start, stop = reader.meta["segment"]["start"], reader.meta["segment"]["stop"]
        exact = np.load(footage / f"{video}.npy")
        if fps == 30.0:
            exact = exact[resample_indices(len(exact), 30)]  # nearest frame at 25 fps
        box = crop_mod.CropBox(*reader.meta["crop_box"])
        expected = crop_mod.points_to_crop(exact[start:stop], box, SIZE)
        assert reader.meta["source_fps"] == fps and reader.num_frames == stop - start
        assert np.abs(reader.landmarks - expected).max() < 0.3
        pauses = PAUSES if video == "alice/talk" else []
        truth = voice(len(exact) / 25 + 1, pauses, seed)[start * 640 : stop * 640]
        correlation = np.corrcoef(reader.audio, truth)[0, 1]  # after an AAC / WAV round trip
        assert correlation > 0.95, clip


def test_datamodule_and_sheet_take_clips_without_labels(cache: Path, tmp_path: Path) -> None:
    from data_modules.talking_face import TalkingFaceDataModule
    from pmfs.data.sheet import make_contact_sheet

    extra = Cache(cache).extra
    assert extra["split_by"] == "speaker" and len(extra["test_speakers"]) == 1  # 20 % of 4
    dm = TalkingFaceDataModule(str(cache), dataset="videos", image_size=SIZE, batch_size=4,
                               num_workers=0, samples_per_clip=2, val_fraction=0.2)  # fmt: skip
    dm.setup("fit")
    assert dm.splits is not None
    assert {r.speaker for r in dm.splits.test} == set(extra["test_speakers"])
    batch = next(iter(dm.train_dataloader()))
    assert batch["target"].shape == (4, 3, SIZE, SIZE)
    assert set(batch["speaker"]).isdisjoint(extra["test_speakers"])
    neutral = (EMOTIONS.index(UNLABELLED[0]), UNLABELLED[1] - 1)
    assert {(int(e), int(v)) for e, v in zip(batch["emotion"], batch["level"], strict=True)} == {
        neutral
    }
    assert make_contact_sheet(cache, tmp_path / "sheet.png").is_file()


def test_two_workers_give_the_same_cache(footage: Path, cache: Path, tmp_path: Path) -> None:
    """Plans and clips made in two spawned workers: the bytes of the in-process run."""
    out = tmp_path / "parallel"
    summary = preprocess("videos", footage, out, SETTINGS, workers=2, progress=False, videos=CUTS)
    assert summary.exit_code == 0 and summary.ok == len(Cache(cache).clips())
    assert tree_hashes(out) == tree_hashes(cache)


def test_evaluate_scores_a_cache_without_labels(
    cache: Path, known_pmfs_checkpoint: Path, tmp_path: Path
) -> None:
    """`pmfs evaluate` on the held-out speaker of the videos cache: overall and per-clip
    metrics, no per-emotion groups, the labels None in per_clip (the model, trained with emotion
    labels, ran with neutral level 1)."""
    from pmfs.commands.evaluate import main

    out = tmp_path / "evaluation"
    args = ["--ckpt", str(known_pmfs_checkpoint), "--data", str(cache), "--out", str(out),
            "--max-frames", "12", "--device", "cpu", "--no-progress"]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no optional metric weights
        assert main(args) == 0
    results = json.loads((out / "metrics.json").read_text())
    test_speakers = Cache(cache).extra["test_speakers"]
    assert results["dataset"] == "videos" and results["per_emotion"] == {} == results["per_level"]
    assert results["per_clip"] and all(
        c["emotion"] is None and c["level"] is None and c["speaker"] in test_speakers
        for c in results["per_clip"].values()
    )
    overall = results["overall"]["from_audio"]
    assert 5.0 < overall["psnr"] < 60.0 and overall["m_lmd"] >= 0.0
    assert "no emotion labels" in (out / "metrics.md").read_text()


# --------------------------------------------------------------------------------------------
# Split by time, shards, resume
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def time_split(footage: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("time_split") / "cache"
    videos = VideoSettings(min_clip=1.0, max_clip=3.0, split_by="time", test_fraction=0.25)
    summary = preprocess("videos", footage, out, SETTINGS, progress=False, videos=videos)
    assert summary.exit_code == 3  # the test part of the 2 s videos is under 1 s: too_short
    return out


def test_split_by_time_keeps_the_last_part_of_each_video(time_split: Path) -> None:
    from data_modules.talking_face import TalkingFaceDataModule

    cache = Cache(time_split)
    frames = {"alice_talk": 160, "alice_day2_short": 55, "bob_intro": 65, "carol": 50, "dave": 60}
    test_clips = set(cache.extra["test_clips"])
    assert cache.extra["split_by"] == "time" and test_clips
    for record in cache.clips():
        meta = cache.open(record.clip).meta
        video, start = meta["segment"]["video_id"], meta["segment"]["start"]
        boundary = frames[video] - round(0.25 * frames[video])
        assert (record.clip in test_clips) == (start >= boundary) == (meta["split"] == "test")
        if record.clip not in test_clips:
            assert meta["segment"]["stop"] <= boundary  # no clip spans the two parts
    skipped = {r.clip: r.reason for r in cache.skipped()}
    assert skipped and all(reason.startswith("too_short:") for reason in skipped.values())
    dm = TalkingFaceDataModule(str(time_split), dataset="videos", image_size=SIZE,
                               num_workers=0, val_fraction=0.0)  # fmt: skip
    dm.setup()
    assert dm.splits is not None
    assert {r.clip for r in dm.splits.test} == test_clips
    assert {r.clip for r in dm.splits.train} == {r.clip for r in cache.clips()} - test_clips


def test_shards_then_merge_equal_one_run(footage: Path, time_split: Path, tmp_path: Path) -> None:
    from data_modules.talking_face import TalkingFaceDataModule

    out = tmp_path / "sharded"
    videos = VideoSettings(min_clip=1.0, max_clip=3.0, split_by="time", test_fraction=0.25)
    owned = [Shard(i, 3).owns(s.video_id) for s in discover_videos(footage) for i in range(3)]
    assert sum(owned) == 5  # each video in exactly one shard
    totals = []
    for index in range(3):
        summary = preprocess("videos", footage, out, SETTINGS, progress=False, videos=videos,
                             shard=parse_shard(f"{index}/3"))  # fmt: skip
        totals.append(summary.videos)
        assert f"shard {index}/3" in summary.text()
    assert sum(totals) == 5 and len(manifest_parts(out)) == 3
    assert not (out / "manifest.csv").exists()  # the shards write their parts only
    with pytest.raises(CacheError, match="pmfs data merge --out"):
        TalkingFaceDataModule(str(out), dataset="videos", num_workers=0).setup()
    code, printed, _ = cli(["merge", "--out", str(out)])
    assert code == 0 and "merged 3 shard manifest(s)" in printed and "split by time" in printed
    assert tree_hashes(out) == tree_hashes(time_split)


def test_a_run_without_shard_merges_the_parts_first(
    footage: Path, time_split: Path, tmp_path: Path
) -> None:
    out = tmp_path / "auto"
    videos = VideoSettings(min_clip=1.0, max_clip=3.0, split_by="time", test_fraction=0.25)
    for index in range(2):
        preprocess("videos", footage, out, SETTINGS, progress=False, videos=videos,
                   shard=Shard(index, 2))  # fmt: skip
    summary = preprocess("videos", footage, out, SETTINGS, progress=False, videos=videos)
    assert summary.already_done == summary.total and summary.ok == 0
    assert not manifest_parts(out)
    assert tree_hashes(out) == tree_hashes(time_split)


def test_shards_of_a_mead_download_merge_too(tmp_path: Path) -> None:
    """MEAD / CREMA-D jobs are clips: sharded by clip id, merged into the one-run cache."""
    root = tmp_path / "mead"
    for i, speaker in enumerate(("M003", "M005", "M012", "M020")):  # 2 in each shard
        write_mead_clip(root, speaker, "001", seed=i)
    settings = PreprocessSettings(size=SIZE, detector="precomputed")
    preprocess("mead", root, tmp_path / "one", settings, progress=False)
    shards = [Shard(i, 2) for i in range(2)]
    counts = [preprocess("mead", root, tmp_path / "two", settings, progress=False,
                         shard=shard).total for shard in shards]  # fmt: skip
    assert sum(counts) == 4 and all(counts)  # the four clips split between the two shards
    assert merge(tmp_path / "two").parts == 2
    assert tree_hashes(tmp_path / "two") == tree_hashes(tmp_path / "one")


def test_kill_and_resume_gives_the_uninterrupted_result(
    footage: Path, time_split: Path, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "pmfs", "data", "preprocess", "videos", "--root",
               str(footage), "--size", str(SIZE), "--detector", "precomputed", "--min-clip", "1",
               "--max-clip", "3", "--split-by", "time", "--test-fraction", "0.25",
               "--no-progress", "--out"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*command, str(killed)], env=env)
    manifest = killed / "manifest.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.is_file() and len(manifest.read_text().splitlines()) >= 4:  # 3 rows done
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert len(Cache(killed).records) < len(Cache(time_split).records)
    subprocess.run([*command, str(killed)], check=False, env=env, timeout=300)
    assert tree_hashes(killed) == tree_hashes(time_split)


def test_figures_take_a_cache_without_labels(time_split: Path, known_pmfs_checkpoint: Path) -> None:
    """The ablation figure runs on the first test clip of a split by time; the emotion figure,
    which needs labels, says so in one line."""
    from pmfs.evaluation.figures import Run, ablation_figure, default_clip, emotion_figure

    cache = Cache(time_split)
    assert default_clip(cache, known_pmfs_checkpoint) == cache.extra["test_clips"][0]
    figure = ablation_figure([Run("known", known_pmfs_checkpoint)], time_split, max_frames=8)
    assert figure.width > 4 * SIZE and figure.height > SIZE
    with pytest.raises(ValueError, match=r"have no emotion labels .* needs a labelled dataset"):
        emotion_figure(known_pmfs_checkpoint, time_split, speaker="alice", max_frames=8)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_a_folder_without_video_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "readme.txt").write_text("no video here")
    code, printed, err = cli(["preprocess", "videos", "--root", str(tmp_path / "raw"),
                              "--out", str(tmp_path / "cache"), "--no-progress"])  # fmt: skip
    assert code == 1 and not printed
    assert err.count("\n") == 1 and err.startswith("error: no video (mp4, m4v, mov, mkv, avi")
    for argv, message in (
        (["--shard", "3/2"], "--shard must be I/N with 0 <= I < N"),
        (["--min-clip", "2", "--max-clip", "3"], "--max-clip (3 s) must be at least 2 x"),
    ):
        code, _, err = cli(["preprocess", "videos", "--root", str(tmp_path / "raw"), "--out",
                            str(tmp_path / "cache"), *argv])  # fmt: skip
        assert code == 1 and err.count("\n") == 1 and message in err
    code, _, err = cli(["preprocess", "mead", "--root", str(tmp_path), "--out", "x",
                        "--split-by", "time"])  # fmt: skip
    assert code == 1 and "apply to the videos layout only" in err


def test_bad_videos_are_recorded_and_nothing_written_is_lost(tmp_path: Path) -> None:
    """A corrupt video, a video without audio and one whose audio beside it is silent join a
    finished cache: each becomes one skipped row with its reason, the run goes on, and every
    file already written stays byte for byte."""
    root, out = tmp_path / "raw", tmp_path / "cache"
    write_talking_video(root / "erin" / "good.mp4", 2.4, seed=7)
    argv = ["preprocess", "videos", "--root", str(root), "--out", str(out), "--size", str(SIZE),
            "--detector", "precomputed", "--min-clip", "1", "--max-clip", "3",
            "--no-progress"]  # fmt: skip
    assert cli(argv)[0] == 0
    before = tree_hashes(out)
    write_talking_video(root / "erin" / "broken.mp4", 2.0, seed=8)
    broken = root / "erin" / "broken.mp4"
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 3])
    write_talking_video(root / "erin" / "mute.mp4", 2.0, seed=9, with_audio=False)
    write_talking_video(root / "frank.mp4", 2.0, seed=10, beside=".wav")
    sf.write(root / "frank.wav", np.zeros(2 * SR, np.float32), SR)
    code, printed, _ = cli(argv)
    assert code == 3 and "4 clips: 1 usable, 3 skipped (3 processed by this run" in printed
    reasons = {r.clip: r.reason for r in Cache(out).skipped()}
    assert reasons["erin_broken"].startswith("unreadable_video: ")
    assert reasons["erin_mute"].startswith("no_audio: ")
    assert reasons["frank"].startswith("silent_audio: ")
    after = tree_hashes(out)
    kept = {k: v for k, v in before.items() if k.startswith(("clips/", "videos/erin_good"))}
    assert kept and all(after[k] == v for k, v in kept.items())


# --------------------------------------------------------------------------------------------
# Real footage
# --------------------------------------------------------------------------------------------


def test_the_talking_man_with_dlib(tmp_path: Path) -> None:
    """`../shared/samples/talking_man_1080x1920.mp4` (20 s, 1080×1920, its own speech) as a
    videos dataset with the real dlib detector, split by time: every frame in a clip and every
    frame with a face, cuts in the pauses of his speech, the last 20 % test, the clips' audio
    exactly the video's track, one head crop for all clips. About 30 s on 2 CPU cores."""
    from conftest import SAMPLES_DIR

    from pmfs.audio import load_audio

    sample = SAMPLES_DIR / "talking_man_1080x1920.mp4"
    if not sample.is_file():
        pytest.skip(f"sample {sample.name} not found in {SAMPLES_DIR} (set PMFS_SAMPLES)")
    (tmp_path / "raw" / "man").mkdir(parents=True)
    os.symlink(sample, tmp_path / "raw" / "man" / "talk.mp4")  # the sample is not copied
    out = tmp_path / "cache"
    code, printed, _ = cli(["preprocess", "videos", "--root", str(tmp_path / "raw"), "--out",
                            str(out), "--detector", "dlib", "--size", "128", "--split-by", "time",
                            "--no-progress"])  # fmt: skip
    assert code == 0, printed
    cache = Cache(out)
    metas = [cache.open(r.clip).meta for r in cache.clips()]
    segments = [(m["segment"]["start"], m["segment"]["stop"]) for m in metas]
    assert segments[0][0] == 0 and segments[-1][1] == 502  # 20.08 s
    assert all(a[1] == b[0] for a, b in itertools.pairwise(segments))
    assert all(m["interpolated_frames"] == 0 for m in metas)  # a face in every frame
    audio = load_audio(sample)
    pauses = pause_runs(frame_levels(audio, 502), 5)
    for _, cut in segments[:-1]:
        assert cut == 402 or any(a < cut < b for a, b in pauses), cut  # 402: the test boundary
    records = cache.clips()
    test = [r.clip for r, (start, _) in zip(records, segments, strict=True) if start >= 402]
    assert cache.extra["test_clips"] == test
    clips_audio = np.concatenate([cache.open(r.clip).audio for r in cache.clips()])
    expected = np.pad(audio, (0, 502 * 640 - len(audio)))  # 20.04 s of audio: the end padded
    np.testing.assert_array_equal(clips_audio, expected)
    sides = [m["crop_box"][2] for m in metas]
    assert max(sides) / min(sides) < 1.1  # the same head crop in every clip (measured 1.02)
