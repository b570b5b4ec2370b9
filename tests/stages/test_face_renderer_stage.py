"""`FaceRenderer`: components built only when used, losses, compositing, manual GAN optimization."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer

from data_modules import TalkingFaceDataModule
from pmfs.batch import Batch
from pmfs.cli import main
from pmfs.commands.lightning import check_model_meets_data
from pmfs.data.cache import Cache
from pmfs.data.clips import clip_inputs_from_cache
from pmfs.landmarks import TEMPLATE
from pmfs.masks import face_hull_mask
from pmfs.networks import FaceRendererNet
from pmfs.stages import FaceRenderer, RendererLossWeights
from pmfs.stages.common import NonFiniteLossError
from pmfs.stages.manual_step import clip_gradients

SIZE = 32
EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _renderer(warping: bool = True, **kwargs: object) -> FaceRenderer:
    torch.manual_seed(0)
    net = FaceRendererNet(channels=4, levels=2, max_channels=8, res_blocks=1, warping=warping)
    kwargs.setdefault("perceptual_weights", None)
    return FaceRenderer(net, **kwargs)  # type: ignore[arg-type]


def _batch(batch: int = 2, k: int = 2, t: int = 5) -> Batch:
    generator = torch.Generator().manual_seed(1)
    face = torch.from_numpy(TEMPLATE.copy()) * 0.8
    landmarks = face.expand(batch, t, 68, 2).clone()
    landmarks[..., 1] += 0.02 * torch.randn(batch, t, 1, generator=generator)
    return {
        "landmarks": landmarks,
        "target": torch.rand(batch, 3, SIZE, SIZE, generator=generator),
        "fg_mask": torch.ones(batch, 1, SIZE, SIZE),
        "ref_frames": torch.rand(batch, k, 3, SIZE, SIZE, generator=generator),
        "ref_landmarks": face.expand(batch, k, 68, 2).clone(),
        "mel": torch.zeros(batch, t, 80, 16),
        "speaker": ["S01"] * batch,
        "clip": [f"S01_angry_1_00{i}" for i in range(batch)],
        "frame_index": torch.arange(batch) + 7,
    }


def test_switched_off_components_are_not_built() -> None:
    full = _renderer(perceptual_weights=None)
    assert full.discriminator is not None and full.perceptual is not None
    bare = _renderer(
        warping=False,
        loss_weights=RendererLossWeights(perceptual=0, adversarial=0, feature_matching=0),
    )
    assert bare.discriminator is None and bare.perceptual is None
    assert not any("flow" in name for name, _ in bare.network.named_parameters())
    assert len(bare.configure_optimizers()) == 1 and len(full.configure_optimizers()) == 2


def test_zero_weights_skip_their_terms() -> None:
    batch = _batch()
    weights = RendererLossWeights(mouth=0, perceptual=0, adversarial=0, feature_matching=0, warp=0)
    renderer = _renderer(loss_weights=weights)
    losses = renderer.generator_losses(renderer._render_batch(batch), batch)
    assert set(losses) == {"loss", "l1"}
    torch.testing.assert_close(losses["loss"], losses["l1"])
    full = _renderer()
    terms = full.generator_losses(full._render_batch(batch), batch)
    assert {"l1", "mouth", "perceptual", "adversarial", "feature_matching", "warp"} <= set(terms)
    no_warp = _renderer(warping=False)
    assert "warp" not in no_warp.generator_losses(no_warp._render_batch(batch), batch)


def test_keep_composites_into_the_target_and_remove_does_not() -> None:
    batch = _batch()
    keep = _renderer(background="keep")
    out = keep._render_batch(batch)
    centre = batch["landmarks"][:, 2]
    outside = torch.maximum(face_hull_mask(centre, SIZE, feather=2.0), out.hidden) == 0
    outside = outside.expand_as(out.image)
    assert outside.any()
    torch.testing.assert_close(out.image[outside], batch["target"][outside])
    assert not torch.allclose(out.image, out.generated)
    remove = _renderer(background="remove")
    out = remove._render_batch(batch)
    torch.testing.assert_close(out.image, out.generated)
    # the hidden part of the target is filled, never shown to the generator
    assert out.hidden.sum() > 0


def test_generator_gan_terms_leave_the_discriminator_without_gradient() -> None:
    batch = _batch()
    renderer = _renderer()
    out = renderer._render_batch(batch)
    renderer.generator_losses(out, batch)["loss"].backward()
    assert renderer.discriminator is not None
    assert all(p.grad is None for p in renderer.discriminator.parameters())
    assert all(p.requires_grad for p in renderer.discriminator.parameters())  # restored
    d_loss = renderer.discriminator_losses(out, batch)["d_loss"]
    network_grads = [p.grad.clone() for p in renderer.network.parameters() if p.grad is not None]
    d_loss.backward()
    assert all(p.grad is not None for p in renderer.discriminator.parameters())
    after = [p.grad for p in renderer.network.parameters() if p.grad is not None]
    for before, now in zip(network_grads, after, strict=True):
        torch.testing.assert_close(before, now)  # the critic's loss does not reach the generator


MOUTH_GAN = RendererLossWeights(mouth_adversarial=0.1, mouth_feature_matching=1.0)


def test_the_mouth_critic_is_built_with_its_terms_and_trained_with_the_other() -> None:
    """The mouth's GAN terms build a second critic: the generator's terms leave it without
    gradient, the critics' loss (their sum) trains it, and the one critic optimizer holds both."""
    assert _renderer().mouth_discriminator is None  # off unless its terms are on
    batch = _batch()
    renderer = _renderer(loss_weights=MOUTH_GAN)
    assert renderer.discriminator is not None and renderer.mouth_discriminator is not None
    mouth_critic = list(renderer.mouth_discriminator.parameters())
    _, critic_optimizer = renderer.configure_optimizers()
    held = {id(p) for group in critic_optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in renderer.discriminator.parameters()} | {
        id(p) for p in mouth_critic
    } == held
    out = renderer._render_batch(batch)
    terms = renderer.generator_losses(out, batch)
    assert {"mouth_adversarial", "mouth_feature_matching"} <= set(terms)
    terms["loss"].backward()
    assert all(p.grad is None for p in mouth_critic)
    d = renderer.discriminator_losses(out, batch)
    main = d["d_loss"] - d["d_mouth"]
    assert d["d_mouth"] > 0 and main > 0  # both critics' hinge losses are in the sum
    d["d_loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mouth_critic if p.ndim > 1)


def test_each_critic_s_gradient_is_clipped_on_its_own() -> None:
    """Under one optimizer, a critic with a large gradient does not shrink the other's."""
    big, small = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    for layer, scale in ((big, 100.0), (small, 0.01)):
        for p in layer.parameters():
            p.grad = torch.full_like(p, scale)
    clip_gradients(torch.nn.ModuleList([big, small]), 1.0)
    norm = torch.nn.utils.get_total_norm
    assert norm([p.grad for p in big.parameters()]) == pytest.approx(1.0, rel=1e-4)
    assert all(torch.equal(p.grad, torch.full_like(p, 0.01)) for p in small.parameters())


def test_non_finite_loss_names_the_samples() -> None:
    batch = _batch()
    batch["target"][0, 0, 0, 0] = float("nan")
    renderer = _renderer()
    trainer = Trainer(accelerator="cpu", max_steps=1, logger=False, enable_checkpointing=False)
    renderer.trainer = trainer  # type: ignore[assignment]
    with pytest.raises(NonFiniteLossError, match=r"S01/S01_angry_1_000@7, S01/S01_angry_1_001@8"):
        renderer.training_step(batch, 0)


def test_background_must_match_the_datamodule(
    tiny_synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pmfs fit` checks it where model and data meet, before any batch is read."""
    dm = TalkingFaceDataModule(
        str(tiny_synth_root), image_size=SIZE, batch_size=2, num_workers=0, background="remove"
    )
    check_model_meets_data(_renderer(background="remove"), dm)
    monkeypatch.setattr(sys, "argv", ["pmfs"])  # LightningCLI must not see pytest's arguments
    args = [
        "fit",
        *("-c", str(EXPERIMENTS / "stages" / "face_renderer.yaml")),
        *("-c", str(EXPERIMENTS / "stages" / "synthetic.yaml")),
        f"--data.init_args.root={tiny_synth_root}",
        f"--data.init_args.image_size={SIZE}",
        "--data.init_args.background=remove",
        "--model.init_args.network.init_args.channels=4",
        "--model.init_args.network.init_args.max_channels=8",
        "--model.init_args.loss_weights.perceptual=0",
        "--model.init_args.background=keep",
        "--trainer.logger=false",
        "--trainer.fast_dev_run=true",
        "--trainer.accelerator=cpu",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    with pytest.raises(ValueError, match="background='keep' but the DataModule"):
        main(args)


def test_fit_updates_generator_and_discriminator(tiny_synth_root: Path, tmp_path: Path) -> None:
    dm = TalkingFaceDataModule(
        str(tiny_synth_root), image_size=SIZE, batch_size=2, num_workers=0, samples_per_clip=2
    )
    renderer = _renderer(loss_weights=MOUTH_GAN)
    assert renderer.critics is not None
    before_g = [p.detach().clone() for p in renderer.network.parameters()]
    # the logits' biases get no hinge gradient while real and fake logits are both inside ±1
    weights_d = [p for n, p in renderer.critics.named_parameters() if "weight" in n]
    before_d = [p.detach().clone() for p in weights_d]
    trainer = Trainer(
        accelerator="cpu",
        max_steps=4,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
    )
    trainer.fit(renderer, dm)
    assert trainer.global_step == 4  # two optimizer steps per batch
    changed_g = [
        not torch.equal(a, b) for a, b in zip(before_g, renderer.network.parameters(), strict=True)
    ]
    changed_d = [not torch.equal(a, b) for a, b in zip(before_d, weights_d, strict=True)]
    assert all(changed_g) and all(changed_d)
    metrics = trainer.callback_metrics
    logged = (
        "train/loss",
        "train/d_loss",
        "train/d_mouth",
        "val/psnr",
        "val/mouth_psnr",
        "val/ssim",
    )
    for key in logged:
        assert torch.isfinite(metrics[key]), key


def test_generate_clip_renders_every_frame(tiny_synth_root: Path) -> None:
    cache = Cache(tiny_synth_root)
    clip = clip_inputs_from_cache(cache.open(cache.clips()[0].clip), SIZE, max_frames=9)
    renderer = _renderer().eval()
    out = renderer.generate_clip(clip, chunk=4)
    assert out.frames.shape == (9, 3, SIZE, SIZE) and out.sketches.shape == (9, 1, SIZE, SIZE)
    assert float(out.frames.min()) >= 0 and float(out.frames.max()) <= 1
    # chunking does not change the result
    torch.testing.assert_close(renderer.generate_clip(clip, chunk=9).frames, out.frames)


def test_a_working_size_renders_any_clip_size_with_the_same_weights(tiny_synth_root: Path) -> None:
    """Issue 15: sketches and masks are made at the network's working size (16² here), the
    frames, the paste and the losses at the output size; one renderer trains at 32² and renders
    clips at 32² and 64²."""
    torch.manual_seed(0)
    net = FaceRendererNet(channels=4, levels=2, max_channels=8, res_blocks=1, working_size=16)
    renderer = FaceRenderer(net, perceptual_weights=None)
    batch = _batch()
    out = renderer._render_batch(batch)
    assert out.sketches.shape[-1] == 16 and out.centre_sketch().shape == (2, 1, SIZE, SIZE)
    assert out.image.shape == (2, 3, SIZE, SIZE) and out.hidden.shape == (2, 1, SIZE, SIZE)
    losses = renderer.generator_losses(out, batch) | renderer.discriminator_losses(out, batch)
    assert {"warp", "adversarial", "d_loss"} <= set(losses)
    losses["loss"].backward()
    assert all(p.grad is not None for p in renderer.network.parameters() if p.requires_grad)
    cache = Cache(tiny_synth_root)
    for size in (SIZE, 2 * SIZE):
        clip = clip_inputs_from_cache(cache.open(cache.clips()[0].clip), size, max_frames=4)
        frames = renderer.eval().generate_clip(clip, chunk=4)
        assert frames.frames.shape == (4, 3, size, size)
        assert frames.sketches.shape == (4, 1, size, size)
