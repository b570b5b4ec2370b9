"""One `LightningModule` per stage of the method (DESIGN §1)."""

from pmfs.stages.audio_to_mouth import AudioToMouth
from pmfs.stages.common import (
    LandmarkLossWeights,
    canonical_content,
    landmark_losses,
    landmark_metrics,
    place_content,
)
from pmfs.stages.mouth_to_face import MouthToFace

__all__ = [
    "AudioToMouth",
    "LandmarkLossWeights",
    "MouthToFace",
    "canonical_content",
    "landmark_losses",
    "landmark_metrics",
    "place_content",
]
