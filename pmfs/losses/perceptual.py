"""Perceptual loss: L1 between VGG19 activations of the prediction and of the target.

The weights 1/32 … 1 over relu1_1 … relu5_1 follow pix2pixHD's `VGGLoss`, which stage 3's
renderers (IP-LAP, first-order-model's successors) inherit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Self

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmfs.networks.vgg import DEFAULT_LAYERS, VGG19Features, load_vgg19

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PerceptualLoss"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PerceptualLoss(nn.Module):
    """`Σ_l w_l · mean |φ_l(pred) − φ_l(target)|` over VGG19 ReLU outputs φ_l.

    Inputs are RGB in [0, 1]; the ImageNet normalisation happens inside. The VGG is frozen
    (`requires_grad` False), always in eval mode (`train()` keeps it there), and gradients flow
    to `pred` only: the target's features are computed without a graph.

    Where the VGG lives: it is held as a plain attribute, outside the module tree, and this
    module's `_apply` forwards `.to()`, `.cuda()`, `.half()` … to it. So it moves with any
    parent module, yet its 80 MB of frozen ImageNet weights are not written into every
    checkpoint (they come from the weights file at construction), `load_state_dict` of a parent
    neither needs nor expects them, optimizers and `toggle_optimizer` never see them, and DDP
    neither broadcasts nor reduces them (non-persistent buffers would be broadcast at every
    forward). With `weights=None` every process builds the same random VGG (fixed seed).

    Args:
        weights: "imagenet" (torch hub cache), a file path, or None (random; tests).
        layers: VGG19 ReLU names (see `pmfs.networks.vgg.LAYER_INDICES`).
        layer_weights: one weight per layer.
    """

    mean: Tensor
    std: Tensor
    _vgg: VGG19Features

    def __init__(
        self,
        weights: str | None = "imagenet",
        layers: Sequence[str] = DEFAULT_LAYERS,
        layer_weights: Sequence[float] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),
    ) -> None:
        super().__init__()
        if len(layer_weights) != len(layers):
            raise ValueError(
                f"need one weight per layer: {len(layers)} layers {list(layers)} but "
                f"{len(layer_weights)} weights {list(layer_weights)}"
            )
        self.layer_weights = tuple(float(weight) for weight in layer_weights)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
        object.__setattr__(self, "_vgg", load_vgg19(weights, layers))  # not a submodule

    @property
    def vgg(self) -> VGG19Features:
        """The frozen feature network (not a submodule; see the class docstring)."""
        return self._vgg

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Self:
        super()._apply(fn, recurse)
        self._vgg._apply(fn, recurse)
        return self

    def train(self, mode: bool = True) -> Self:
        """Set this module's mode; the VGG stays in eval mode."""
        super().train(mode)
        self._vgg.eval()
        return self

    def extra_repr(self) -> str:
        return f"vgg19 layers={list(self._vgg.layers)}, weights={list(self.layer_weights)}"

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Perceptual distance of `pred` to `target`.

        Args:
            pred: (B, 3, H, W) RGB in [0, 1]; H and W at least 2^(pools before the deepest
                layer), e.g. 16 for relu5_1.
            target: (B, 3, H, W) RGB in [0, 1], treated as a constant.

        Returns:
            scalar loss, 0 when `pred` equals `target`.
        """
        if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3:
            raise ValueError(
                "pred and target must both be (B, 3, H, W), "
                f"got {tuple(pred.shape)} and {tuple(target.shape)}"
            )
        pred_features = self._vgg((pred - self.mean) / self.std)
        with torch.no_grad():
            target_features = self._vgg((target - self.mean) / self.std)
        loss = pred.new_zeros(())
        for weight, fake, real in zip(
            self.layer_weights, pred_features, target_features, strict=True
        ):
            loss = loss + weight * F.l1_loss(fake, real)
        return loss
