"""Evaluation metrics (DESIGN §5) as torchmetrics `Metric`s, synchronised under DDP."""

from pmfs.metrics.fid import FID, FIDInceptionV3, load_fid_inception
from pmfs.metrics.image import (
    FramePSNR,
    FrameSSIM,
    ImageMetric,
    MouthPSNR,
    MouthSSIM,
    crop_mouths,
    image_metrics,
    image_psnr,
    image_ssim,
)
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

# The functional `lpips` is not re-exported: it would shadow the submodule `pmfs.metrics.lpips`.
from pmfs.metrics.lpips import LPIPS, LPIPSNetwork, load_lpips_network, lpips_skip_reason
from pmfs.metrics.syncnet import (
    SyncNetScore,
    sync_distances,
    sync_scores,
    syncnet_embeddings,
    syncnet_frames,
    syncnet_mfcc,
)
from pmfs.metrics.syncnet_model import SyncNetV2, load_syncnet
from pmfs.metrics.weights import MetricWeightsError, check_weights

__all__ = [
    "FID",
    "LPIPS",
    "FIDInceptionV3",
    "FaceLMD",
    "FramePSNR",
    "FrameSSIM",
    "ImageMetric",
    "LPIPSNetwork",
    "LandmarkDistance",
    "MetricWeightsError",
    "MouthLMD",
    "MouthOpeningSync",
    "MouthPSNR",
    "MouthSSIM",
    "Region",
    "SyncNetScore",
    "SyncNetV2",
    "VelocityLMD",
    "check_weights",
    "crop_mouths",
    "face_lmd",
    "image_metrics",
    "image_psnr",
    "image_ssim",
    "landmark_distance",
    "load_fid_inception",
    "load_lpips_network",
    "load_syncnet",
    "lpips_skip_reason",
    "mouth_lmd",
    "mouth_opening_sync",
    "offset_correlations",
    "sync_distances",
    "sync_scores",
    "syncnet_embeddings",
    "syncnet_frames",
    "syncnet_mfcc",
    "velocity_lmd",
]
