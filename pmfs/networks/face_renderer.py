"""`FaceRendererNet`: stage 3's generator, sketches + masked target + references → RGB frame.

A U-Net in the spirit of IP-LAP's renderer, lighter (DESIGN §1, §6). Two encoders build feature
pyramids: the *target* encoder over the masked target frame and the T sketches of the window,
the *reference* encoder over each reference image and its sketch. References are encoded once per
clip (`encode_references`), never per frame.

With `warping=True` a dense-flow estimator gives each reference k a flow field F_k (normalized
offsets, `grid_sample(align_corners=False)` units) and a confidence logit: coarse at the deepest
level, refined one level up. Reference features at every level and the full-resolution
reference images are warped by F_k (`pmfs.networks.warping`) and merged with softmax-over-K
confidence. Both heads start at zero: uniform confidence, and F_k equal to the landmark flow
(`pmfs.networks.landmark_flow`, when `forward` gets the landmarks; else identity), so the
network learns the residual of an analytic warp. With `warping=False` no flow module exists; a
confidence head alone merges the unwarped reference features.

The decoder fuses the target features with the merged reference features at every level (skip
connections, residual blocks) and upsamples. Its output is occlusion-aware, as in
first-order-model's generator (Siarohin et al., 2019): besides RGB it predicts a blend map α, and
the frame is α · (the confidence-merged, warped reference images) + (1 − α) · (the decoded RGB).
Where a reference shows what the target needs (skin, teeth, lips in a similar pose) the network
copies its pixels through the flow; it paints only what no reference shows. At the start α is
0.5 everywhere, so the first frames are already half the references' average.

Resolution independence (`working_size`): the U-Net, the flow and the confidence run at a
working size (e.g. 64²) whatever the output size; flow, confidence and α are smooth fields, so
they are upsampled bilinearly and applied to the references at the output size (256², 512²),
whose pixels stay real and sharp. Only the decoded RGB — what no reference shows — is made at
the working size; `guided_upsample` takes it to the output size with a learned detail gain that
transfers the merged references' high frequencies. The cost of a frame is then the network's at
the working size plus a few full-size element-wise operations (the warp, the merge, one
interpolation). `working_size=None` is the paper's renderer: everything at the output size.
What no reference shows and is too thin for the working size — the teeth of a slightly open
mouth — and the lips' outline, which the soft merge of references blurs, are painted at the
output size inside the target's outer lips by `MouthDetail` (`mouth_detail` > 0), whose inputs
are measured in mouth widths, not pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from pmfs.networks.landmark_flow import landmark_flow
from pmfs.networks.mouth_detail import MouthDetail
from pmfs.networks.renderer_blocks import (
    MotionHead,
    PyramidEncoder,
    ResBlock,
    conv_block,
    group_norm,
    guided_upsample,
    level_channels,
    resize,
    upsample_motion,
)
from pmfs.networks.warping import merge, warp


@dataclass
class ReferenceFeatures:
    """The references of a clip, encoded once (`FaceRendererNet.encode_references`).

    Attributes:
        features: per encoder level l = 0..L: (B, K, C_l, h/2^l, h/2^l), h the network's input
            size (`FaceRendererNet.input_size`).
        images: (B, K, 3, H, W) reference frames in [0, 1], at the output size.
        sketches: (B, K, S, h, h) their sketches, at the input size.
        landmarks: (B, K, 68, 2) their normalized landmarks, for the landmark flow (None: the
            flow starts at identity).
    """

    features: list[Tensor]
    images: Tensor
    sketches: Tensor
    landmarks: Tensor | None = None

    def expand(self, batch: int) -> ReferenceFeatures:
        """Broadcast B = 1 references to `batch` frames (views, no copy)."""
        current = self.images.shape[0]
        if current == batch:
            return self
        if current != 1:
            raise ValueError(f"can only expand references with batch 1, got batch {current}")
        return ReferenceFeatures(
            features=[f.expand(batch, *f.shape[1:]) for f in self.features],
            images=self.images.expand(batch, *self.images.shape[1:]),
            sketches=self.sketches.expand(batch, *self.sketches.shape[1:]),
            landmarks=None
            if self.landmarks is None
            else self.landmarks.expand(batch, *self.landmarks.shape[1:]),
        )


@dataclass
class RendererNetOutput:
    """What `FaceRendererNet.forward` returns.

    Attributes:
        image: (B, 3, H, W) generated frame in [0, 1] (before compositing), at the output size.
        blend: (B, 1, H, W) α in [0, 1], the share of the merged reference images in `image`
            (upsampled from the working size).
        confidence: (B, K, 1, h, w) reference weights, summing to 1 over K.
        flow: (B, K, 2, h, w) normalized offsets `(dx, dy)` (warping only).
        warped_images: (B, K, 3, H, W) references warped to the target (warping only).
    """

    image: Tensor
    blend: Tensor
    confidence: Tensor
    flow: Tensor | None
    warped_images: Tensor | None


class FaceRendererNet(nn.Module):
    """Sketches of the window + masked target + encoded references → the target frame.

    Args:
        window: T, the frames of the sketch window (centre = the frame to make).
        sketch_channels: S, channels of one sketch (1, or `sketch_channels(groups=True)`).
        channels: channels of pyramid level 0 (full resolution); level l has `channels·2^l`.
        levels: L, stride-2 stages of each encoder; H and W must be divisible by 2^L.
        max_channels: cap on the channels of a level.
        res_blocks: residual blocks after the fusion at every decoder level.
        warping: estimate a flow per reference and warp its features and image; False builds no
            flow module and merges unwarped features.
        flow_prior: with warping, start each reference's flow from the landmark flow
            (`pmfs.networks.landmark_flow`, when `forward` gets the landmarks) and learn the
            residual; False starts from identity (the flow is learned from scratch).
        flow_sigma: bandwidth of the landmark flow, normalized units.
        working_size: side h of the network's input: frames larger than it are rendered at h²
            and upsampled (flow, confidence, α, the RGB with a learned detail gain:
            `guided_upsample`); must be divisible by 2^levels. None: the paper's renderer, the
            network at the output size.
        image_warp: the kernel that samples the reference *images* at the output size
            (`pmfs.networks.warping.warp`): bicubic keeps their detail, bilinear blurs it (a
            lower face warped bilinearly keeps 0.57 of its Laplacian energy at 256², bicubic
            0.90); features are always sampled bilinearly.
        mouth_detail: width of `MouthDetail`'s hidden layers, the head that paints the mouth
            (lips and interior, inside the target's outer lips) per pixel at the output size;
            0: none.
    """

    def __init__(
        self,
        window: int = 5,
        sketch_channels: int = 1,
        channels: int = 32,
        levels: int = 4,
        max_channels: int = 256,
        res_blocks: int = 2,
        warping: bool = True,
        flow_prior: bool = True,
        flow_sigma: float = 0.06,
        working_size: int | None = None,
        image_warp: Literal["bilinear", "bicubic"] = "bilinear",
        mouth_detail: int = 0,
    ) -> None:
        super().__init__()
        if window < 1 or sketch_channels < 1 or channels < 1 or levels < 1 or res_blocks < 0:
            raise ValueError(
                f"need window, sketch_channels, channels, levels ≥ 1 and res_blocks ≥ 0, got "
                f"{window=}, {sketch_channels=}, {channels=}, {levels=}, {res_blocks=}"
            )
        if mouth_detail < 0:
            raise ValueError(f"mouth_detail must be ≥ 0 (0: no head), got {mouth_detail}")
        if working_size is not None and (working_size < 1 or working_size % 2**levels):
            raise ValueError(
                f"working_size must be a positive multiple of 2^levels = {2**levels}, got "
                f"{working_size}"
            )
        self.window, self.sketch_channels, self.levels = window, sketch_channels, levels
        self.working_size, self.image_warp = working_size, image_warp
        self.warping = warping
        self.flow_prior, self.flow_sigma = flow_prior, flow_sigma
        widths = level_channels(channels, levels, max_channels)
        self.widths = widths
        self.target_encoder = PyramidEncoder(3 + window * sketch_channels, widths)
        self.ref_encoder = PyramidEncoder(3 + sketch_channels, widths)
        hidden = widths[-2]
        self.coarse_motion: MotionHead | None = None
        self.refine_motion: MotionHead | None = None
        self.confidence: MotionHead | None = None
        # with a working size, a third head refines the motion one level finer (h/2^(L-2)): the
        # flow and confidence upsampled to the output then start from the same resolution
        # (relative to the output) as the paper's renderer at twice the size
        self.fine_motion: MotionHead | None = None
        if warping:
            self.coarse_motion = MotionHead(widths[-1], widths[-1], hidden, 3)
            self.refine_motion = MotionHead(widths[-2], widths[-2] + 3, hidden, 3)
            if working_size is not None and levels >= 2:
                self.fine_motion = MotionHead(widths[-3], widths[-3] + 3, widths[-3], 3)
        else:
            self.confidence = MotionHead(widths[-1], widths[-1], hidden, 1)
        self.bottleneck = nn.Sequential(
            nn.Conv2d(2 * widths[-1], widths[-1], 1),
            *(ResBlock(widths[-1]) for _ in range(res_blocks)),
        )
        # decoder level l: upsample level l+1, fuse with target + merged references of level l
        self.ups = nn.ModuleList(
            nn.Sequential(  # conv before upsampling: 4× cheaper than after
                conv_block(widths[level + 1], widths[level]),
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            )
            for level in range(levels)
        )
        self.fuses = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(3 * widths[level] + (3 if level == 0 else 0), widths[level], 1),
                *(ResBlock(widths[level]) for _ in range(res_blocks)),
            )
            for level in range(levels)
        )
        # RGB logits, the blend logit (zero-initialised: α = 0.5 at the start) and, with a
        # working size, the detail gain (zero-initialised: plain bilinear upsampling)
        out = nn.Conv2d(widths[0], 4 if working_size is None else 5, 3, padding=1)
        with torch.no_grad():
            out.weight[3:].zero_()
            if out.bias is not None:  # always, for the type checker
                out.bias.zero_()
        self.to_rgb = nn.Sequential(group_norm(widths[0]), nn.SiLU(), out)
        self.mouth_detail = MouthDetail(widths[0], mouth_detail) if mouth_detail else None

    def input_size(self, size: int) -> int:
        """Side of the network's input (its sketches, its pyramid's level 0) for `size`² frames:
        the working size, or `size` when the frames are not larger (or there is none)."""
        if self.working_size is None:
            return size
        return min(size, self.working_size)

    def _check_size(self, height: int, width: int) -> None:
        step = 2**self.levels
        if height != width or self.input_size(height) % step:
            raise ValueError(
                f"frames must be square with a side divisible by 2^levels = {step} (or larger "
                f"than the working size), got {height}×{width}; resize the frames or lower "
                "`levels`"
            )

    def encode_references(
        self, ref_frames: Tensor, ref_sketches: Tensor, ref_landmarks: Tensor | None = None
    ) -> ReferenceFeatures:
        """Encode the K references of each sample once (per clip at inference).

        Args:
            ref_frames: (B, K, 3, H, W) reference frames in [0, 1], at the output size.
            ref_sketches: (B, K, S, h, h) their sketches at the input size h = `input_size(H)`.
            ref_landmarks: (B, K, 68, 2) their normalized landmarks (for the landmark flow).

        Returns:
            `ReferenceFeatures` with per level l: (B, K, C_l, h/2^l, h/2^l).
        """
        B, K, _, H, W = ref_frames.shape
        h = self.input_size(H)
        if ref_frames.shape[2] != 3 or ref_sketches.shape != (B, K, self.sketch_channels, h, h):
            raise ValueError(
                f"need ref_frames (B, K, 3, H, W) and ref_sketches (B, K, {self.sketch_channels}, "
                f"{h}, {h}), got {tuple(ref_frames.shape)} and {tuple(ref_sketches.shape)}"
            )
        self._check_size(H, W)
        small = resize(ref_frames.flatten(0, 1), h)  # (B·K, 3, h, h)
        inputs = torch.cat([small, ref_sketches.flatten(0, 1)], dim=1)  # (B·K, 3+S, h, h)
        features = [f.unflatten(0, (B, K)) for f in self.ref_encoder(inputs)]
        return ReferenceFeatures(features, ref_frames, ref_sketches, ref_landmarks)

    def _motion(
        self, target: list[Tensor], refs: list[Tensor], prior: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """Confidence logits (B, K, 1, h, w) and flow (B, K, 2, h, w) (None without warping),
        at level L-1 (level L-2 with the fine head); `prior`: (B, K, 2, h, w) landmark flow at
        level L-1 the learned flow is added to, or None."""
        if self.coarse_motion is None or self.refine_motion is None:
            assert self.confidence is not None
            return self.confidence(target[-1], refs[-1]), None
        coarse = upsample_motion(self.coarse_motion(target[-1], refs[-1]), target[-2])
        flow = coarse[:, :, :2] if prior is None else coarse[:, :, :2] + prior
        start = torch.cat([flow, coarse[:, :, 2:]], dim=2)  # (B, K, 3, h, w)
        motion = start + self.refine_motion(
            target[-2], torch.cat([warp(refs[-2], flow), start], dim=2)
        )
        if self.fine_motion is not None:
            start = upsample_motion(motion, target[-3])  # (B, K, 3, 2h, 2w)
            ref_fine = warp(refs[-3], start[:, :, :2])
            motion = start + self.fine_motion(target[-3], torch.cat([ref_fine, start], dim=2))
        return motion[:, :, 2:], motion[:, :, :2]

    def _prior(
        self, target_landmarks: Tensor | None, refs: ReferenceFeatures, size: int
    ) -> Tensor | None:
        """(B, K, 2, size, size) landmark flow, or None (no warping, prior off, no landmarks)."""
        if not (self.warping and self.flow_prior) or target_landmarks is None:
            return None
        if refs.landmarks is None:
            raise ValueError(
                "the landmark flow needs the references' landmarks: pass ref_landmarks to "
                "encode_references"
            )
        return landmark_flow(
            target_landmarks.detach(), refs.landmarks.detach(), size, self.flow_sigma
        )

    def forward(
        self,
        sketches: Tensor,
        masked_target: Tensor,
        refs: ReferenceFeatures,
        target_landmarks: Tensor | None = None,
    ) -> RendererNetOutput:
        """Render the centre frame of the window.

        Args:
            sketches: (B, T, S, h, h) sketches of the T-frame window (centre = the frame to make)
                at the input size h = `input_size(H)`.
            masked_target: (B, 3, h, h) the target frame at the input size, its hidden region
                already filled.
            refs: the encoded references, batch B (see `ReferenceFeatures.expand`); their
                images set the output size H × W.
            target_landmarks: (B, 68, 2) normalized landmarks of the centre frame: with
                `flow_prior`, the flow starts from the landmark flow (no gradient reaches them
                this way; the sketches carry it). None: the flow starts at identity (and
                there can be no `mouth_detail` head, which paints inside their lips).

        Returns:
            `RendererNetOutput`; `confidence` and `flow` at h/2^(L-1) with warping (h/2^(L-2)
            with a working size and L ≥ 2), at h/2^L without.
        """
        B = masked_target.shape[0]
        H, W = refs.images.shape[-2:]
        self._check_size(H, W)
        h = self.input_size(H)
        expected = (B, self.window, self.sketch_channels, h, h)
        if sketches.shape != expected or masked_target.shape != (B, 3, h, h):
            raise ValueError(
                f"need sketches {expected} and masked_target {(B, 3, h, h)} for {H}×{W} "
                f"references, got {tuple(sketches.shape)} and {tuple(masked_target.shape)}"
            )
        if refs.images.shape[0] != B:
            raise ValueError(
                f"references {tuple(refs.images.shape)} do not match batch {B}; `expand` them "
                "to the batch"
            )
        target = self.target_encoder(torch.cat([masked_target, sketches.flatten(1, 2)], dim=1))
        prior = self._prior(target_landmarks, refs, target[-2].shape[-1])
        logits, flow = self._motion(target, refs.features, prior)
        ref_features, ref_images = refs.features, refs.images
        if flow is not None:
            ref_features = [warp(f, flow) for f in ref_features]
            ref_images = warp(ref_images, flow, self.image_warp)
        merged = [merge(f, logits) for f in ref_features]  # per level: (B, C_l, H_l, W_l)
        merged_images = merge(ref_images, logits)  # (B, 3, H, W)
        merged_small = resize(merged_images, h)  # (B, 3, h, h)
        x = self.bottleneck(torch.cat([target[-1], merged[-1]], dim=1))
        for level in reversed(range(self.levels)):
            skips = [self.ups[level](x), target[level], merged[level]]
            if level == 0:
                skips.append(merged_small)
            x = self.fuses[level](torch.cat(skips, dim=1))
        out = self.to_rgb(x)  # (B, 4 or 5, h, h)
        if self.working_size is None:
            blend = torch.sigmoid(out[:, 3:])  # (B, 1, H, W)
            image = torch.lerp(torch.sigmoid(out[:, :3]), merged_images, blend)
        else:
            image, blend = guided_upsample(out, merged_images, merged_small)
        if self.mouth_detail is not None:
            if target_landmarks is None:
                raise ValueError("the mouth_detail head needs the target's landmarks")
            image = self.mouth_detail(image, merged_images, x, target_landmarks)
        return RendererNetOutput(
            image=image,
            blend=blend,
            confidence=logits.softmax(dim=1),
            flow=flow,
            warped_images=ref_images if flow is not None else None,
        )
