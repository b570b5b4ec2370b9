"""Random-weight files for the FID and SyncNet metrics in tests (no download, nothing committed).

Each writer builds the project's network, initialises it randomly but deterministically for a
seed, and saves its `state_dict()` under the published file name, so the loading code path is
the one real weights take. Convolutions and linear layers get He-normal weights (variance kept
through ReLU) and small random biases; batch norms get random affine parameters and running
statistics near (0, 1). Activations then stay O(1) through Inception's ~100 layers instead of
vanishing, which keeps the features informative enough to separate two image distributions.
Nothing is claimed about what the numbers mean.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pmfs.metrics.fid import FID_WEIGHTS_FILE, FIDInceptionV3
from pmfs.metrics.syncnet_model import SYNCNET_WEIGHTS_FILE, SyncNetV2

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def randomize(net: nn.Module, seed: int) -> nn.Module:
    """Re-initialise every conv, linear and batch-norm layer of `net` from `seed` (in place)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d | nn.Conv3d | nn.Linear):
                fan_in = module.weight[0].numel()
                std = (2.0 / fan_in) ** 0.5
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.01)
            elif isinstance(module, _NORMS):
                n = module.num_features
                module.weight.copy_(1.0 + 0.1 * torch.randn(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(1.0 + 0.1 * torch.rand(n, generator=generator))
    return net


def write_fid_weights(directory: Path, seed: int = 0) -> Path:
    """Save a random `FIDInceptionV3` state dict as `<directory>/pt_inception-...pth`."""
    path = Path(directory) / FID_WEIGHTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(randomize(FIDInceptionV3(), seed).state_dict(), path)
    return path


def write_syncnet_weights(directory: Path, seed: int = 0) -> Path:
    """Save a random `SyncNetV2` state dict as `<directory>/syncnet_v2.model`."""
    path = Path(directory) / SYNCNET_WEIGHTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(randomize(SyncNetV2(), seed).state_dict(), path)
    return path
