"""`FaceVideoLogger` in real fits (PMFS with an offline `WandbLogger`, FaceRenderer with CSV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from PIL import Image

from callbacks import FaceVideoLogger
from callbacks.face_video import CAPTION, compose_panels
from data_modules.talking_face import TalkingFaceDataModule
from pmfs import PMFS
from pmfs.clip import ClipInputs
from pmfs.data.cache import Cache
from pmfs.data.clips import clip_inputs_from_cache
from pmfs.networks import AudioToMouthNet, FaceRendererNet, MouthToFaceNet
from pmfs.panels import ERROR_SCALE, colormap_table, error_heatmap
from pmfs.stages import AudioToMouth, FaceRenderer, MouthToFace
from pmfs.video import probe_video, read_video

wandb = pytest.importorskip("wandb")
from wandb_reader import history as read_history  # noqa: E402
from wandb_reader import offline_runs  # noqa: E402

SIZE = 32  # image_size of the tiny models (the cache holds 64² crops)
REFS = 2


def _datamodule(root: Path, background: str = "keep") -> TalkingFaceDataModule:
    return TalkingFaceDataModule(
        str(root),
        window=5,
        image_size=SIZE,
        num_references=REFS,
        background=background,  # type: ignore[arg-type]
        batch_size=1,
        num_workers=0,
        samples_per_clip=1,
        val_samples_per_clip=1,
    )


def _renderer(background: str = "keep") -> FaceRenderer:
    return FaceRenderer(
        FaceRendererNet(channels=8, levels=3, max_channels=32),
        perceptual_weights=None,
        background=background,  # type: ignore[arg-type]
    )


def _tiny_pmfs() -> PMFS:
    return PMFS(
        AudioToMouth(AudioToMouthNet(dim=32, depth=1, heads=2)),
        MouthToFace(MouthToFaceNet(dim=32, depth=1, heads=2)),
        _renderer(),
    )


def _trainer(tmp_path: Path, logger: WandbLogger | CSVLogger, callback: FaceVideoLogger) -> Trainer:
    return Trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        accelerator="cpu",
        logger=logger,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=str(tmp_path),
    )


def _clip(root: Path, name: str, frames: int, background: str = "keep") -> ClipInputs:
    reader = Cache(root).open(name)
    try:
        return clip_inputs_from_cache(reader, SIZE, REFS, frames, background)
    finally:
        reader.close()


def _to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float [0, 1] → (N, H, W, 3) uint8, rounded as the callback does."""
    return frames.mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _panel(images: np.ndarray, index: int) -> np.ndarray:
    """Panel `index` (0 sketch, 1 generated, 2 truth, 3 error) of (…, H, 4·H, 3) images."""
    return images[..., index * SIZE : (index + 1) * SIZE, :]


def test_pmfs_video_and_grid_logged_to_offline_wandb(
    tiny_synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    torch.manual_seed(0)
    logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="pmfs-test")
    callback = FaceVideoLogger(max_frames=12, grid_samples=3)
    datamodule = _datamodule(tiny_synth_root)
    trainer = _trainer(tmp_path, logger, callback)
    model = _tiny_pmfs()
    trainer.fit(model, datamodule=datamodule)  # one training batch, one validation epoch
    trainer.validate(model, datamodule=datamodule)  # a second validation epoch, same run
    logger.experiment.finish()
    assert datamodule.val_set is not None
    clip = _clip(tiny_synth_root, datamodule.val_set.clips[0].clip, 12)
    assert datamodule.val_set.clips[0].frames > 12  # max_frames cuts the clip

    (run_dir,) = offline_runs(tmp_path)
    history = read_history(run_dir)
    assert history.get("val/face_video/_type") == ["video-file"] * 2  # one per val epoch
    assert history.get("val/face_grid/_type") == ["image-file"] * 2
    assert history.get("val/face_video/caption") == [CAPTION] * 2
    videos = [run_dir / "files" / path for path in history["val/face_video/path"]]
    grids = [run_dir / "files" / path for path in history["val/face_grid/path"]]
    assert len(set(videos)) == 2 and all(path.is_file() for path in videos + grids)
    assert len(sorted((tmp_path / "media").glob("face_epoch*_video.mp4"))) == 2  # log_dir

    info = probe_video(videos[-1])
    assert (info.width, info.height, info.num_frames) == (4 * SIZE, SIZE, 12)
    assert info.has_audio and info.duration == pytest.approx(12 / 25)
    decoded = read_video(videos[-1]).frames.astype(np.int16)  # (12, SIZE, 4·SIZE, 3)
    truth = _to_uint8(clip.frames).astype(np.int16)
    assert np.abs(_panel(decoded[0], 2) - truth[0]).mean() < 8.0  # H.264 at 32²: ≈ 5
    assert np.abs(_panel(decoded[-1], 2) - truth[-1]).mean() < 8.0

    grid = np.asarray(Image.open(grids[-1]).convert("RGB"))
    assert grid.shape == (3 * SIZE, 4 * SIZE, 3) and grid.std() > 20.0
    rows = grid.reshape(3, SIZE, 4 * SIZE, 3)  # frames 0, 6, 11 of the shown 12
    np.testing.assert_array_equal(_panel(rows, 2), truth[[0, 6, 11]])  # PNG is lossless
    _check_sketch_and_error_panels(rows)


def _check_sketch_and_error_panels(rows: np.ndarray) -> None:
    """Sketches are dark strokes on white; the heatmap is the error of generated vs truth."""
    sketch = _panel(rows, 0)
    assert (sketch > 200).mean() > 0.7 and (sketch < 128).any()
    assert np.array_equal(sketch[..., 0], sketch[..., 2])  # gray
    generated = torch.from_numpy(_panel(rows, 1).copy()).permute(0, 3, 1, 2) / 255.0
    truth = torch.from_numpy(_panel(rows, 2).copy()).permute(0, 3, 1, 2) / 255.0
    expected = error_heatmap(generated, truth).numpy().astype(np.int16)
    # the callback measured the error before rounding to uint8: off by ≤ 2 colormap steps
    assert np.abs(_panel(rows, 3).astype(np.int16) - expected).max() <= 8


def test_face_renderer_draws_the_true_landmarks(tiny_synth_root: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    datamodule = _datamodule(tiny_synth_root, background="remove")
    datamodule.setup("fit")
    assert datamodule.val_set is not None
    name = datamodule.val_set.clips[-1].clip
    renderer = _renderer(background="remove")
    callback = FaceVideoLogger(clip=name, max_frames=6, grid_samples=8, chunk=4)
    trainer = _trainer(tmp_path, CSVLogger(str(tmp_path)), callback)
    trainer.validate(renderer, datamodule=datamodule)  # untrained: the panels are what counts
    assert trainer.log_dir is not None
    media = Path(trainer.log_dir) / "media"
    (video,) = media.glob("face_epoch0000_video.mp4")
    info = probe_video(video)
    assert (info.width, info.height, info.num_frames, info.has_audio) == (4 * SIZE, SIZE, 6, True)

    (grid_path,) = media.glob("face_epoch0000_grid.png")
    rows = np.asarray(Image.open(grid_path)).reshape(6, SIZE, 4 * SIZE, 3)  # 8 > 6 frames
    clip = _clip(tiny_synth_root, name, 6, background="remove")
    np.testing.assert_array_equal(_panel(rows, 2), _to_uint8(clip.frames))
    assert (_panel(rows, 2)[:, 0, 0] == 255).all()  # background removed: white corners
    ink = renderer.sketch(clip.landmarks[:, None], SIZE)[:, 0].amax(dim=1)  # (6, H, W)
    paper = (1.0 - ink).mul(255.0).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(_panel(rows, 0), np.repeat(paper[..., None], 3, axis=-1))


def test_compose_panels_layout_and_error_colours() -> None:
    h, w = 3, 5
    truth = torch.rand(2, 3, h, w) * 0.4 + 0.3  # in [0.3, 0.7]: ± 0.25 stays in [0, 1]
    generated = truth.clone()
    generated[1] = truth[1] + 0.25  # error exactly ERROR_SCALE / 2 in frame 1
    truth[1, :, 0, 0] = torch.tensor([0.0, 1.0, 0.0])
    generated[1, :, 0, 0] = torch.tensor([1.0, 0.0, 1.0])  # error 1 at one pixel
    sketches = torch.zeros(2, 2, h, w)
    sketches[0, 1, 1, 2] = 1.0  # ink in the second sketch channel

    panels = compose_panels(sketches, generated, truth)
    assert panels.shape == (2, h, 4 * w, 3) and panels.dtype == np.uint8
    sketch, gen, true, error = (panels[..., i * w : (i + 1) * w, :] for i in range(4))
    expected_sketch = np.full((2, h, w, 3), 255, np.uint8)
    expected_sketch[0, 1, 2] = 0
    np.testing.assert_array_equal(sketch, expected_sketch)
    np.testing.assert_array_equal(gen, _to_uint8(generated))
    np.testing.assert_array_equal(true, _to_uint8(truth))
    table = colormap_table()
    assert (error[0] == table[0]).all()  # generated = truth → the colormap's zero colour
    np.testing.assert_array_equal(error[1, 0, 0], table[255])  # error ≥ ERROR_SCALE: clipped
    middle = error[1].reshape(-1, 3)[1:]
    assert (np.abs(middle.astype(np.int16) - table[128]) <= 8).all()  # 0.25 / 0.5 of the scale
    assert ERROR_SCALE == 0.5


def test_compose_panels_checks_shapes() -> None:
    with pytest.raises(ValueError, match="sketches"):
        compose_panels(torch.zeros(2, 3, 3), torch.zeros(2, 3, 3, 3), torch.zeros(2, 3, 3, 3))


def test_rejects_models_without_generate_clip(tmp_path: Path) -> None:
    from lightning.pytorch.demos.boring_classes import BoringModel

    trainer = Trainer(
        max_epochs=1, logger=False, callbacks=[FaceVideoLogger()], default_root_dir=tmp_path
    )
    with pytest.raises(ValueError, match="generate_clip"):
        trainer.fit(BoringModel())
    with pytest.raises(ValueError, match="grid_samples"):
        FaceVideoLogger(grid_samples=0)
