"""PMFS — Progressive Mouth-to-Face Synthesis.

Audio → mouth landmarks → whole-face landmarks → face image, as a PyTorch Lightning framework.
This module stays import-light: `pmfs --help` must not pay for torch, lightning or librosa.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
