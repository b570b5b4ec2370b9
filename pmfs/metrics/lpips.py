"""LPIPS, the learned perceptual image patch similarity of Zhang et al. (CVPR 2018), v0.1 AlexNet.

`d(x, y) = Σ_l mean_{h,w} w_l · (f̂_l(x) - f̂_l(y))²`, where `f̂_l` are the five ReLU outputs of the
AlexNet features (relu1..relu5, 64/192/384/256/256 channels) each unit-normalised along channels,
and `w_l` the learned non-negative linear heads (1×1 convolutions to one channel, no bias). Images
in [0, 1] are mapped to [-1, 1] and then through the LPIPS scaling layer `(x - shift) / scale`.

Defined here, without torchvision or the `lpips` package, from two weight files the user supplies
(paths, or by default the files of these names in the torch hub cache, `<torch.hub.get_dir()>/
checkpoints/`):

- the backbone: torchvision's `alexnet-owt-7be5be79.pth` (keys `features.0.weight` ...; the
  classifier keys are ignored);
- the linear heads: the lpips package's `weights/v0.1/alex.pth` (keys `lin0.model.1.weight` ...
  `lin4.model.1.weight`, each `(1, C, 1, 1)`).

A missing file raises `MetricWeightsError`; `lpips_skip_reason` gives the one line to print when
the metric is skipped. The frozen network is left out of state dicts (checkpoints), like the
metric's states.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from pmfs.metrics.weights import cached_weights, check_weights, load_state_dict, require_weights

__all__ = [
    "ALEXNET_FILE",
    "ALEXNET_SOURCE",
    "LPIPS",
    "LPIPS_ALEX_FILE",
    "LPIPS_ALEX_SOURCE",
    "LPIPSNetwork",
    "alexnet_features",
    "default_paths",
    "load_lpips_network",
    "lpips",
    "lpips_skip_reason",
]

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_SOURCE = f"https://download.pytorch.org/models/{ALEXNET_FILE} (torchvision AlexNet)"
LPIPS_ALEX_FILE = "alex.pth"
LPIPS_ALEX_SOURCE = (
    "the lpips package, lpips/weights/v0.1/alex.pth "
    "(https://github.com/richzhang/PerceptualSimilarity)"
)

# The LPIPS scaling layer: inputs in [-1, 1] become roughly ImageNet-normalised.
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
# Indices in `features` of the ReLUs whose outputs LPIPS compares (relu1 .. relu5).
_TAPS = (1, 4, 7, 9, 11)
CHANNELS = (64, 192, 384, 256, 256)
_EPS = 1e-10  # of the lpips package's normalize_tensor
_BACKBONE_NAME = f"LPIPS backbone ({ALEXNET_FILE})"
_HEADS_NAME = f"LPIPS heads ({LPIPS_ALEX_FILE})"


def alexnet_features() -> nn.Sequential:
    """The `features` block of torchvision's AlexNet, same layout and indices (random init).

    Returns:
        `nn.Sequential` mapping (B, 3, H, W) to (B, 256, h, w); its `state_dict` keys are those of
        `alexnet-owt-7be5be79.pth` without the `features.` prefix.
    """
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),  # 0
        nn.ReLU(inplace=True),  # 1: relu1
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),  # 3
        nn.ReLU(inplace=True),  # 4: relu2
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),  # 6
        nn.ReLU(inplace=True),  # 7: relu3
        nn.Conv2d(384, 256, kernel_size=3, padding=1),  # 8
        nn.ReLU(inplace=True),  # 9: relu4
        nn.Conv2d(256, 256, kernel_size=3, padding=1),  # 10
        nn.ReLU(inplace=True),  # 11: relu5
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


class LPIPSNetwork(nn.Module):
    """The LPIPS v0.1 AlexNet distance as a frozen `nn.Module` (random init; see `load`).

    `forward(preds, target)` takes (B, 3, H, W) images in [0, 1] (H, W >= 32 so that relu5 is
    non-empty) and returns the (B,) distances; it is differentiable with respect to the images.
    """

    shift: Tensor
    scale: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.features = alexnet_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def load(
        self, backbone_weights: str | Path | None = None, lpips_weights: str | Path | None = None
    ) -> LPIPSNetwork:
        """Load the AlexNet features and the linear heads from their files; returns `self`.

        None stands for the file of that name in the torch hub cache (`default_paths`).
        """
        backbone_weights, lpips_weights = default_paths(backbone_weights, lpips_weights)
        backbone = require_weights(backbone_weights, _BACKBONE_NAME, ALEXNET_SOURCE)
        heads = require_weights(lpips_weights, _HEADS_NAME, LPIPS_ALEX_SOURCE)
        expected = {f"features.{k}": tuple(v.shape) for k, v in self.features.state_dict().items()}
        state = load_state_dict(backbone, expected, ignore_prefixes=("classifier.",))
        self.features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
        expected = {f"lin{i}.model.1.weight": (1, c, 1, 1) for i, c in enumerate(CHANNELS)}
        state = load_state_dict(heads, expected)
        self.lins.load_state_dict(
            {f"{i}.weight": state[f"lin{i}.model.1.weight"] for i in range(5)}
        )
        return self

    def train(self, mode: bool = True) -> Self:
        """Stay in eval mode: the network is a fixed measure, never trained."""
        return super().train(False)

    def _taps(self, images: Tensor) -> list[Tensor]:
        """Unit-normalised relu1..relu5 features of (B, 3, H, W) images in [0, 1]."""
        x = ((images * 2 - 1) - self.shift) / self.scale
        taps = []
        for index in range(_TAPS[-1] + 1):
            x = self.features[index](x)  # (B, C, h, w); no layer after a tap works in place
            if index in _TAPS:
                norm = x.square().sum(dim=1, keepdim=True).sqrt()  # (B, 1, h, w)
                taps.append(x / (norm + _EPS))
        return taps

    def forward(self, preds: Tensor, target: Tensor) -> Tensor:
        """LPIPS distance of each pair: (B, 3, H, W) images in [0, 1] → (B,)."""
        _check_images(preds, target)
        dtype = self.shift.dtype  # images follow the network's precision
        preds, target = preds.to(dtype), target.to(dtype)
        distance = preds.new_zeros(preds.shape[0])
        for lin, a, b in zip(self.lins, self._taps(preds), self._taps(target), strict=True):
            distance = distance + lin((a - b).square()).mean(dim=(1, 2, 3))  # spatial average
        return distance


def _check_images(preds: Tensor, target: Tensor) -> None:
    if preds.ndim != 4 or preds.shape[1] != 3 or preds.shape != target.shape:
        raise ValueError(
            "preds and target must be equal-shaped (B, 3, H, W) images in [0, 1], got "
            f"{tuple(preds.shape)} and {tuple(target.shape)}"
        )
    if min(preds.shape[-2:]) < 32:
        raise ValueError(f"LPIPS (AlexNet) needs H, W >= 32, got {tuple(preds.shape[-2:])}")


def default_paths(
    backbone_weights: str | Path | None, lpips_weights: str | Path | None
) -> tuple[Path, Path]:
    """The two weight files, None replaced by the file's place in the torch hub cache.

    torchvision caches `alexnet-owt-7be5be79.pth` there itself; `alex.pth` has to be copied there
    from the lpips package by hand.
    """
    return (
        cached_weights(ALEXNET_FILE) if backbone_weights is None else Path(backbone_weights),
        cached_weights(LPIPS_ALEX_FILE) if lpips_weights is None else Path(lpips_weights),
    )


def load_lpips_network(
    backbone_weights: str | Path | None = None, lpips_weights: str | Path | None = None
) -> LPIPSNetwork:
    """A frozen `LPIPSNetwork` with the AlexNet features and linear heads loaded from files.

    Args:
        backbone_weights: torchvision's `alexnet-owt-7be5be79.pth`; None: the torch hub cache.
        lpips_weights: the lpips package's v0.1 `alex.pth`; None: `alex.pth` in the hub cache.

    Raises:
        MetricWeightsError: a file is missing (the message names it and its source).
        ValueError: a file has the wrong keys or shapes.
    """
    return LPIPSNetwork().load(backbone_weights, lpips_weights)


def lpips(preds: Tensor, target: Tensor, network: LPIPSNetwork) -> Tensor:
    """Mean LPIPS distance over a batch (differentiable, so usable as a loss).

    Args:
        preds: (B, 3, H, W) images in [0, 1].
        target: (B, 3, H, W) images in [0, 1].
        network: from `load_lpips_network`, on the images' device.

    Returns:
        0-d mean over images of the per-image distance; 0 for identical images.
    """
    return network(preds, target).mean()


def lpips_skip_reason(
    backbone_weights: str | Path | None = None, lpips_weights: str | Path | None = None
) -> str | None:
    """The one line to print when LPIPS must be skipped for want of weights, else None.

    Args and defaults as `load_lpips_network`.
    """
    backbone_weights, lpips_weights = default_paths(backbone_weights, lpips_weights)
    reason = check_weights(backbone_weights, _BACKBONE_NAME, ALEXNET_SOURCE)
    reason = reason or check_weights(lpips_weights, _HEADS_NAME, LPIPS_ALEX_SOURCE)
    return None if reason is None else f"skipping {reason}"


def _drop_network_weights(
    module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any
) -> None:
    """State-dict post-hook of `LPIPS`: remove the frozen network's tensors."""
    for key in [k for k in state_dict if k.startswith(f"{prefix}network.")]:
        del state_dict[key]


def _keep_network_weights(
    module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any
) -> None:
    """Load pre-hook of `LPIPS`: fill in the network's own tensors that checkpoints leave out."""
    network = module.get_submodule("network")
    for key, value in network.state_dict().items():
        state_dict.setdefault(f"{prefix}network.{key}", value)


class LPIPS(Metric):
    """LPIPS v0.1 (AlexNet), mean over images of the per-image distance; lower is better.

    `update(preds, target)` takes (B, 3, H, W) images in [0, 1]; `compute()` returns the mean
    over every image seen since the last reset, on all ranks under DDP (sum states).

    Args:
        backbone_weights: torchvision's `alexnet-owt-7be5be79.pth`; None: the torch hub cache.
        lpips_weights: the lpips package's v0.1 `alex.pth`; None: `alex.pth` in the hub cache.

    Raises:
        MetricWeightsError: a weights file is missing.
        ValueError: a file has the wrong keys or shapes.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    total: Tensor
    count: Tensor

    def __init__(
        self, backbone_weights: str | Path | None = None, lpips_weights: str | Path | None = None
    ) -> None:
        super().__init__()
        self.network = load_lpips_network(backbone_weights, lpips_weights)
        # The weights come from their files, not from checkpoints: leaving them out of the
        # state dict keeps checkpoints small and loadable whether or not LPIPS was configured.
        self.register_state_dict_post_hook(_drop_network_weights)
        self.register_load_state_dict_pre_hook(_keep_network_weights)
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch of (B, 3, H, W) image pairs in [0, 1] (any float dtype)."""
        with torch.no_grad():
            distance = self.network(preds.detach(), target.detach())  # (B,)
        self.total += distance.sum().to(self.total.dtype)
        self.count += distance.numel()

    def compute(self) -> Tensor:
        """Mean distance (0-d); NaN with a warning from torchmetrics if never updated."""
        return self.total / self.count
