"""Evaluation metrics (DESIGN §5) as torchmetrics `Metric`s, synchronised under DDP."""

from pmfs.metrics.landmarks import (
    FaceLMD,
    LandmarkDistance,
    MouthLMD,
    MouthOpeningSync,
    Region,
    VelocityLMD,
    face_lmd,
    landmark_distance,
    mouth_lmd,
    mouth_opening_sync,
    offset_correlations,
    velocity_lmd,
)

__all__ = [
    "FaceLMD",
    "LandmarkDistance",
    "MouthLMD",
    "MouthOpeningSync",
    "Region",
    "VelocityLMD",
    "face_lmd",
    "landmark_distance",
    "mouth_lmd",
    "mouth_opening_sync",
    "offset_correlations",
    "velocity_lmd",
]
