"""One `LightningModule` per stage of the method (DESIGN §1)."""

from pmfs.stages.audio_to_mouth import AudioToMouth
from pmfs.stages.common import canonical_content, landmark_metrics, place_content
from pmfs.stages.curriculum import CoarseToFine, Curriculum, Ramp
from pmfs.stages.face_renderer import (
    DiscriminatorConfig,
    FaceRenderer,
    RendererLossWeights,
    RendererOutput,
)
from pmfs.stages.mouth_to_face import MouthToFace
from pmfs.stages.system import PMFS, StageCheckpoints

__all__ = [
    "PMFS",
    "AudioToMouth",
    "CoarseToFine",
    "Curriculum",
    "DiscriminatorConfig",
    "FaceRenderer",
    "MouthToFace",
    "Ramp",
    "RendererLossWeights",
    "RendererOutput",
    "StageCheckpoints",
    "canonical_content",
    "landmark_metrics",
    "place_content",
]
