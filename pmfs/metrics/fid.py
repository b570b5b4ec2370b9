"""Fréchet Inception Distance (DESIGN §5) with the FID Inception v3 and user-supplied weights.

The network is the Inception v3 of the TensorFlow graph `inception-2015-12-05` that the original
FID code (Heusel et al., 2017) uses, as ported to PyTorch by pytorch-fid
(`pt_inception-2015-12-05-6726825d.pth`). It is torchvision's `Inception3` layout and state-dict
keys (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`, ..., `fc.weight` with
1008 classes, no auxiliary classifier), with pytorch-fid's patches of the TF graph:

- `FIDInceptionA` / `FIDInceptionC` / `FIDInceptionE_1`: the pool branch's 3×3 average pool does
  not count the zero padding (`count_include_pad=False`), as TensorFlow's;
- `FIDInceptionE_2` (`Mixed_7c`): the pool branch is a 3×3 *max* pool.

Input preprocessing is pytorch-fid's: images (N, 3, H, W) RGB in [0, 1] are resized to 299×299
(bilinear, `align_corners=False`, no antialiasing) and mapped to [-1, 1]; the features are the
2048-d global average pool after `Mixed_7c`. Neither torchvision nor pytorch-fid is imported: the
layers are defined here with the same names, so the published file loads with `strict=True`.

`FID(weights)` is torchmetrics' `FrechetInceptionDistance` with this network as its feature
extractor. The weights are never downloaded: pass the path of the file; a missing file raises
`MetricWeightsError` with one line saying where to get it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

from pmfs.metrics.weights import MetricWeightsError, cached_weights, check_weights

__all__ = [
    "FID",
    "FID_INPUT_SIZE",
    "FID_NUM_FEATURES",
    "FID_WEIGHTS_FILE",
    "FID_WEIGHTS_URL",
    "FIDInceptionV3",
    "load_fid_inception",
]

logger = logging.getLogger(__name__)

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
"""File name of pytorch-fid's port of the TF Inception graph."""
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_FILE
)
"""Where the user downloads the weights (never fetched by this module)."""
FID_INPUT_SIZE = 299
"""Side of the square the images are resized to."""
FID_NUM_FEATURES = 2048
"""Dimension of the pool features compared by FID."""
_NUM_CLASSES = 1008  # the TF graph's classifier; loaded (strict) but unused for FID


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as TF) and ReLU; torchvision's keys."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: Tensor) -> Tensor:
    """3×3 stride-1 average pool that ignores the zero padding, as TensorFlow's."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """Inception-A block (35×35), pool branch patched to TF's average pool."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, branch_pool], dim=1)


class InceptionB(nn.Module):
    """Reduction block 35×35 → 17×17 (unpatched)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([self.branch3x3(x), branch3x3dbl, branch_pool], dim=1)


class FIDInceptionC(nn.Module):
    """Inception-C block (17×17, factorised 7×7), pool branch patched to TF's average pool."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4):
            branch7x7dbl = layer(branch7x7dbl)
        branch7x7dbl = self.branch7x7dbl_5(branch7x7dbl)
        branch_pool = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, branch_pool], dim=1)


class InceptionD(nn.Module):
    """Reduction block 17×17 → 8×8 (unpatched)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            branch7x7x3 = layer(branch7x7x3)
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch7x7x3, branch_pool], dim=1)


class FIDInceptionE(nn.Module):
    """Inception-E block (8×8, expanded filter bank), in its two FID variants.

    Args:
        in_channels: input channels (1280 for `Mixed_7b`, 2048 for `Mixed_7c`).
        pool: "avg" (`FIDInceptionE_1`: TF's average pool) or "max" (`FIDInceptionE_2`: the TF
            graph's `Mixed_7c` max-pools here, unlike the paper).
    """

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat(
            [self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1
        )
        if self.pool == "max":
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _tf_avg_pool(x)
        branch_pool = self.branch_pool(pooled)
        return torch.cat([self.branch1x1(x), branch3x3, branch3x3dbl, branch_pool], dim=1)


class FIDInceptionV3(nn.Module):
    """The FID Inception v3 (TF graph 2015-12-05) as a feature extractor: images → pool features.

    State-dict compatible with pytorch-fid's `fid_inception_v3()` (torchvision `Inception3` keys,
    1008-class `fc`, no `AuxLogits`). Always in eval mode (`train()` is a no-op) and without
    gradients for its parameters, so that a `Metric.train()` never updates batch-norm statistics.
    `num_features` tells torchmetrics the feature size.
    """

    num_features: int = FID_NUM_FEATURES

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.fc = nn.Linear(FID_NUM_FEATURES, _NUM_CLASSES)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FIDInceptionV3:
        """Stay in eval mode whatever `mode` is: the network is a fixed feature extractor."""
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        """Pool features of images.

        Args:
            images: (N, 3, H, W) RGB, float in [0, 1] (or uint8 in [0, 255]), any H, W.

        Returns:
            (N, 2048) float features (global average pool after `Mixed_7c`).
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}")
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        size = (FID_INPUT_SIZE, FID_INPUT_SIZE)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        x = 2.0 * x - 1.0  # (N, 3, 299, 299) in [-1, 1]
        for stem in (self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3):
            x = stem(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 192, 35, 35)
        mixed: list[nn.Module] = [self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a]
        mixed += [self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e]
        mixed += [self.Mixed_7a, self.Mixed_7b, self.Mixed_7c]
        for block in mixed:
            x = block(x)  # ... → (N, 2048, 8, 8)
        return x.mean(dim=(2, 3))  # (N, 2048)


def load_fid_inception(weights: str | Path | None = None) -> FIDInceptionV3:
    """Build `FIDInceptionV3` and load a state-dict file into it (strict: every key must match).

    Args:
        weights: path of `pt_inception-2015-12-05-6726825d.pth` (a plain state dict, loaded with
            `torch.load(weights_only=True)`); None looks for that file in the torch hub cache
            (`<torch.hub.get_dir()>/checkpoints/`, where pytorch-fid downloads it).

    Raises:
        MetricWeightsError: the file does not exist (the message says where to download it).
        ValueError: the file is not a state dict of this architecture.
    """
    path = cached_weights(FID_WEIGHTS_FILE) if weights is None else Path(weights)
    reason = check_weights(path, f"FID Inception v3 ({FID_WEIGHTS_FILE})", FID_WEIGHTS_URL)
    if reason is not None:
        raise MetricWeightsError(reason)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle or zip error: the file is not what it is named
        raise ValueError(
            f"cannot read {path} as a state dict ({type(error).__name__}); pass pytorch-fid's "
            f"{FID_WEIGHTS_FILE}"
        ) from error
    if not isinstance(state, dict):
        raise ValueError(
            f"{path} holds a {type(state).__name__}, not a state dict; pass pytorch-fid's "
            f"{FID_WEIGHTS_FILE}"
        )
    net = FIDInceptionV3()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ValueError(
            f"{path} is not an FID Inception v3 state dict ({first}); pass pytorch-fid's "
            f"{FID_WEIGHTS_FILE}"
        ) from error
    logger.info("loaded FID Inception v3 weights from %s", path)
    return net


class FID(FrechetInceptionDistance):
    """FID with the FID Inception v3 loaded from a user-supplied file.

    `update(images, real)` takes (N, 3, H, W) RGB images in [0, 1] (any size; resized to 299
    inside); `compute()` returns the FID (0-d tensor) between all real and all generated images
    seen, DDP-synchronised (feature sums and Gram matrices are summed over ranks). At least two
    images of each kind are needed.

    Args:
        weights: path of `pt_inception-2015-12-05-6726825d.pth`; None looks in the torch hub cache.
        reset_real_features: also forget the real images' statistics on `reset()`; set False to
            reuse the real set's statistics across evaluations.

    Raises:
        MetricWeightsError: the weights file does not exist.
    """

    def __init__(self, weights: str | Path | None = None, reset_real_features: bool = True) -> None:
        super().__init__(
            feature=load_fid_inception(weights),
            reset_real_features=reset_real_features,
            normalize=True,
        )
