"""Callbacks that own media and figure logging (W&B); training code never knows the logger."""

from callbacks.landmark_video import LandmarkVideoLogger

__all__ = ["LandmarkVideoLogger"]
