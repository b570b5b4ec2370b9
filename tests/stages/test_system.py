"""`PMFS`: the curriculum, one backward per batch with each stage's own gradient, frozen stages,
stage checkpoints, and whole-clip generation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer

from data_modules import TalkingFaceDataModule
from pmfs.batch import Batch
from pmfs.data.cache import Cache
from pmfs.data.clips import clip_inputs_from_cache
from pmfs.landmarks import TEMPLATE
from pmfs.losses.landmarks import landmark_losses
from pmfs.networks import AudioToMouthNet, FaceRendererNet, MouthToFaceNet
from pmfs.stages import (
    PMFS,
    AudioToMouth,
    Curriculum,
    FaceRenderer,
    MouthToFace,
    Ramp,
    StageCheckpoints,
)
from pmfs.stages.common import NonFiniteLossError

SIZE = 32


def _system(curriculum: Curriculum | None = None, **kwargs: object) -> PMFS:
    torch.manual_seed(0)
    return PMFS(
        AudioToMouth(AudioToMouthNet(dim=16, depth=1, heads=2, conv_channels=4)),
        MouthToFace(MouthToFaceNet(dim=16, depth=1, heads=2)),
        FaceRenderer(
            FaceRendererNet(channels=4, levels=2, max_channels=8, res_blocks=1),
            perceptual_weights=None,
        ),
        curriculum=curriculum,
        **kwargs,  # type: ignore[arg-type]
    )


def _batch(batch: int = 2, k: int = 2, t: int = 5) -> Batch:
    generator = torch.Generator().manual_seed(1)
    face = torch.from_numpy(TEMPLATE.copy()) * 0.8
    landmarks = face.expand(batch, t, 68, 2).clone()
    landmarks[..., 48:68, 1] += 0.03 * torch.rand(batch, t, 1, generator=generator)
    return {
        "mel": torch.randn(batch, t, 80, 16, generator=generator),
        "landmarks": landmarks,
        "target": torch.rand(batch, 3, SIZE, SIZE, generator=generator),
        "fg_mask": torch.ones(batch, 1, SIZE, SIZE),
        "ref_frames": torch.rand(batch, k, 3, SIZE, SIZE, generator=generator),
        "ref_landmarks": face.expand(batch, k, 68, 2).clone(),
        "emotion": torch.zeros(batch, dtype=torch.int64),
        "level": torch.zeros(batch, dtype=torch.int64),
        "speaker": ["S01"] * batch,
        "clip": [f"S01_happy_2_00{i}" for i in range(batch)],
        "frame_index": torch.arange(batch) + 3,
    }


def test_ramp_schedule() -> None:
    ramp = Ramp(start=10, end=30, final=0.5)
    assert [ramp.at(s) for s in (0, 9, 10, 20, 30, 99)] == [0.0, 0.0, 0.0, 0.25, 0.5, 0.5]
    assert Ramp(start=5, end=5, final=1.0).at(5) == 1.0
    with pytest.raises(ValueError, match="start <= end"):
        Ramp(start=3, end=1)
    with pytest.raises(ValueError, match="final in"):
        Ramp(final=1.5)
    system = _system(Curriculum(Ramp(0, 10, 1.0), Ramp(10, 20, 0.5), joint_start=15))
    assert system.schedule(5) == {"mouth_to_face": 0.5, "renderer": 0.0, "joint": 0.0}
    assert system.schedule(15) == {"mouth_to_face": 1.0, "renderer": 0.25, "joint": 1.0}


def test_mix_is_per_sample() -> None:
    truth, prediction = torch.zeros(64, 5, 3), torch.ones(64, 5, 3)
    assert torch.equal(PMFS._mix(truth, prediction, 0.0), truth)
    assert torch.equal(PMFS._mix(truth, prediction, 1.0), prediction)
    torch.manual_seed(0)
    mixed = PMFS._mix(truth, prediction, 0.5)
    per_sample = mixed.flatten(1)
    assert torch.all((per_sample == 0).all(1) | (per_sample == 1).all(1))  # whole samples
    assert 10 < int(per_sample[:, 0].sum()) < 54


def _stage2_grads(system: PMFS, batch: Batch, only_l2: bool) -> list[torch.Tensor]:
    system.zero_grad(set_to_none=True)
    torch.manual_seed(3)
    losses, total = system._losses(batch, step=100)
    (losses["mouth_to_face/loss"] if only_l2 else total).backward()
    return [p.grad.clone() for p in system.mouth_to_face.network.parameters()]  # type: ignore[union-attr]


def test_each_stage_gets_its_own_gradient_unless_joint() -> None:
    batch = _batch()
    detached = _system(Curriculum(Ramp(0, 0, 1.0), Ramp(0, 0, 1.0), joint_start=None))
    for alone, together in zip(
        _stage2_grads(detached, batch, only_l2=True),
        _stage2_grads(detached, batch, only_l2=False),
        strict=True,
    ):
        torch.testing.assert_close(alone, together)
    joint = _system(Curriculum(Ramp(0, 0, 1.0), Ramp(0, 0, 1.0), joint_start=0, joint_weight=1.0))
    differences = [
        float((a - b).abs().max())
        for a, b in zip(
            _stage2_grads(joint, batch, only_l2=True),
            _stage2_grads(joint, batch, only_l2=False),
            strict=True,
        )
    ]
    assert max(differences) > 0  # the image loss reaches stage 2 through the sketches


def test_stage2_sees_stage1_predictions_on_schedule() -> None:
    batch = _batch()
    system = _system(Curriculum(Ramp(0, 0, 1.0), Ramp(0, 0, 0.0)))
    system.mouth_to_face.content_noise = 0.0
    seen: list[torch.Tensor] = []
    handle = system.mouth_to_face.network.register_forward_pre_hook(
        lambda _module, args: seen.append(args[0].detach())
    )
    system._losses(batch, step=0)
    handle.remove()
    torch.testing.assert_close(seen[0], system._content(batch).detach())


def test_frozen_stages_are_not_trained(tiny_synth_root: Path, tmp_path: Path) -> None:
    system = _system(freeze=["audio_to_mouth"])
    assert len(system.configure_optimizers()) == 3  # stage 2, generator, discriminator
    before = [p.detach().clone() for p in system.audio_to_mouth.parameters()]
    before_g = [p.detach().clone() for p in system.renderer.network.parameters()]
    dm = TalkingFaceDataModule(
        str(tiny_synth_root), image_size=SIZE, batch_size=2, num_workers=0, samples_per_clip=4
    )
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
    )
    trainer.fit(system, dm)
    assert int(system.batches_seen) == 2 and trainer.global_step == 6
    assert not system.audio_to_mouth.training
    for a, b in zip(before, system.audio_to_mouth.parameters(), strict=True):
        assert torch.equal(a, b)
    assert all(
        not torch.equal(a, b)
        for a, b in zip(before_g, system.renderer.network.parameters(), strict=True)
    )
    metrics = trainer.callback_metrics
    assert "train/audio_to_mouth/loss" not in metrics
    for key in (
        "train/mouth_to_face/loss",
        "train/renderer/d_loss",
        "train/schedule/renderer",
        "val/f_lmd",
        "val/mouth_psnr",
        "val/from_landmarks/mouth_psnr",
        "val/audio_to_mouth/m_lmd",
    ):
        assert torch.isfinite(metrics[key]), key


def test_invalid_configurations_fail_clearly() -> None:
    with pytest.raises(ValueError, match="unknown stages"):
        _system(freeze=["stage4"])
    with pytest.raises(ValueError, match="content_model must be None"):
        PMFS(
            AudioToMouth(AudioToMouthNet(dim=16, depth=1, heads=2)),
            MouthToFace(
                MouthToFaceNet(dim=16, depth=1, heads=2),
                content_model=AudioToMouth(AudioToMouthNet(dim=16, depth=1, heads=2)),
            ),
            FaceRenderer(FaceRendererNet(channels=4, levels=2), perceptual_weights=None),
        )
    with pytest.raises(FileNotFoundError, match="stage checkpoint"):
        _system(checkpoints=StageCheckpoints(renderer="/no/such.ckpt"))


def test_non_finite_loss_names_the_samples() -> None:
    system = _system()
    batch = _batch()
    batch["mel"][1] = float("nan")
    system.trainer = Trainer(accelerator="cpu", logger=False)  # type: ignore[assignment]
    with pytest.raises(NonFiniteLossError, match=r"S01/S01_happy_2_001@4"):
        system.training_step(batch, 0)


def test_stage_checkpoints_are_loaded(tmp_path: Path) -> None:
    torch.manual_seed(5)
    renderer = FaceRenderer(
        FaceRendererNet(channels=4, levels=2, max_channels=8, res_blocks=1),
        perceptual_weights=None,
    )
    path = tmp_path / "renderer.ckpt"
    torch.save({"state_dict": renderer.state_dict()}, path)
    system = _system(checkpoints=StageCheckpoints(renderer=str(path)))
    for key, value in renderer.state_dict().items():
        torch.testing.assert_close(system.renderer.state_dict()[key], value)


def test_a_system_checkpoint_starts_every_stage(tmp_path: Path) -> None:
    """`checkpoints.system` (fine-tuning, personal.yaml): weights, not the training state."""
    torch.manual_seed(7)
    trained = _system()
    trained.batches_seen.fill_(1234)
    path = tmp_path / "pmfs.ckpt"
    torch.save({"state_dict": trained.state_dict()}, path)
    torch.manual_seed(8)
    system = _system(checkpoints=StageCheckpoints(system=str(path)))
    for key, value in trained.state_dict().items():
        if key != "batches_seen":
            torch.testing.assert_close(system.state_dict()[key], value, rtol=0, atol=0)
    assert int(system.batches_seen) == 0  # the curriculum starts afresh
    stage1_only = {k: v for k, v in trained.state_dict().items() if k.startswith("audio_to_")}
    torch.save({"state_dict": stage1_only}, path)
    with pytest.raises(ValueError, match="has no mouth_to_face weights"):
        _system(checkpoints=StageCheckpoints(system=str(path)))


def test_whole_clip_generation(tiny_synth_root: Path) -> None:
    cache = Cache(tiny_synth_root)
    clip = clip_inputs_from_cache(cache.open(cache.clips()[0].clip), SIZE, max_frames=7)
    system = _system().eval()
    chain = system.generate_clip(clip, chunk=3)
    truth = system.generate_clip(clip, from_audio=False)
    assert chain.frames.shape == truth.frames.shape == (7, 3, SIZE, SIZE)
    torch.testing.assert_close(truth.landmarks, clip.landmarks)
    assert not torch.allclose(chain.landmarks, clip.landmarks)
    # the chain's landmarks are stage 2's predictions from stage 1's content of each window
    batch = _batch()
    out = system(batch)
    assert out["image"].shape == (2, 3, SIZE, SIZE) and out["landmarks"].shape == (2, 5, 68, 2)
    l2 = landmark_losses(out["landmarks"], batch["landmarks"], system.mouth_to_face.loss_weights)
    assert torch.isfinite(l2["loss"])
