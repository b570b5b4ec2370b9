"""Stage 3, `FaceRenderer`: sketches of the window + the target with its lower face hidden + K
references → the RGB frame (DESIGN §1).

The sketches are drawn on the device by the differentiable renderer of `pmfs.sketch`, so the
image loss can reach the landmarks (the system's joint fine-tuning). The components the ablations
switch are typed arguments: `network.warping`, `target_mask`, `background` (which must match the
DataModule's), the loss weights (0 = not computed) — and what is switched off is not built: no
discriminator without a GAN term, no VGG without the perceptual term, no flow without warping.

Training is a GAN with manual optimization (generator, then the multi-scale patch discriminator
on the detached output, and with the mouth's GAN terms a second one on the mouth box);
`generator_losses` / `discriminator_losses` are also what the `PMFS` system calls when it trains
this stage inside the whole chain.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn
from torch.optim import Optimizer

from pmfs.batch import Background, Batch, Split
from pmfs.clip import ClipInputs, ClipOutput
from pmfs.landmarks import mouth_box, mouth_box_mask
from pmfs.losses.gan import discriminator_hinge_loss, feature_matching_loss, generator_hinge_loss
from pmfs.losses.image import masked_l1, warp_loss
from pmfs.losses.perceptual import PerceptualLoss
from pmfs.masks import TargetMask, face_hull_mask, target_mask
from pmfs.metrics.image import image_metrics
from pmfs.networks.discriminator import MouthDiscriminator, MultiScalePatchDiscriminator
from pmfs.networks.face_renderer import FaceRendererNet, ReferenceFeatures
from pmfs.networks.renderer_blocks import resize
from pmfs.sketch import render_sketch
from pmfs.stages.common import NonFinite, check_finite, clip_window_index, save_config
from pmfs.stages.manual_step import frozen, manual_step
from pmfs.stages.renderer_types import DiscriminatorConfig, RendererLossWeights, RendererOutput


def _centre_landmarks(batch: Batch) -> Tensor:
    """(B, 68, 2) the window's centre frame's landmarks (the frame rendered), detached."""
    return batch["landmarks"][:, batch["landmarks"].shape[1] // 2].detach()


class FaceRenderer(LightningModule):
    """Train a `FaceRendererNet` on image batches (`landmarks_only: false`).

    Args:
        network: the generator (`class_path` in YAML); its `warping` is the warping ablation.
        optimizer: builds the generator's optimizer, e.g. `torch.optim.Adam`.
        discriminator_optimizer: builds the discriminator's optimizer.
        discriminator: size of the discriminator; None → `DiscriminatorConfig()` when a GAN
            term is on (never built otherwise).
        mouth_discriminator: size of the mouth's discriminator; None → 32 channels, 3 layers,
            one scale, when a mouth GAN term is on (never built otherwise).
        loss_weights: term weights; None → `RendererLossWeights()`.
        perceptual_weights: VGG19 ImageNet weights: "imagenet" (the torch hub cache,
            `$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`), a file path, or None (random
            features; tests only).
        target_mask: which part of the target the generator does not see.
        mask_margin: growth of that region (share of its size), so the true mouth never shows.
        background: "keep" (the output is composited into the real frame with a feathered face
            mask) or "remove" (frames are foreground-masked on white by the DataModule, which
            must be configured the same way).
        composite_feather: soft edge of the compositing mask, pixels at 256² (scaled to H).
        sketch_width: line width of the sketches, pixels at 256² (scaled to H).
        gradient_clip: clip the generator's and discriminator's gradient norms (manual
            optimization cannot use the Trainer's `gradient_clip_val`); None = off.
        nonfinite: "raise" stops on a non-finite loss naming the batch's samples; "skip" skips
            the batch's updates with a warning.
    """

    def __init__(
        self,
        network: FaceRendererNet,
        optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator_optimizer: OptimizerCallable = torch.optim.Adam,
        discriminator: DiscriminatorConfig | None = None,
        mouth_discriminator: DiscriminatorConfig | None = None,
        loss_weights: RendererLossWeights | None = None,
        perceptual_weights: str | None = "imagenet",
        target_mask: TargetMask = "lower_half",
        mask_margin: float = 0.1,
        background: Background = "keep",
        composite_feather: float = 8.0,
        sketch_width: float = 2.0,
        gradient_clip: float | None = 1.0,
        nonfinite: NonFinite = "raise",
    ) -> None:
        super().__init__()
        save_config(self, ["network", "optimizer", "discriminator_optimizer"])
        self.automatic_optimization = False
        self.network = network
        self.optimizer = optimizer
        self.discriminator_optimizer = discriminator_optimizer
        self.loss_weights = loss_weights or RendererLossWeights()
        self.target_mask = target_mask
        self.mask_margin = mask_margin
        self.background = background
        self.composite_feather = composite_feather
        self.sketch_width = sketch_width
        self.gradient_clip = gradient_clip
        self.nonfinite: NonFinite = nonfinite
        self.discriminator: MultiScalePatchDiscriminator | None = None
        if self.loss_weights.gan:
            config = discriminator or DiscriminatorConfig()
            self.discriminator = MultiScalePatchDiscriminator(
                in_channels=3 + network.sketch_channels,
                channels=config.channels,
                layers=config.layers,
                scales=config.scales,
            )
        self.mouth_discriminator: MouthDiscriminator | None = None
        if self.loss_weights.mouth_gan:
            config = mouth_discriminator or DiscriminatorConfig(channels=32, layers=3, scales=1)
            self.mouth_discriminator = MouthDiscriminator(
                channels=config.channels, layers=config.layers, scales=config.scales
            )
        self.perceptual: PerceptualLoss | None = None
        if self.loss_weights.perceptual > 0:
            self.perceptual = PerceptualLoss(weights=perceptual_weights)
        self.val_metrics = image_metrics("val/")
        self.test_metrics = image_metrics("test/")

    # -- rendering ------------------------------------------------------------------------------

    def _pixels(self, at_256: float, size: int) -> float:
        """A length given in pixels of a 256² frame, at image size `size`."""
        return at_256 * size / 256

    def sketch(self, landmarks: Tensor, size: int) -> Tensor:
        """(B, N, 68, 2) normalized landmarks → (B, N, S, h, h) sketches for `size`² frames,
        drawn at the network's input size h (`FaceRendererNet.input_size`)."""
        size = self.network.input_size(size)
        return render_sketch(landmarks, size, line_width=self._pixels(self.sketch_width, size))

    def encode_references(self, ref_frames: Tensor, ref_landmarks: Tensor) -> ReferenceFeatures:
        """(B, K, 3, H, W) references + (B, K, 68, 2) landmarks → features (once per clip)."""
        sketches = self.sketch(ref_landmarks, ref_frames.shape[-1])
        return self.network.encode_references(ref_frames, sketches, ref_landmarks)

    def render(self, landmarks: Tensor, target: Tensor, refs: ReferenceFeatures) -> RendererOutput:
        """Make the centre frame of a window.

        Args:
            landmarks: (B, T, 68, 2) normalized landmarks of the window (true, or predicted by
                stage 2); gradients flow back into them through the sketches.
            target: (B, 3, H, W) the real centre frame (the template frame at inference).
            refs: encoded references (`encode_references`), batch B (or expanded to it).

        Returns:
            The rendered batch (see `RendererOutput`).
        """
        size = target.shape[-1]
        h = self.network.input_size(size)
        sketches = self.sketch(landmarks, size)  # (B, T, S, h, h)
        centre = landmarks[:, landmarks.shape[1] // 2].detach()  # (B, 68, 2)
        with torch.no_grad():  # the masks are smooth: rasterised at h, upsampled to the output
            hidden = target_mask(centre, h, kind=self.target_mask, margin=self.mask_margin)
        fill = 1.0 if self.background == "remove" else 0.5
        masked = resize(target, h) * (1 - hidden) + fill * hidden  # (B, 3, h, h)
        net = self.network(sketches, masked, refs, centre)
        image = net.image
        if self.background == "keep":
            with torch.no_grad():
                face = face_hull_mask(centre, h, feather=self._pixels(self.composite_feather, h))
                blend = resize(torch.maximum(face, hidden), size)  # (B, 1, H, W)
            image = blend * net.image + (1 - blend) * target
        return RendererOutput(image, net.image, sketches, resize(hidden, size), net)

    def forward(
        self, landmarks: Tensor, target: Tensor, ref_frames: Tensor, ref_landmarks: Tensor
    ) -> Tensor:
        """Inference: (B, T, 68, 2), (B, 3, H, W), (B, K, 3, H, W), (B, K, 68, 2) → (B, 3, H, W)."""
        return self.render(
            landmarks, target, self.encode_references(ref_frames, ref_landmarks)
        ).image

    @torch.no_grad()
    def iter_clip(
        self,
        clip: ClipInputs,
        landmarks: Tensor | None = None,
        *,
        window: int = 5,
        chunk: int = 16,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Render a clip chunk by chunk, references encoded once (streaming `generate_clip`).

        Args:
            clip: the clip (on this module's device).
            landmarks: (N, 68, 2) normalized landmarks to draw; None → `clip.landmarks`.
            window: T of the sketches (odd; ends clamped as in the dataset).
            chunk: frames per forward pass.

        Yields:
            Per chunk of c frames: (c, 3, H, W) frames in [0, 1] and their (c, S, H, W) centre
            sketches.
        """
        landmarks = clip.landmarks if landmarks is None else landmarks
        n = clip.num_frames
        index = clip_window_index(n, window, landmarks.shape[0], landmarks.device)  # (N, T)
        refs = self.encode_references(clip.ref_frames[None], clip.ref_landmarks[None])
        for start in range(0, n, chunk):
            rows = index[start : start + chunk]
            target = clip.target_frames(start, start + chunk)  # (c, 3, H, W), built per chunk
            out = self.render(landmarks[rows], target, refs.expand(len(rows)))
            yield out.image.clamp(0, 1), out.centre_sketch()

    @torch.no_grad()
    def generate_clip(
        self,
        clip: ClipInputs,
        landmarks: Tensor | None = None,
        *,
        window: int = 5,
        chunk: int = 16,
    ) -> ClipOutput:
        """Render every frame of a clip, references encoded once (see `iter_clip`).

        Returns:
            The generated frames with the landmarks and centre sketches they came from.
        """
        landmarks = clip.landmarks if landmarks is None else landmarks
        parts = list(self.iter_clip(clip, landmarks, window=window, chunk=chunk))
        frames, sketches = (torch.cat(list(p)) for p in zip(*parts, strict=True))
        return ClipOutput(frames, landmarks, sketches)

    # -- losses ---------------------------------------------------------------------------------

    def _disc_input(self, image: Tensor, out: RendererOutput) -> Tensor:
        """(B, 3 + S, H, W): a frame with the centre sketch it should follow."""
        return torch.cat([image, out.centre_sketch()], dim=1)

    def generator_losses(self, out: RendererOutput, batch: Batch) -> dict[str, Tensor]:
        """The generator's weighted losses for a rendered batch.

        Args:
            out: `render` of the batch.
            batch: the batch (`target` (B, 3, H, W), `landmarks` (B, T, 68, 2)).

        Returns:
            `{"loss": total}` plus each computed term, unweighted.
        """
        w, target, image = self.loss_weights, batch["target"], out.image
        centre = _centre_landmarks(batch)
        terms: dict[str, Tensor] = {}
        if w.l1 > 0:
            terms["l1"] = masked_l1(image, target)
        if w.mouth > 0:
            box = mouth_box_mask(mouth_box(centre, target.shape[-1]), target.shape[-1])
            terms["mouth"] = masked_l1(image, target, box)
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual(image, target)
        if w.warp > 0 and out.net.warped_images is not None:
            terms["warp"] = warp_loss(out.net.warped_images, target, out.hidden)
        if self.discriminator is not None:
            with frozen(self.discriminator):  # gradients reach the frame, not the critic
                fake = self.discriminator(self._disc_input(image, out))
            if w.adversarial > 0:
                terms["adversarial"] = generator_hinge_loss(fake)
            if w.feature_matching > 0:
                with torch.no_grad():
                    real = self.discriminator(self._disc_input(target, out))
                terms["feature_matching"] = feature_matching_loss(real, fake)
        if self.mouth_discriminator is not None:
            with frozen(self.mouth_discriminator):
                fake = self.mouth_discriminator(image, centre)
            if w.mouth_adversarial > 0:
                terms["mouth_adversarial"] = generator_hinge_loss(fake)
            if w.mouth_feature_matching > 0:
                with torch.no_grad():
                    real = self.mouth_discriminator(target, centre)
                terms["mouth_feature_matching"] = feature_matching_loss(real, fake)
        total = sum(
            (getattr(w, name) * value for name, value in terms.items()), image.new_zeros(())
        )
        return {"loss": total, **terms}

    def discriminator_losses(self, out: RendererOutput, batch: Batch) -> dict[str, Tensor]:
        """The discriminators' hinge losses on the real target vs the detached output.

        Returns:
            `{"d_loss": ...}`, the sum over the discriminators (with the mouth's, its own term
            as `"d_mouth"` too), or `{}` without one.
        """
        losses: dict[str, Tensor] = {}
        if self.discriminator is not None:
            real = self.discriminator(self._disc_input(batch["target"], out).detach())
            fake = self.discriminator(self._disc_input(out.image.detach(), out).detach())
            losses["d_loss"] = discriminator_hinge_loss(real, fake)
        if self.mouth_discriminator is not None:
            centre = _centre_landmarks(batch)
            real = self.mouth_discriminator(batch["target"], centre)
            fake = self.mouth_discriminator(out.image.detach(), centre)
            losses["d_mouth"] = discriminator_hinge_loss(real, fake)
            losses["d_loss"] = losses.get("d_loss", 0.0) + losses["d_mouth"]
        return losses

    @property
    def critics(self) -> nn.Module | None:
        """The discriminators that the second optimizer trains (`manual_step` clips each on its
        own), or None without a GAN term."""
        built = [d for d in (self.discriminator, self.mouth_discriminator) if d is not None]
        return nn.ModuleList(built) if built else None

    # -- training -------------------------------------------------------------------------------

    def _render_batch(self, batch: Batch) -> RendererOutput:
        refs = self.encode_references(batch["ref_frames"], batch["ref_landmarks"])
        return self.render(batch["landmarks"], batch["target"], refs)

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        out = self._render_batch(batch)
        losses = self.generator_losses(out, batch) | self.discriminator_losses(out, batch)
        if not check_finite(losses, batch, self.global_step, self.nonfinite, "FaceRenderer"):
            return
        # one backward: the generator's GAN terms saw the discriminator frozen, and the
        # discriminator's loss saw detached frames, so each network gets only its own gradient
        total = losses["loss"] + losses.get("d_loss", losses["loss"].new_zeros(()))
        critics = self.critics
        trained = [self.network] + ([] if critics is None else [critics])
        manual_step(self, total, trained, self.gradient_clip)
        self._log("train", losses, batch)

    def _log(self, split: Split, losses: dict[str, Tensor], batch: Batch) -> None:
        self.log_dict(
            {f"{split}/{name}": value.detach() for name, value in losses.items()},
            prog_bar=split != "test",
            batch_size=batch["target"].shape[0],
            sync_dist=split != "train",  # epoch values over all DDP processes
        )

    def _eval_step(self, batch: Batch, split: Split) -> None:
        out = self._render_batch(batch)
        losses = self.generator_losses(out, batch)
        self._log(split, losses, batch)
        metrics = self.val_metrics if split == "val" else self.test_metrics
        metrics.update(out.image.clamp(0, 1), batch["target"], _centre_landmarks(batch))
        self.log_dict(metrics, batch_size=batch["target"].shape[0])

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """(B, 3, H, W) frames rendered from the batch's true landmarks."""
        return self._render_batch(batch).image.clamp(0, 1)

    def configure_optimizers(self) -> list[Optimizer]:
        optimizers = [self.optimizer(self.network.parameters())]
        critics = self.critics
        if critics is not None:
            optimizers.append(self.discriminator_optimizer(critics.parameters()))
        return optimizers

    def check_background(self, background: str) -> None:
        """Fail early when the DataModule prepares frames for another background mode.

        `pmfs fit|validate|test|predict` call it where model and data meet (the CLI's
        `before_<subcommand>`, `pmfs.commands.lightning`); a script that pairs them itself calls
        it too.
        """
        if background != self.background:
            raise ValueError(
                f"the renderer has background={self.background!r} but the DataModule gives "
                f"background={background!r} frames; set both to the same value"
            )


__all__ = [
    "DiscriminatorConfig",
    "FaceRenderer",
    "RendererLossWeights",
    "RendererOutput",
]
