"""`LandmarkVideoLogger` in a real fit with an offline `WandbLogger`, read back from the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from callbacks import LandmarkVideoLogger
from data_modules.talking_face import TalkingFaceDataModule
from pmfs.audio import mel_windows
from pmfs.data.cache import Cache
from pmfs.landmarks import CONTENT_INDICES, pixels_to_normalized
from pmfs.networks import AudioToMouthNet, MouthToFaceNet
from pmfs.stages import AudioToMouth, MouthToFace
from pmfs.video import probe_video, read_video

wandb = pytest.importorskip("wandb")
from wandb_reader import history as read_history  # noqa: E402

SIZE = 48


def _datamodule(root: Path) -> TalkingFaceDataModule:
    return TalkingFaceDataModule(
        str(root),
        window=5,
        num_references=2,
        landmarks_only=True,
        batch_size=4,
        num_workers=0,
        samples_per_clip=4,
    )


def _stage1() -> AudioToMouth:
    return AudioToMouth(AudioToMouthNet(dim=32, depth=1, heads=2, conv_channels=8))


def test_scalars_and_video_logged_to_offline_wandb(
    tiny_synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    torch.manual_seed(0)
    logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="pmfs-test")
    trainer = Trainer(
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        accelerator="cpu",
        logger=logger,
        callbacks=[LandmarkVideoLogger(every_n_epochs=1, max_frames=20, size=SIZE)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(_stage1(), datamodule=_datamodule(tiny_synth_root))
    logger.experiment.finish()

    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    videos = sorted((run_dir / "files" / "media" / "videos").rglob("*.mp4"))
    assert len(videos) == 2  # one per validation epoch
    info = probe_video(videos[-1])
    assert (info.width, info.height) == (2 * SIZE, SIZE)
    assert info.num_frames == 20
    assert info.has_audio
    history = read_history(run_dir)
    # media items are flattened to one nested key per field of the video's JSON
    assert history.get("val/landmark_video/_type") == ["video-file", "video-file"]
    logged = {Path(path).name for path in history.get("val/landmark_video/path", [])}
    assert logged == {video.name for video in videos}
    assert history.get("train/loss") and all(np.isfinite(history["train/loss"]))
    assert len(history.get("val/loss", [])) == 2 and len(history.get("val/m_lmd", [])) == 2
    assert len(history.get("trainer/global_step", [])) >= 2
    assert sorted((tmp_path / "media").glob("landmark_video_epoch*.mp4"))  # trainer.log_dir


def test_without_wandb_writes_mp4_into_log_dir(tiny_synth_root: Path, tmp_path: Path) -> None:
    trainer = Trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        accelerator="cpu",
        logger=CSVLogger(str(tmp_path)),
        callbacks=[LandmarkVideoLogger(max_frames=8, size=SIZE)],
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(_stage1(), datamodule=_datamodule(tiny_synth_root))
    assert trainer.log_dir is not None
    (video,) = (Path(trainer.log_dir) / "media").glob("*.mp4")
    info = probe_video(video)
    assert (info.width, info.height, info.num_frames) == (2 * SIZE, SIZE, 8)
    assert info.has_audio and info.duration == pytest.approx(8 / 25)
    frames = read_video(video).frames.astype(np.int16)  # (8, SIZE, 2·SIZE, 3)
    predicted, true = frames[..., :SIZE, :], frames[..., SIZE:, :]
    assert (predicted < 128).mean() > 0.01 and (true < 128).mean() > 0.01  # strokes drawn
    assert np.abs(predicted - true).mean() > 1.0  # an untrained stage 1 is not the truth


@pytest.mark.parametrize("stage", ["audio_to_mouth", "mouth_to_face"])
def test_predict_clip_landmarks(tiny_synth_root: Path, stage: str) -> None:
    """Whole-clip prediction: shapes, and what each stage keeps from the true landmarks."""
    cache = Cache(tiny_synth_root)
    reader = cache.open(cache.clips()[0].clip)
    count = 37  # longer than one window, not a multiple of it
    windows = torch.from_numpy(mel_windows(reader.mel, reader.num_frames)[:count])
    truth = torch.from_numpy(pixels_to_normalized(reader.landmarks[:count], reader.size)).float()
    refs = truth[[0, 10]]
    model = _stage1() if stage == "audio_to_mouth" else MouthToFace(MouthToFaceNet(dim=32, depth=1))
    model.eval()
    pred = model.predict_clip_landmarks(windows, refs, truth, window=5)
    assert pred.shape == (count, 68, 2) and torch.isfinite(pred).all()
    if stage == "audio_to_mouth":
        others = [i for i in range(68) if i not in set(CONTENT_INDICES)]
        torch.testing.assert_close(pred[:, others], truth[:, others])
        # an untrained stage 1 predicts the mean reference mouth: the same in every frame's pose
        assert not torch.allclose(pred[:, CONTENT_INDICES], truth[:, CONTENT_INDICES])
    with pytest.raises(ValueError, match="odd window"):
        model.predict_clip_landmarks(windows, refs, truth, window=4)


def test_rejects_a_module_without_clip_prediction(tmp_path: Path) -> None:
    from lightning.pytorch.demos.boring_classes import BoringModel

    trainer = Trainer(
        max_epochs=1, logger=False, callbacks=[LandmarkVideoLogger()], default_root_dir=tmp_path
    )
    with pytest.raises(ValueError, match="predict_clip_landmarks"):
        trainer.fit(BoringModel())
