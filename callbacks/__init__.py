"""Callbacks that own media and figure logging (W&B); training code never knows the logger."""

from callbacks.face_video import FaceVideoLogger
from callbacks.landmark_video import LandmarkVideoLogger
from callbacks.rng_state import RngState

__all__ = ["LandmarkVideoLogger", "RngState"]
__all__ += ["FaceVideoLogger"]
