"""Random-weight LPIPS files for tests (no download, nothing committed).

`write_random_lpips_weights(directory)` saves two state dicts with the key names and shapes of the
real files: torchvision's `alexnet-owt-7be5be79.pth` (`features.{0,3,6,8,10}.{weight,bias}` plus
`classifier.*` keys, which the loader ignores and which are therefore kept tiny here instead of
the real 57 M parameters) and the lpips package's v0.1 `alex.pth` (`lin{0..4}.model.1.weight`,
`(1, C, 1, 1)`, non-negative as the trained heads are). The shapes are written out here from the
torchvision / lpips sources, not taken from `pmfs`, so a layout mistake there fails the tests.
"""

from __future__ import annotations

from pathlib import Path

import torch

# torchvision AlexNet `features` convolutions: index -> (out, in, k).
ALEXNET_CONVS = {
    0: (64, 3, 11),
    3: (192, 64, 5),
    6: (384, 192, 3),
    8: (256, 384, 3),
    10: (256, 256, 3),
}
# lpips v0.1 linear heads: channels of relu1..relu5.
LPIPS_CHANNELS = (64, 192, 384, 256, 256)


def random_alexnet_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """AlexNet-shaped state dict with He-like random convolutions (features stay non-trivial)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for index, (out, inp, k) in ALEXNET_CONVS.items():
        fan_in = inp * k * k
        state[f"features.{index}.weight"] = (
            torch.randn(out, inp, k, k, generator=gen) * (2.0 / fan_in) ** 0.5
        )
        state[f"features.{index}.bias"] = 0.01 * torch.randn(out, generator=gen)
    for index in (1, 4, 6):  # classifier Linear layers, shrunk (ignored by the loader)
        state[f"classifier.{index}.weight"] = torch.zeros(2, 2)
        state[f"classifier.{index}.bias"] = torch.zeros(2)
    return state


def random_lpips_state(seed: int = 1) -> dict[str, torch.Tensor]:
    """lpips `alex.pth`-shaped state dict of non-negative random 1×1 heads."""
    gen = torch.Generator().manual_seed(seed)
    return {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen) / c
        for i, c in enumerate(LPIPS_CHANNELS)
    }


def write_random_lpips_weights(directory: Path, seed: int = 0) -> tuple[Path, Path]:
    """Save both files into `directory`; returns `(alexnet_path, lpips_path)`."""
    directory.mkdir(parents=True, exist_ok=True)
    backbone = directory / "alexnet-owt-7be5be79.pth"
    heads = directory / "alex.pth"
    torch.save(random_alexnet_state(seed), backbone)
    torch.save(random_lpips_state(seed + 1), heads)
    return backbone, heads
