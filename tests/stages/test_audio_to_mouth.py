"""Stage 1: `AudioToMouthNet` and the `AudioToMouth` LightningModule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer

from data_modules.talking_face import TalkingFaceDataModule
from pmfs.batch import Batch
from pmfs.landmarks import CONTENT_INDICES, TEMPLATE, Similarity
from pmfs.networks import AudioToMouthNet
from pmfs.stages import AudioToMouth, canonical_content, place_content

# steps called outside a Trainer: their `self.log` calls warn and do nothing
pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log")

B, T, K = 3, 5, 2


def _small_net(**kwargs: object) -> AudioToMouthNet:
    return AudioToMouthNet(dim=32, depth=1, heads=2, conv_channels=8, **kwargs)  # type: ignore[arg-type]


def _faces(*lead: int) -> torch.Tensor:
    """(*lead, 68, 2) jittered template faces."""
    return torch.tensor(TEMPLATE) * 0.7 + 0.02 * torch.randn(*lead, 68, 2)


def _batch(root: Path) -> Batch:
    dm = TalkingFaceDataModule(
        str(root), window=T, num_references=K, landmarks_only=True, batch_size=8, num_workers=0
    )
    dm.setup("fit")
    batch: Batch = next(iter(dm.train_dataloader()))
    return batch


def test_network_shapes_and_start_at_mean_reference() -> None:
    net = _small_net()
    refs = torch.randn(B, K, len(CONTENT_INDICES), 2)
    out = net(torch.randn(B, T, 80, 16), refs)
    assert out.shape == (B, T, 31, 2)
    # the head starts at zero: an untrained network outputs the speaker's mean reference mouth
    torch.testing.assert_close(out, refs.mean(dim=1, keepdim=True).expand_as(out))


def test_network_uses_audio_and_emotion() -> None:
    torch.manual_seed(0)
    net = _small_net(use_emotion=True, dropout=0.0).eval()
    torch.nn.init.normal_(net.head.weight, std=0.1)
    mel, refs = torch.randn(B, T, 80, 16), torch.randn(B, K, 31, 2)
    labels = torch.zeros(B, dtype=torch.int64), torch.zeros(B, dtype=torch.int64)
    base = net(mel, refs, *labels)
    assert not torch.allclose(base, net(mel + 1.0, refs, *labels))
    assert not torch.allclose(base, net(mel, refs, labels[0] + 4, labels[1] + 2))
    with pytest.raises(ValueError, match="emotion and level"):
        net(mel, refs)


def test_network_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="80, 16"):
        _small_net()(torch.randn(B, T, 80, 8), torch.randn(B, K, 31, 2))
    with pytest.raises(ValueError, match="multiple of heads"):
        AudioToMouthNet(dim=30, heads=4)


def test_canonical_content_ignores_head_pose() -> None:
    faces = _faces(B, T)
    angle = torch.tensor(0.3)
    rotation = torch.stack(
        [torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])]
    )
    moved = Similarity(torch.tensor(1.3), rotation, torch.tensor([0.1, -0.2])).apply(faces)
    torch.testing.assert_close(
        canonical_content(moved), canonical_content(faces), atol=1e-5, rtol=0
    )


def test_stage_overfits_a_real_batch(tiny_synth_root: Path) -> None:
    torch.manual_seed(0)
    batch = _batch(tiny_synth_root)
    stage = AudioToMouth(_small_net(dropout=0.0), optimizer=lambda p: torch.optim.Adam(p, lr=3e-3))
    optimizer = stage.configure_optimizers()
    first = last = math.inf
    for step in range(150):
        optimizer.zero_grad()
        loss = stage.training_step(batch, step)
        loss.backward()
        optimizer.step()
        first, last = (loss.item() if step == 0 else first), loss.item()
    assert last < 0.5 * first, (first, last)
    pred = stage(batch["mel"], batch["ref_landmarks"])
    assert pred.shape == (8, T, 31, 2)


def test_place_content_round_trip() -> None:
    faces = _faces(B, T)
    torch.testing.assert_close(
        place_content(canonical_content(faces), faces), faces, atol=1e-5, rtol=0
    )


def test_validation_logs_losses_and_metrics(tiny_synth_root: Path) -> None:
    dm = TalkingFaceDataModule(
        str(tiny_synth_root),
        window=T,
        num_references=K,
        landmarks_only=True,
        batch_size=8,
        num_workers=0,
    )
    trainer = Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    stage = AudioToMouth(_small_net())
    (result,) = trainer.validate(stage, datamodule=dm, verbose=False)
    assert {"val/loss", "val/l1", "val/velocity", "val/m_lmd", "val/v_lmd"} <= set(result)
    # untrained = the speaker's mean reference mouth: a few pixels off, never zero
    assert 0.1 < result["val/m_lmd"] < 20.0
