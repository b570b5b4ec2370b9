"""The face-alignment path of `pmfs data preprocess`, run for real with random-weight checkpoints.

`tests/fa_weights.py` writes a random FAN and an S3FD (random backbone, constant heads: see its
docstring) under the library's own file names in a temporary TORCH_HOME; the preprocessor then
loads them through face-alignment's normal weight cache and runs on the demo videos of
../shared/samples. Landmark accuracy is not claimed: the tests check the code path (weights
loading, batching, device handling, shapes, crop, cache) and that our batched FAN gives exactly
what the library's own per-frame `get_landmarks_from_batch` gives.

A random FAN on a 2-core CPU takes about 1.5 s per frame, so the default tests use the first
`FRAMES` frames of each sample; the full sample files run under `-m slow`, and on a GPU under
`-m gpu`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pmfs.commands.data import main
from pmfs.data.cache import Cache
from pmfs.data.preprocess.pipeline import PreprocessSettings, preprocess
from pmfs.faces.detect import (
    DetectorWeightsError,
    FaceAlignmentDetector,
    select_face,
    weight_files,
)
from pmfs.video import read_video
from pmfs.video_writer import write_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAMES = 4
SIZE = 128
FA_SETTINGS = PreprocessSettings(size=SIZE, detector="face-alignment", smooth_window=5)


def _mead_layout(root: Path, video: Path, frames: int | None) -> Path:
    """Put a sample video into the MEAD layout (its first `frames` frames, or the file itself)."""
    target = root / "M003" / "video" / "front" / "angry" / "level_1" / f"{video.stem}.mp4"
    target.parent.mkdir(parents=True, exist_ok=True)
    if frames is None:
        target.symlink_to(video)
        return target
    clip = read_video(video, 25)
    assert clip.audio is not None
    write_video(target, clip.frames[:frames], 25, clip.audio[: frames * 640], crf=12)
    return target


def test_batched_fan_equals_the_library(torch_home: Path, sample_videos: list[Path]) -> None:
    """Our one-pass FAN over a batch = face-alignment's get_landmarks_from_batch, frame by frame."""
    frames = read_video(sample_videos[0], 25, with_audio=False).frames[10:12]
    detector = FaceAlignmentDetector("cpu", batch_size=2)
    batch = torch.from_numpy(frames.transpose(0, 3, 1, 2).copy()).float()
    boxes = detector.model.face_detector.detect_from_batch(batch)
    faces = [select_face(b) for b in boxes]
    assert all(face is not None for face in faces)  # the constant S3FD heads always fire
    ours = detector.landmarks_for_faces(frames, faces)
    library = detector.model.get_landmarks_from_batch(batch, detected_faces=[[f] for f in faces])
    assert ours.shape == (2, 68, 2) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, np.stack(library), atol=1e-3)


def _run_on_samples(
    videos: list[Path], tmp_path: Path, frames: int | None, device: str, batch_size: int
) -> Cache:
    root = tmp_path / "raw"
    for video in videos:
        _mead_layout(root, video, frames)
    summary = preprocess(
        "mead", root, tmp_path / "cache", FA_SETTINGS, device=device, batch_size=batch_size,
        progress=False,
    )  # fmt: skip
    assert summary.total == len(videos)
    return Cache(tmp_path / "cache")


def _check_fa_cache(cache: Cache, frames: int | None) -> None:
    assert cache.info["settings"]["detector"] == "face-alignment"
    for record in cache.records:
        if record.status == "skipped":  # honest outcome for random weights: say why
            assert record.reason.split(":")[0] in {"no_face", "lost_frames"}, record.reason
            continue
        reader = cache.open(record.clip)
        n = reader.num_frames
        assert frames is None or n == frames
        assert reader.landmarks.shape == (n, 68, 2) and np.isfinite(reader.landmarks).all()
        assert reader.frame(n - 1).shape == (SIZE, SIZE, 3)
        assert reader.mask(0).shape == (SIZE, SIZE)
        side = reader.meta["crop_box"][2]
        assert side >= 2 and reader.meta["detector"] == "face-alignment"
    assert cache.clips(), "the constant S3FD heads always fire, so every clip should be usable"


def test_preprocess_samples_with_face_alignment(
    torch_home: Path, sample_videos: list[Path], tmp_path: Path
) -> None:
    cache = _run_on_samples(sample_videos, tmp_path, FRAMES, "cpu", batch_size=4)
    _check_fa_cache(cache, FRAMES)


@pytest.mark.slow
def test_preprocess_full_samples_with_face_alignment(
    torch_home: Path, sample_videos: list[Path], tmp_path: Path
) -> None:
    _check_fa_cache(_run_on_samples(sample_videos, tmp_path, None, "cpu", batch_size=8), None)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_preprocess_samples_on_the_gpu(
    torch_home: Path, sample_videos: list[Path], tmp_path: Path
) -> None:
    detector = FaceAlignmentDetector("cuda", batch_size=16)
    assert next(detector.model.face_alignment_net.parameters()).is_cuda
    _check_fa_cache(_run_on_samples(sample_videos, tmp_path, None, "cuda", batch_size=16), None)


def test_missing_weights_name_the_files_and_the_folder(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sample_videos: list[Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No weights and no network (a dead proxy makes the download fail at once, offline or not)."""
    home = tmp_path / "empty_torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    folder = home / "hub" / "checkpoints"
    with pytest.raises(DetectorWeightsError) as info:
        FaceAlignmentDetector("cpu")
    message = str(info.value)
    for name, url in weight_files().items():
        assert str(folder / name) in message and url in message
    assert "s3fd-619a316812.pth" in message and "2DFAN4-11f355bf06.pth.tar" in message
    _mead_layout(tmp_path / "raw", sample_videos[0], None)
    args = ["mead", "--root", str(tmp_path / "raw"), "--out", str(tmp_path / "cache")]
    assert main(["preprocess", *args, "--detector", "face-alignment", "--no-progress"]) == 1
    assert str(folder / "s3fd-619a316812.pth") in capsys.readouterr().err
