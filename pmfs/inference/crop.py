"""From the template to the model's clip and back: the crop, the clip, the paste-back.

`crop_box` places preprocessing's stable square crop (`pmfs.faces.crop.stable_box`) on the
template's face track; `build_clip_inputs` cuts every template frame to the model's image size
and picks K references spread over mouth opening; `paste_back` puts each generated face into its
original-resolution frame through a feathered mask of the lower face (`paste_masks`: inside the
jaw line, below the nose); everything else — hair, background, the upper face — keeps the
original pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pmfs.audio import mel_windows, num_video_frames
from pmfs.clip import ClipInputs
from pmfs.data.references import spread_reference_indices
from pmfs.faces import TEMPLATE_CROP_SCALE, TEMPLATE_CROP_SHIFT
from pmfs.faces.crop import CropBox, crop_frame, points_to_crop, stable_box
from pmfs.inference.template import Template, playback_indices
from pmfs.inference.tracking import FaceTrack
from pmfs.landmarks import mouth_opening, pixels_to_normalized
from pmfs.masks import lower_face_mask


def crop_box(track: FaceTrack, scale: float | None = None, shift: float | None = None) -> CropBox:
    """The stable square crop of the template, placed as preprocessing places it.

    Args:
        track: the template's faces.
        scale: crop side / face size; None: preprocessing's default
            (`pmfs.faces.TEMPLATE_CROP_SCALE`).
        shift: downward shift of the crop centre in face sizes; None: preprocessing's default
            (`pmfs.faces.TEMPLATE_CROP_SHIFT`).
    """
    scale = TEMPLATE_CROP_SCALE if scale is None else scale
    shift = TEMPLATE_CROP_SHIFT if shift is None else shift
    return stable_box(track.landmarks, scale, shift)


def build_clip_inputs(
    template: Template,
    track: FaceTrack,
    box: CropBox,
    audio: np.ndarray,
    size: int,
    num_references: int = 3,
    emotion: int | None = None,
    level: int | None = None,
) -> tuple[ClipInputs, np.ndarray]:
    """The cropped clip the model runs on, one frame per 25 fps frame of the audio.

    References: K template frames spread over mouth opening, or the image itself K times. The
    M template crops are kept once (`ClipInputs.frame_order` plays them to the N output frames;
    the renderer builds each chunk's frames on demand), so memory does not grow with the
    audio's length: only the (N, 80, 16) mel windows and (N, 68, 2) landmarks do.

    Args:
        template: the target's frames; track: their faces; box: the crop.
        audio: (A,) float32 16 kHz mono.
        size: the model's image size.

    Returns:
        The clip (CPU tensors; `frames` (M, 3, S, S), landmarks (N, 68, 2) normalized over the
        crop) and the (N,) template index of each output frame.
    """
    n = num_video_frames(len(audio))
    order = playback_indices(template.num_frames, n)
    crops = np.stack([crop_frame(f, box, size) for f in template.frames])  # (M, S, S, 3)
    frames = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0  # (M, 3, S, S)
    points = pixels_to_normalized(points_to_crop(track.landmarks, box, size), size)  # (M, 68, 2)
    landmarks = torch.from_numpy(points).float()
    refs = spread_reference_indices(mouth_opening(points), num_references)
    index = torch.from_numpy(order)
    clip = ClipInputs(
        mel=torch.from_numpy(mel_windows(audio, n)).float(),
        frames=frames,
        landmarks=landmarks[index],
        ref_frames=frames[refs],
        ref_landmarks=landmarks[refs],
        emotion=emotion,
        level=level,
        audio=audio,
        frame_order=index,
    )
    return clip, order


def paste_masks(generated: Tensor, template: Tensor, size: int) -> Tensor:
    """Where the generated crop replaces the template: the lower face of either.

    The union of `pmfs.masks.lower_face_mask` (inside the jaw line, below the nose) of the
    generated and of the template landmarks (the jaw may move; an opening mouth lowers the chin),
    feathered inside the outlines. Everything outside both jaw lines — hair, background, neck,
    ears — and the upper face keep the original frame's pixels exactly, at the original
    resolution.

    Args:
        generated: (c, 68, 2) normalized landmarks of the generated frames.
        template: (c, 68, 2) normalized landmarks of the template frames.
        size: S.

    Returns:
        (c, 1, S, S) float32 in [0, 1], 0 outside both lower faces.
    """
    feather = max(2.0, size / 32)
    return torch.maximum(
        lower_face_mask(generated, size, feather=feather),
        lower_face_mask(template, size, feather=feather),
    )


def paste_back(frame: np.ndarray, face: Tensor, mask: Tensor, box: CropBox) -> np.ndarray:
    """Put a generated crop back into its original frame (the inverse of `crop_frame`).

    The crop and its mask are resized from S × S to the box's side (bilinear,
    `align_corners=False`, the pixel-centre mapping of `points_to_crop`) and blended into the
    part of the box inside the frame; pixels where the mask is 0 are left exactly as they were.

    Args:
        frame: (H, W, 3) uint8 RGB original frame.
        face: (3, S, S) float32 [0, 1] generated crop.
        mask: (1, S, S) float32 [0, 1] blend weight of the generated crop.
        box: the crop box in `frame`'s pixels.

    Returns:
        (H, W, 3) uint8, a new array.
    """
    h, w = frame.shape[:2]
    x0, y0 = max(box.x0, 0), max(box.y0, 0)
    x1, y1 = min(box.x0 + box.side, w), min(box.y0 + box.side, h)
    out = frame.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    stack = torch.cat([face, mask]).float().cpu()[None]  # (1, 4, S, S)
    big = F.interpolate(stack, size=(box.side, box.side), mode="bilinear", align_corners=False)
    big = big[0, :, y0 - box.y0 : y1 - box.y0, x0 - box.x0 : x1 - box.x0]  # (4, h', w')
    region = torch.from_numpy(np.array(frame[y0:y1, x0:x1])).permute(2, 0, 1).float() / 255.0
    alpha = big[3:].clamp(0, 1)
    blended = ((region + alpha * (big[:3].clamp(0, 1) - region)) * 255).round()
    pixels = blended.clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    keep = (alpha[0] <= 0).numpy()[..., None]
    out[y0:y1, x0:x1] = np.where(keep, frame[y0:y1, x0:x1], pixels)
    return out
