"""Image metrics (DESIGN §5): PSNR and SSIM over the whole crop and over the mouth box.

Images are `(B, 3, H, W)` float tensors in [0, 1] (data range 1; values are not clamped, so feed
what the model would save). Every metric reports the **mean over images of the per-image value**:
each image's PSNR / SSIM is computed on its own and the values are averaged, so a batch of 2
weighs twice a batch of 1 whatever the image size. The states are a sum and a count with
`dist_reduce_fx="sum"`, so `compute()` gives the same number on every DDP rank as on one process
fed all the data.

- PSNR: `10 log10(1 / MSE)` with the MSE over the image's channels and pixels; an image equal to
  its target has MSE 0 and PSNR `inf` (as torchmetrics), which makes the mean `inf` too.
- SSIM: Wang et al. (2004) with an 11×11 Gaussian window of σ 1.5, K1 0.01, K2 0.03, as
  torchmetrics computes it: the images are reflect-padded by 5 pixels and the SSIM map is averaged
  over channels and *all* H×W pixels. (skimage's `structural_similarity` averages only the pixels
  at least 5 from the border, so its numbers differ slightly, by ~1e-3 on 48² noise.)

The mouth metrics crop `pmfs.landmarks.mouth_box` of the *ground-truth* landmarks out of both
images (the pixels whose centres lie in the box, as `mouth_box_mask`) and resize both crops to
`crop_size`² (bilinear, antialiased) before computing, so that every mouth counts the same
whatever its size in the frame.

All four metrics share `update(preds, target, landmarks)` so one `MetricCollection`
(`image_metrics`) updates them together; the frame metrics ignore `landmarks`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.functional.image import structural_similarity_index_measure

from pmfs.landmarks import NUM_LANDMARKS, mouth_box

__all__ = [
    "FramePSNR",
    "FrameSSIM",
    "ImageMetric",
    "MouthPSNR",
    "MouthSSIM",
    "crop_mouths",
    "image_metrics",
    "image_psnr",
    "image_ssim",
]

SSIM_SIGMA = 1.5
SSIM_KERNEL_SIZE = 11


# ----------------------------------------------------------------------------------------------
# Functional core
# ----------------------------------------------------------------------------------------------


def _check_images(preds: Tensor, target: Tensor) -> None:
    """Check that `preds`, `target` are equal-shaped `(B, 3, H, W)` floating tensors."""
    for name, value in (("preds", preds), ("target", target)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.ndim != 4 or value.shape[1] != 3 or not value.is_floating_point():
            raise ValueError(
                f"{name} must be a float (B, 3, H, W) image tensor in [0, 1], got "
                f"{tuple(value.shape)} {value.dtype}"
            )
    if preds.shape != target.shape:
        raise ValueError(
            f"preds and target must have the same shape, got {tuple(preds.shape)} "
            f"and {tuple(target.shape)}"
        )


def image_psnr(preds: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB of each image, data range 1.

    Args:
        preds: (B, 3, H, W) images in [0, 1].
        target: (B, 3, H, W) images in [0, 1].

    Returns:
        (B,) `10 log10(1 / MSE)` per image; `inf` where an image equals its target.
    """
    _check_images(preds, target)
    mse = (preds - target).square().mean(dim=(1, 2, 3))  # (B,)
    return -10.0 * torch.log10(mse)


def image_ssim(preds: Tensor, target: Tensor) -> Tensor:
    """SSIM of each image: Gaussian 11×11 window, σ 1.5, data range 1 (torchmetrics).

    Args:
        preds: (B, 3, H, W) images in [0, 1], H and W at least 11.
        target: (B, 3, H, W) images in [0, 1].

    Returns:
        (B,) SSIM per image, mean over channels and pixels; 1 for identical images.
    """
    _check_images(preds, target)
    if min(preds.shape[-2:]) < SSIM_KERNEL_SIZE:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_KERNEL_SIZE}×{SSIM_KERNEL_SIZE} pixels, got "
            f"{tuple(preds.shape[-2:])}; use a larger crop_size"
        )
    ssim = structural_similarity_index_measure(
        preds,
        target,
        gaussian_kernel=True,
        sigma=SSIM_SIGMA,
        kernel_size=SSIM_KERNEL_SIZE,
        reduction="none",
        data_range=1.0,
    )
    assert isinstance(ssim, Tensor)  # a tuple only with return_full_image / contrast
    return ssim


def _check_landmarks(landmarks: Tensor | None, batch: int) -> Tensor:
    if landmarks is None:
        raise ValueError("mouth metrics need the ground-truth landmarks (B, 68, 2), got None")
    if landmarks.ndim != 3 or tuple(landmarks.shape[1:]) != (NUM_LANDMARKS, 2):
        raise ValueError(
            f"landmarks must have shape (B, 68, 2) (the target frame's, normalized [-1, 1]); got "
            f"{tuple(landmarks.shape)}. For a (B, T, 68, 2) window pass landmarks[:, T // 2]"
        )
    if landmarks.shape[0] != batch:
        raise ValueError(f"landmarks hold {landmarks.shape[0]} faces for {batch} images")
    return landmarks


def crop_mouths(images: Tensor, boxes: Tensor, crop_size: int) -> Tensor:
    """Cut each image's box out and resize it to `crop_size`² (bilinear, antialiased).

    A pixel `(i, j)` is in the crop when its centre lies in the box, `x0 <= j + 0.5 <= x1` and
    `y0 <= i + 0.5 <= y1` (the rule of `pmfs.landmarks.mouth_box_mask`).

    Args:
        images: (B, C, H, W) images.
        boxes: (B, 4) pixel edge coordinates `(x0, y0, x1, y1)` from `mouth_box`.
        crop_size: side of the resized crops in pixels.

    Returns:
        (B, C, crop_size, crop_size) crops, same dtype as `images`.
    """
    if boxes.ndim != 2 or boxes.shape != (images.shape[0], 4):
        raise ValueError(f"boxes must have shape ({images.shape[0]}, 4), got {tuple(boxes.shape)}")
    # First and one-past-last pixel index whose centre is inside, at least one pixel per side.
    first = torch.ceil(boxes[:, :2] - 0.5).long().clamp(min=0).tolist()  # (B, 2) x, y
    stop = (torch.floor(boxes[:, 2:] - 0.5).long() + 1).tolist()
    crops = []
    for image, (x0, y0), (x1, y1) in zip(images, first, stop, strict=True):
        x1, y1 = max(min(x1, image.shape[-1]), x0 + 1), max(min(y1, image.shape[-2]), y0 + 1)
        crop = image[None, :, y0:y1, x0:x1]  # (1, C, h, w)
        crops.append(
            F.interpolate(
                crop,
                size=(crop_size, crop_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        )
    return torch.cat(crops)


def _mouth_pair(
    preds: Tensor, target: Tensor, landmarks: Tensor | None, crop_size: int
) -> tuple[Tensor, Tensor]:
    """The mouth crops of `preds` and `target`, both cut at the box of the true landmarks."""
    _check_images(preds, target)
    if preds.shape[-1] != preds.shape[-2]:
        raise ValueError(f"mouth metrics need square images, got {tuple(preds.shape[-2:])}")
    landmarks = _check_landmarks(landmarks, preds.shape[0])
    boxes = mouth_box(landmarks, preds.shape[-1]).cpu()  # (B, 4); indices are needed on host
    return crop_mouths(preds, boxes, crop_size), crop_mouths(target, boxes, crop_size)


def _check_crop_size(crop_size: int) -> None:
    if not isinstance(crop_size, int) or crop_size < SSIM_KERNEL_SIZE:
        raise ValueError(
            f"crop_size must be an int >= {SSIM_KERNEL_SIZE} (pixels, the SSIM window), "
            f"got {crop_size!r}"
        )


# ----------------------------------------------------------------------------------------------
# torchmetrics classes
# ----------------------------------------------------------------------------------------------


class ImageMetric(Metric):
    """Base of the image metrics: the mean over images of a per-image score.

    Subclasses implement `_scores(preds, target, landmarks) -> (B,)`. `update(preds, target,
    landmarks)` takes `(B, 3, H, W)` images in [0, 1] and the target frame's `(B, 68, 2)`
    normalized landmarks (ignored by the frame metrics, may be None there).
    """

    is_differentiable = False
    full_state_update = False

    total: Tensor
    count: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def _scores(self, preds: Tensor, target: Tensor, landmarks: Tensor | None) -> Tensor:
        raise NotImplementedError

    def update(self, preds: Tensor, target: Tensor, landmarks: Tensor | None = None) -> None:
        """Add a batch: (B, 3, H, W) images in [0, 1] and (B, 68, 2) true landmarks."""
        with torch.no_grad():
            scores = self._scores(preds.detach(), target.detach(), landmarks)  # (B,)
        self.total += scores.sum().to(self.total.dtype)
        self.count += scores.numel()

    def compute(self) -> Tensor:
        """Mean per-image score (0-d); NaN with a warning from torchmetrics if never updated."""
        return self.total / self.count


class FramePSNR(ImageMetric):
    """PSNR (dB, data range 1) of whole frames, mean over images; `landmarks` is ignored."""

    higher_is_better = True

    def _scores(self, preds: Tensor, target: Tensor, landmarks: Tensor | None) -> Tensor:
        return image_psnr(preds, target)


class FrameSSIM(ImageMetric):
    """SSIM (Gaussian 11×11, σ 1.5) of whole frames, mean over images; `landmarks` is ignored."""

    higher_is_better = True

    def _scores(self, preds: Tensor, target: Tensor, landmarks: Tensor | None) -> Tensor:
        return image_ssim(preds, target)


class MouthPSNR(ImageMetric):
    """PSNR of the mouth box of the true landmarks, resized to `crop_size`², mean over images.

    Args:
        crop_size: side in pixels the mouth crops are resized to (>= 11).
    """

    higher_is_better = True

    def __init__(self, crop_size: int = 64) -> None:
        super().__init__()
        _check_crop_size(crop_size)
        self.crop_size = crop_size

    def _scores(self, preds: Tensor, target: Tensor, landmarks: Tensor | None) -> Tensor:
        return image_psnr(*_mouth_pair(preds, target, landmarks, self.crop_size))


class MouthSSIM(ImageMetric):
    """SSIM of the mouth box of the true landmarks, resized to `crop_size`², mean over images.

    Args:
        crop_size: side in pixels the mouth crops are resized to (>= 11).
    """

    higher_is_better = True

    def __init__(self, crop_size: int = 64) -> None:
        super().__init__()
        _check_crop_size(crop_size)
        self.crop_size = crop_size

    def _scores(self, preds: Tensor, target: Tensor, landmarks: Tensor | None) -> Tensor:
        return image_ssim(*_mouth_pair(preds, target, landmarks, self.crop_size))


def image_metrics(prefix: str, crop_size: int = 64) -> MetricCollection:
    """PSNR and SSIM over the frame and the mouth box, updated together.

    Args:
        prefix: prepended to every key, e.g. "val/" gives "val/psnr".
        crop_size: side of the resized mouth crops.

    Returns:
        A `MetricCollection` with keys `psnr`, `ssim`, `mouth_psnr`, `mouth_ssim` (after the
        prefix); `update(preds, target, landmarks)` as `ImageMetric.update`. Compute groups are
        off: the four metrics have same-named states that can coincide after one batch (e.g.
        SSIM 1 for identical images), and torchmetrics would then wrongly merge them.
    """
    return MetricCollection(
        {
            "psnr": FramePSNR(),
            "ssim": FrameSSIM(),
            "mouth_psnr": MouthPSNR(crop_size),
            "mouth_ssim": MouthSSIM(crop_size),
        },
        prefix=prefix,
        compute_groups=False,
    )
