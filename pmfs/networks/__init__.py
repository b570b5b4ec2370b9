"""Plain `nn.Module` networks of the stages, injected into them by `class_path` in YAML."""

from pmfs.networks.audio_to_mouth import AudioToMouthNet, MelWindowEncoder
from pmfs.networks.discriminator import MultiScalePatchDiscriminator
from pmfs.networks.face_renderer import (
    FaceRendererNet,
    ReferenceFeatures,
    RendererNetOutput,
    renderer_flops,
)
from pmfs.networks.mouth_to_face import MouthToFaceNet, analytic_face, pose_similarity

__all__ = [
    "AudioToMouthNet",
    "FaceRendererNet",
    "MelWindowEncoder",
    "MouthToFaceNet",
    "MultiScalePatchDiscriminator",
    "ReferenceFeatures",
    "RendererNetOutput",
    "analytic_face",
    "pose_similarity",
    "renderer_flops",
]
