"""Plain `nn.Module` networks of the stages, injected into them by `class_path` in YAML."""

from pmfs.networks.audio_to_mouth import AudioToMouthNet, MelWindowEncoder
from pmfs.networks.mouth_to_face import MouthToFaceNet, analytic_face, pose_similarity

__all__ = [
    "AudioToMouthNet",
    "MelWindowEncoder",
    "MouthToFaceNet",
    "analytic_face",
    "pose_similarity",
]
