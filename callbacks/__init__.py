"""Callbacks that own media and figure logging (W&B); training code never knows the logger.

`ValidationMediaLogger` (callbacks/media.py) is the shared skeleton of the validation media
callbacks; `FaceVideoLogger` and `LandmarkVideoLogger` keep only what they draw.
"""

from callbacks.face_video import FaceVideoLogger
from callbacks.landmark_video import LandmarkVideoLogger
from callbacks.media import ValidationMediaLogger
from callbacks.rng_state import RngState

__all__ = ["FaceVideoLogger", "LandmarkVideoLogger", "RngState", "ValidationMediaLogger"]
