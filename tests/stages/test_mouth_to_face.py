"""Stage 2: `MouthToFaceNet`, its analytic baseline and the `MouthToFace` LightningModule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pmfs.batch import Batch
from pmfs.landmarks import CONTENT_INDICES, POSE_INDICES, TEMPLATE, Similarity, to_canonical
from pmfs.networks import AudioToMouthNet, MouthToFaceNet, analytic_face, pose_similarity
from pmfs.stages import AudioToMouth, MouthToFace, canonical_content

# steps called outside a Trainer: their `self.log` calls warn and do nothing
pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log")

B, T, K = 2, 5, 3


def _faces(*lead: int) -> torch.Tensor:
    """(*lead, 68, 2) jittered template faces, shifted and scaled like a crop's."""
    return torch.tensor(TEMPLATE) * 0.7 + 0.05 + 0.02 * torch.randn(*lead, 68, 2)


def _similarity(angle: float, scale: float, shift: tuple[float, float]) -> Similarity:
    c, s = torch.cos(torch.tensor(angle)), torch.sin(torch.tensor(angle))
    rotation = torch.stack([torch.stack([c, -s]), torch.stack([s, c])])
    return Similarity(torch.tensor(scale), rotation, torch.tensor(shift))


def _net() -> MouthToFaceNet:
    net = MouthToFaceNet(dim=32, depth=1, heads=2).eval()
    torch.nn.init.normal_(net.head.weight, std=0.05)  # a non-trivial correction
    return net


def test_pose_similarity_is_the_canonical_frame() -> None:
    faces = _faces(B, T)
    _, sim = to_canonical(faces)
    fitted = pose_similarity(faces[..., POSE_INDICES, :])
    torch.testing.assert_close(fitted.matrix(), sim.matrix())


def test_analytic_face_inverts_the_canonical_frame() -> None:
    faces = _faces(B, T)
    out = analytic_face(canonical_content(faces), faces[..., POSE_INDICES, :])
    torch.testing.assert_close(out, faces, atol=1e-5, rtol=0)


def test_network_starts_analytic_and_keeps_pose() -> None:
    faces, refs = _faces(B, T), _faces(B, K)
    content, pose = canonical_content(faces) + 0.01, faces[..., POSE_INDICES, :]
    torch.testing.assert_close(
        MouthToFaceNet(dim=32, depth=1, heads=2)(content, pose, refs), analytic_face(content, pose)
    )
    out = _net()(content, pose, refs)
    assert out.shape == (B, T, 68, 2)
    torch.testing.assert_close(out[..., POSE_INDICES, :], pose)
    assert not torch.allclose(
        out[..., CONTENT_INDICES, :], analytic_face(content, pose)[..., CONTENT_INDICES, :]
    )


def test_network_follows_the_head() -> None:
    """Moving the target and reference faces moves the output with them (exactly)."""
    net = _net()
    faces, refs = _faces(B, T), _faces(B, K)
    content = canonical_content(faces)
    move = _similarity(0.4, 0.8, (0.1, -0.05))
    out = net(content, faces[..., POSE_INDICES, :], refs)
    moved = net(content, move.apply(faces)[..., POSE_INDICES, :], move.apply(refs))
    torch.testing.assert_close(moved, move.apply(out), atol=1e-5, rtol=0)


def _batch() -> Batch:
    faces = _faces(B, T)
    return {"landmarks": faces, "ref_landmarks": _faces(B, K)}


def test_training_adds_noise_validation_does_not() -> None:
    stage = MouthToFace(MouthToFaceNet(dim=32, depth=1, heads=2), content_noise=0.05)
    batch = _batch()
    assert stage._shared_step(batch, "val")["l1"] < 1e-5  # untrained = analytic, exact on truth
    first, second = (stage._shared_step(batch, "train")["l1"] for _ in range(2))
    assert first > 1e-3 and second > 1e-3 and first != second
    quiet = MouthToFace(MouthToFaceNet(dim=32, depth=1, heads=2), content_noise=0.0)
    assert quiet._shared_step(batch, "train")["l1"] < 1e-5
    with pytest.raises(ValueError, match="content_noise >= 0"):
        MouthToFace(MouthToFaceNet(dim=32, depth=1, heads=2), content_noise=-0.1)


def _stage1() -> AudioToMouth:
    net = AudioToMouthNet(dim=32, depth=1, heads=2, conv_channels=8)
    torch.nn.init.normal_(net.head.weight, std=0.05)
    return AudioToMouth(net)


def _audio_batch() -> Batch:
    batch = _batch()
    batch["mel"] = torch.randn(B, T, 80, 16)
    return batch


def test_content_model_feeds_frozen_predictions() -> None:
    stage1 = _stage1()
    stage = MouthToFace(
        MouthToFaceNet(dim=32, depth=1, heads=2), content_model=stage1, content_noise=0.0
    )
    batch = _audio_batch()
    predicted = stage1(batch["mel"], batch["ref_landmarks"])
    torch.testing.assert_close(stage.content_input(batch, "val"), predicted)
    torch.testing.assert_close(stage.content_input(batch, "train"), predicted)
    stage.train()
    assert not stage1.training and not any(p.requires_grad for p in stage1.parameters())
    optimized = {
        id(p) for group in stage.configure_optimizers().param_groups for p in group["params"]
    }
    assert optimized == {id(p) for p in stage.network.parameters()}
    truth = MouthToFace(
        MouthToFaceNet(dim=32, depth=1, heads=2),
        content_model=_stage1(),
        content_noise=0.0,
        predicted_content=0.0,
    )
    torch.testing.assert_close(
        truth.content_input(batch, "train"), canonical_content(batch["landmarks"])
    )


def test_content_checkpoint_loads_weights(tmp_path: Path) -> None:
    trained = _stage1()
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": trained.state_dict()}, path)
    fresh = AudioToMouth(AudioToMouthNet(dim=32, depth=1, heads=2, conv_channels=8))
    MouthToFace(
        MouthToFaceNet(dim=32, depth=1, heads=2), content_model=fresh, content_checkpoint=str(path)
    )
    torch.testing.assert_close(fresh.network.head.weight, trained.network.head.weight)
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt"):
        MouthToFace(
            MouthToFaceNet(), content_model=fresh, content_checkpoint=str(tmp_path / "missing.ckpt")
        )
    with pytest.raises(ValueError, match="content_model is None"):
        MouthToFace(MouthToFaceNet(), content_checkpoint=str(path))


def test_validation_metrics_match_an_independent_computation() -> None:
    stage = MouthToFace(_net_untrained())
    batch = _batch()
    noisy = batch["landmarks"] + 0.01 * torch.randn_like(batch["landmarks"])
    stage.val_metrics.update(noisy, batch["landmarks"])
    values = stage.val_metrics.compute()
    distance = (noisy - batch["landmarks"]).norm(dim=-1) * 128.0  # pixels of the 256 crop
    torch.testing.assert_close(values["val/f_lmd"], distance.mean())
    torch.testing.assert_close(values["val/m_lmd"], distance[..., 48:68].mean())


def _net_untrained() -> MouthToFaceNet:
    return MouthToFaceNet(dim=32, depth=1, heads=2)
