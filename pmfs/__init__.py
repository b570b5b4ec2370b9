"""PMFS — Progressive Mouth-to-Face Synthesis.

Audio → mouth landmarks → whole-face landmarks → face image, as a PyTorch Lightning framework.
This module stays import-light: `pmfs --help` must not pay for torch, lightning or librosa.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["PMFS", "__version__"]

if TYPE_CHECKING:
    from pmfs.stages.system import PMFS


def __getattr__(name: str) -> Any:
    """`pmfs.PMFS` is imported on first use, so `import pmfs` stays light."""
    if name == "PMFS":
        from pmfs.stages.system import PMFS

        return PMFS
    raise AttributeError(f"module 'pmfs' has no attribute {name!r}")
