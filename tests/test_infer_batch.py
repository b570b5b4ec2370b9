"""Issue 16 item 2: `pmfs infer --batch jobs.csv`.

Real files throughout: a synthetic raw clip (video, speech, landmarks) and the real sample video
with dlib; the checkpoint is `known_pmfs_checkpoint`. A batch loads the model once, reads and
detects a face shared by several jobs once (counted through a wrapper around the real detector),
gives each job what a single run would give, records each failing job with its reason while the
others finish, and refuses a CSV with a bad header before loading anything.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pmfs.audio import SAMPLE_RATE, load_audio
from pmfs.commands.infer import main
from pmfs.inference.batch import run_batch
from pmfs.inference.jobs import BatchFileError, read_jobs
from pmfs.inference.options import InferenceOptions
from pmfs.inference.run import run_inference
from pmfs.inference.tracking import Detections, DlibFaces
from pmfs.video import probe_video, read_video

OPTIONS = InferenceOptions(device="cpu", progress=False)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 1-second synthetic raw clip (video 112×80, landmarks .npy) and 0.4 s / 0.8 s wavs of
    its speech."""
    from pmfs.data.synth.config import SynthConfig
    from pmfs.data.synth.generate import build_synthetic_dataset

    out = tmp_path_factory.mktemp("batch_synth")
    build_synthetic_dataset(
        SynthConfig(out=out, speakers=1, clips=1, size=64, raw=True, workers=1, min_seconds=1.0,
                    max_seconds=1.0, progress=False)
    )  # fmt: skip
    files = {"video": next((out / "raw").rglob("*.mp4")), "npy": next((out / "raw").rglob("*.npy"))}
    speech = load_audio(next((out / "raw").rglob("*.m4a")))
    for name, seconds in (("short", 0.4), ("long", 0.8)):
        files[name] = out / f"{name}.wav"
        sf.write(files[name], speech[: int(seconds * SAMPLE_RATE)], SAMPLE_RATE)
    return files


def write_csv(path: Path, header: list[str], rows: Sequence[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([[str(cell) for cell in row] for row in rows])
    return path


def check_video(path: Path, seconds: float, size: tuple[int, int]) -> None:
    """An mp4 with audio of `seconds` (25 fps, ±0 frames) and `size` = (height, width)."""
    info = probe_video(path)
    assert info.has_audio and info.fps == 25 and (info.height, info.width) == size
    assert info.num_frames == round(seconds * 25), (path, info.num_frames)


def test_failing_jobs_are_recorded_and_the_others_finish(
    known_pmfs_checkpoint: Path, clip: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    (folder / "noise.wav").write_bytes(b"this is not audio" * 20)
    (folder / "speech.wav").write_bytes(clip["short"].read_bytes())
    no_face = folder / "none.npy"
    np.save(no_face, np.full_like(np.load(clip["npy"]), np.nan))
    video, npy = clip["video"], clip["npy"]
    rows = [
        ["speech.wav", video, "out/a.mp4", "", npy],  # relative: from the CSV's folder
        [clip["long"], video, "out/b.mp4", "happy", npy],
        [clip["short"], "missing.mp4", "out/c.mp4", "", ""],
        [clip["short"], "corrupt.mp4", "out/d.mp4", "", ""],
        [clip["short"], video, "out/e.mp4", "grumpy", npy],
        [clip["short"], video, "out/f.mp4", "", no_face],
        ["noise.wav", video, "out/g.mp4", "", npy],
    ]
    jobs = write_csv(folder / "jobs.csv", ["audio", "face", "out", "emotion", "landmarks"], rows)
    argv = ["--ckpt", str(known_pmfs_checkpoint), "--batch", str(jobs), "--device", "cpu"]
    assert main([*argv, "--no-progress"]) == 1
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("batch: 7 jobs, 2 ok, 5 failed in ")
    assert str(folder / "jobs.results.csv") in summary
    check_video(folder / "out" / "a.mp4", 0.4, (80, 112))
    check_video(folder / "out" / "b.mp4", 0.8, (80, 112))
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["a.mp4", "b.mp4"]
    with (folder / "jobs.results.csv").open() as handle:
        results = list(csv.DictReader(handle))
    assert [r["job"] for r in results] == [str(i) for i in range(1, 8)]
    assert [r["status"] for r in results] == ["ok", "ok"] + ["failed"] * 5
    assert [r["frames"] for r in results[:2]] == ["10", "20"]
    assert results[0]["audio"] == str(folder / "speech.wav")
    assert results[0]["out"] == str(folder / "out" / "a.mp4")
    errors = [r["error"] for r in results]
    assert errors[:2] == ["", ""]
    assert errors[2] == f"face file not found: {folder / 'missing.mp4'}"
    assert errors[3].startswith(f"cannot read the face video {folder / 'corrupt.mp4'}")
    assert errors[4].startswith("unknown emotion 'grumpy'; one of angry")
    assert errors[5].startswith(f"no face found in any of the 10 frames of {video}")
    assert "noise.wav" in errors[6]
    assert all("\n" not in e for e in errors)


class CountingDetector:
    """The real dlib detector, counting the frames of each call."""

    def __init__(self) -> None:
        self.detector = DlibFaces()
        self.calls: list[int] = []

    def __call__(self, frames: np.ndarray) -> Detections:
        self.calls.append(len(frames))
        return self.detector(frames)


def test_a_shared_face_is_detected_once_and_each_job_matches_a_single_run(
    known_pmfs_checkpoint: Path, sample_video: Path, clip: dict[str, Path], tmp_path: Path
) -> None:
    """Two jobs on one real face video (dlib): one detection of the 20 frames the longer job
    needs; each output equals the single run of its job, frame for frame."""
    rows = [[clip["long"], sample_video, "long.mp4"], [clip["short"], sample_video, "short.mp4"]]
    jobs = write_csv(tmp_path / "jobs.csv", ["audio", "face", "out"], rows)
    counting = CountingDetector()
    outcome = run_batch(known_pmfs_checkpoint, jobs, OPTIONS, detector=counting)
    assert [r.status for r in outcome.results] == ["ok", "ok"] and outcome.failed == 0
    assert counting.calls == [20]  # one detection, for the longest job (0.8 s)
    check_video(tmp_path / "long.mp4", 0.8, (256, 256))
    check_video(tmp_path / "short.mp4", 0.4, (256, 256))
    single = tmp_path / "single.mp4"
    run_inference(known_pmfs_checkpoint, clip["short"], sample_video, single, OPTIONS,
                  detector=counting)  # fmt: skip
    assert counting.calls == [20, 10]
    batch_frames = read_video(tmp_path / "short.mp4", with_audio=False).frames
    np.testing.assert_array_equal(batch_frames, read_video(single, with_audio=False).frames)


def test_jobs_grouped_by_face_and_read_with_the_row_settings(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    rows = [
        ["a.wav", "sub/face.mp4", "o1.mp4", "sad", "2", "5"],
        ["/abs/b.wav", "./sub/../sub/face.mp4", "o1.mp4", "", "", ""],
        ["c.wav", "face.png", "o1.mp4", "", "4", ""],
        ["d.wav", "face.png", "o3.avi", "", "", "0"],
    ]
    header = ["audio", "face", "out", "emotion", "level", "references"]
    jobs = read_jobs(write_csv(tmp_path / "jobs.csv", header, rows), OPTIONS)
    assert jobs[0].audio == tmp_path / "a.wav" and jobs[1].audio == Path("/abs/b.wav")
    assert jobs[0].face_key == jobs[1].face_key == (tmp_path / "sub" / "face.mp4", None)
    assert (jobs[0].options.emotion, jobs[0].options.level) == ("sad", 2)
    assert jobs[0].options.num_references == 5 and jobs[0].problem is None
    assert jobs[1].options == OPTIONS
    problems = [job.problem or "" for job in jobs]
    assert problems[1] == f"out {tmp_path / 'o1.mp4'} is also the out of job 1"
    assert "level must be one of 1, 2, 3, got '4'" in problems[2]
    assert "is also the out of job 1" not in problems[2]  # its first reason is enough
    assert "must end in one of .mp4" in problems[3]
    assert "references must be a whole number ≥ 1, got '0'" in problems[3]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["audio", "out"], "no column 'face'; columns: audio, face, out (required)"),
        (["audio", "face", "out", "speed"], "unknown column 'speed'"),
        (["audio", "face", "out", "out"], "column 'out' appears twice"),
    ],
)
def test_a_bad_header_is_one_clear_error_before_any_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], header: list[str], message: str
) -> None:
    jobs = write_csv(tmp_path / "jobs.csv", header, [["x"] * len(header)])
    with pytest.raises(BatchFileError, match=re.escape(message)):
        read_jobs(jobs, OPTIONS)
    absent = tmp_path / "no.ckpt"  # a model load would fail on this first
    assert main(["--ckpt", str(absent), "--batch", str(jobs), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "jobs.results.csv").exists()


def test_an_empty_jobs_file_is_a_clear_error(tmp_path: Path) -> None:
    jobs = write_csv(tmp_path / "jobs.csv", ["audio", "face", "out"], [])
    with pytest.raises(BatchFileError, match="has a header but no jobs"):
        read_jobs(jobs, OPTIONS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch", "j.csv", "--audio", "a.wav"], "--batch takes every file from its CSV"),
        (["--audio", "a.wav", "--face", "f.png"], "missing --out), or --batch JOBS.csv"),
        (["--audio", "a.wav", "--face", "f.png", "--out", "o.mp4", "--results", "r.csv"],
         "--results goes with --batch"),
    ],
)  # fmt: skip
def test_exactly_one_mode(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--ckpt", "x.ckpt", *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_results_go_where_asked(
    known_pmfs_checkpoint: Path, clip: dict[str, Path], tmp_path: Path
) -> None:
    rows = [[clip["short"], clip["video"], tmp_path / "a.mp4", clip["npy"]]]
    jobs = write_csv(tmp_path / "jobs.csv", ["audio", "face", "out", "landmarks"], rows)
    results = tmp_path / "deep" / "r.csv"
    argv = ["--ckpt", str(known_pmfs_checkpoint), "--batch", str(jobs), "--results", str(results)]
    assert main([*argv, "--device", "cpu", "--no-progress"]) == 0
    assert results.read_text().splitlines()[1].startswith(f"1,{clip['short']},")
    check_video(tmp_path / "a.mp4", 0.4, (80, 112))
    assert not (tmp_path / "jobs.results.csv").exists()
