"""Plain `nn.Module` networks of the stages, injected into them by `class_path` in YAML."""

from pmfs.networks.audio_to_mouth import AudioToMouthNet, MelWindowEncoder
from pmfs.networks.discriminator import MouthDiscriminator, MultiScalePatchDiscriminator
from pmfs.networks.face_renderer import (
    FaceRendererNet,
    ReferenceFeatures,
    RendererNetOutput,
)
from pmfs.networks.mouth_detail import MouthDetail, mouth_fields
from pmfs.networks.mouth_to_face import MouthToFaceNet, analytic_face, pose_similarity
from pmfs.networks.renderer_flops import renderer_flops

__all__ = [
    "AudioToMouthNet",
    "FaceRendererNet",
    "MelWindowEncoder",
    "MouthDetail",
    "MouthDiscriminator",
    "MouthToFaceNet",
    "MultiScalePatchDiscriminator",
    "ReferenceFeatures",
    "RendererNetOutput",
    "analytic_face",
    "mouth_fields",
    "pose_similarity",
    "renderer_flops",
]
