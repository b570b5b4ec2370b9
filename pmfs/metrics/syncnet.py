"""SyncNet LSE-D / LSE-C (DESIGN §5) with the `syncnet_v2` weights of Chung & Zisserman (2016).

The scores are those of syncnet_python's `SyncNetInstance.evaluate`, as Wav2Lip's evaluation
scripts report them (LSE-D = "min dist", LSE-C = "confidence"):

1. Audio: 16 kHz mono, scaled to int16 range (syncnet_python reads the wav with
   `scipy.io.wavfile`, so its MFCCs see int16 sample values; the scale shifts the log
   energies), then `python_speech_features.mfcc` with its defaults: pre-emphasis 0.97, 25 ms
   frames every 10 ms (400 / 160 samples, the last frame zero-padded), no window, 512-point
   power spectrum, 26 triangular mel filters 0–8 kHz, log, orthonormal DCT-II, 13 cepstra,
   lifter 22, and the first coefficient replaced by the log frame energy. 100 MFCC frames/s:
   (13, M). Reimplemented here in numpy (`syncnet_mfcc`).
2. Video: the face crops as syncnet_python's `run_pipeline.crop_video` writes them — the whole
   face crop (box + 40 % margin), resized to 224×224 with `cv2.resize` (bilinear), BGR, values
   0–255 unnormalised. `evaluate` feeds the whole 224² crop (no lower-half crop; that is
   Wav2Lip's expert discriminator, not SyncNet v2). Here: (T, 3, H, W) RGB in [0, 1] → channels
   flipped to BGR, ×255, resized to 224² bilinearly (`align_corners=False`, no antialias).
3. Embeddings: with `L = min(T, floor(samples / 640))`, window `i` for `i < L - 5` (as
   `evaluate`'s `range(0, lastframe)`) is the 5 frames `i..i+4` → `netcnnlip`+`netfclip`, and
   the 20 MFCC frames `4i..4i+19` → `netcnnaud`+`netfcaud`; both (N, 1024), N = L - 5.
4. Distances (`calc_pdist`): video window `i` against audio windows `i + k` for offsets
   `k ∈ [-vshift, vshift]` (the audio stream zero-padded), Euclidean distance:
   `D[i, k]`, (N, 2·vshift + 1). `mdist[k] = mean_i D[i, k]`.
   - LSE-D = `min_k mdist[k]` (lower is better);
   - LSE-C = `median_k mdist[k] - min_k mdist[k]` (higher is better);
   - offset = `-argmin_k mdist[k]`, i.e. syncnet_python's `vshift - minidx`: video frame `i`
     matches audio frame `i - offset` best (audio embeddings `a[t] = v[t + s]` give offset `s`).
   vshift is 15 as in Wav2Lip's `calculate_scores_*` scripts (syncnet_python's demo uses 10).

The network and its weights (`SyncNetV2`, `load_syncnet`) are in `syncnet_model.py`.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from pmfs.audio import SAMPLE_RATE
from pmfs.metrics.syncnet_model import SyncNetV2, load_syncnet

__all__ = [
    "MFCC_NUM_CEPSTRA",
    "SYNCNET_DEFAULT_VSHIFT",
    "SyncNetScore",
    "sync_distances",
    "sync_scores",
    "syncnet_embeddings",
    "syncnet_frames",
    "syncnet_mfcc",
]

SYNCNET_DEFAULT_VSHIFT = 15
"""Offsets searched, in video frames (±), as Wav2Lip's LSE scripts."""
SYNCNET_INPUT_SIZE = 224
VIDEO_STACK = 5
"""Video frames per lip window (0.2 s at 25 fps)."""
MFCC_PER_FRAME = 4
"""MFCC frames per video frame (100 / 25)."""
MFCC_WINDOW = 20
"""MFCC frames per audio window (0.2 s)."""
MFCC_NUM_CEPSTRA = 13
_SAMPLES_PER_FRAME = 640  # 16000 / 25
_INT16_SCALE = 32768.0
_PREEMPH = 0.97
_WIN_LENGTH = 400  # 25 ms
_HOP_LENGTH = 160  # 10 ms
_NFFT = 512
_NUM_FILTERS = 26
_CEPLIFTER = 22
_EPS = float(np.finfo(float).eps)


# ----------------------------------------------------------------------------------------------
# MFCC (python_speech_features.mfcc defaults)
# ----------------------------------------------------------------------------------------------


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return np.asarray(2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0))


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return np.asarray(700.0 * (10.0 ** (mel / 2595.0) - 1.0))


@functools.cache
def _mfcc_filterbank() -> np.ndarray:
    """python_speech_features' triangular filters on FFT bins: (26, 257), read-only."""
    mels = np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), _NUM_FILTERS + 2)
    edges = np.floor((_NFFT + 1) * _mel_to_hz(mels) / SAMPLE_RATE)  # (28,) bin numbers
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (26, 1)
    bins = np.arange(_NFFT // 2 + 1)[None, :]  # (1, 257)
    rising = (bins >= lower) & (bins < centre)
    falling = (bins >= centre) & (bins < upper)
    up = (bins - lower) / np.maximum(centre - lower, 1.0)
    down = (upper - bins) / np.maximum(upper - centre, 1.0)
    bank = np.where(rising, up, 0.0) + np.where(falling, down, 0.0)  # (26, 257)
    bank.setflags(write=False)
    return bank


@functools.cache
def _dct_matrix() -> np.ndarray:
    """First 13 rows of the orthonormal DCT-II on 26 points, times the lifter: (13, 26)."""
    k = np.arange(MFCC_NUM_CEPSTRA)[:, None]
    n = np.arange(_NUM_FILTERS)[None, :]
    dct = np.sqrt(2.0 / _NUM_FILTERS) * np.cos(np.pi * k * (2 * n + 1) / (2 * _NUM_FILTERS))
    dct[0] /= np.sqrt(2.0)
    lift = 1.0 + (_CEPLIFTER / 2.0) * np.sin(np.pi * np.arange(MFCC_NUM_CEPSTRA) / _CEPLIFTER)
    matrix = lift[:, None] * dct
    matrix.setflags(write=False)
    return matrix


def _frames(signal: np.ndarray) -> np.ndarray:
    """python_speech_features' `framesig`: 400-sample frames every 160, zero-padded: (M, 400)."""
    num = 1
    if signal.size > _WIN_LENGTH:
        num = 1 + math.ceil((signal.size - _WIN_LENGTH) / _HOP_LENGTH)
    padded = np.zeros((num - 1) * _HOP_LENGTH + _WIN_LENGTH)
    padded[: signal.size] = signal
    return np.lib.stride_tricks.sliding_window_view(padded, _WIN_LENGTH)[::_HOP_LENGTH]


def syncnet_mfcc(audio: np.ndarray) -> np.ndarray:
    """MFCCs as syncnet_python computes them (see the module docstring).

    Args:
        audio: (S,) mono waveform at 16 kHz, full scale 1.0 (scaled to int16 range inside).

    Returns:
        (13, M) float32, M = 1 + ceil((S - 400) / 160) (1 if S <= 400): 100 frames per second,
        row 0 the log frame energy, rows 1–12 the liftered cepstra.
    """
    signal = np.asarray(audio, dtype=np.float64)
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"audio must be a non-empty (S,) waveform, got shape {signal.shape}")
    signal = signal * _INT16_SCALE
    signal = np.append(signal[0], signal[1:] - _PREEMPH * signal[:-1])
    power = np.abs(np.fft.rfft(_frames(signal), _NFFT, axis=1)) ** 2 / _NFFT  # (M, 257)
    energy = power.sum(axis=1)  # (M,)
    energy = np.where(energy == 0, _EPS, energy)
    bands = power @ _mfcc_filterbank().T  # (M, 26)
    bands = np.where(bands == 0, _EPS, bands)
    cepstra = np.log(bands) @ _dct_matrix().T  # (M, 13)
    cepstra[:, 0] = np.log(energy)
    return np.ascontiguousarray(cepstra.T, dtype=np.float32)


# ----------------------------------------------------------------------------------------------
# Inputs, embeddings, scores
# ----------------------------------------------------------------------------------------------


def syncnet_frames(frames: Tensor) -> Tensor:
    """Face crops as SyncNet's lip tower reads them.

    Args:
        frames: (T, 3, H, W) RGB face crops in [0, 1] (float) or [0, 255] (uint8).

    Returns:
        (T, 3, 224, 224) float32 BGR in [0, 255], resized bilinearly (`align_corners=False`,
        no antialias, as `cv2.resize`).
    """
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must have shape (T, 3, H, W), got {tuple(frames.shape)}")
    x = frames.float() if frames.dtype == torch.uint8 else frames.float() * 255.0
    x = x.flip(1)  # RGB → BGR
    if tuple(x.shape[-2:]) != (SYNCNET_INPUT_SIZE, SYNCNET_INPUT_SIZE):
        size = (SYNCNET_INPUT_SIZE, SYNCNET_INPUT_SIZE)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x


def _num_windows(num_frames: int, num_samples: int) -> int:
    """Windows scored by syncnet_python: min(T, floor(S / 640)) - 5."""
    count = min(num_frames, num_samples // _SAMPLES_PER_FRAME) - VIDEO_STACK
    if count < 1:
        raise ValueError(
            f"a clip of {num_frames} frames and {num_samples} samples is too short for SyncNet: "
            f"it needs at least {VIDEO_STACK + 1} frames and {VIDEO_STACK + 1} × 640 samples"
        )
    return count


@torch.no_grad()
def syncnet_embeddings(
    net: SyncNetV2, frames: Tensor, audio: Tensor | np.ndarray, batch_size: int = 20
) -> tuple[Tensor, Tensor]:
    """Lip and audio embeddings of a clip's sliding 0.2 s windows.

    Args:
        net: the SyncNet; its device is used.
        frames: (T, 3, H, W) RGB face crops, [0, 1] float or uint8, 25 fps.
        audio: (S,) mono waveform at 16 kHz, full scale 1.0, aligned with frame 0.
        batch_size: windows per forward pass.

    Returns:
        `(video, audio)` embeddings, each (N, 1024), N = min(T, S // 640) - 5; row `i` covers
        frames `i..i+4` and MFCC frames `4i..4i+19`.
    """
    waveform = audio.detach().cpu().numpy() if isinstance(audio, Tensor) else np.asarray(audio)
    count = _num_windows(frames.shape[0], waveform.shape[-1])
    device = next(net.parameters()).device
    mfcc = torch.from_numpy(syncnet_mfcc(waveform)).to(device)  # (13, M)
    video_parts, audio_parts = [], []
    for start in range(0, count, batch_size):
        index = range(start, min(count, start + batch_size))
        clip = syncnet_frames(frames[start : index[-1] + VIDEO_STACK].to(device))
        stacks = clip.unfold(0, VIDEO_STACK, 1).permute(0, 1, 4, 2, 3)  # (B, 3, 5, 224, 224)
        video_parts.append(net.forward_lip(stacks))
        mfcc_windows = [
            mfcc[:, MFCC_PER_FRAME * i : MFCC_PER_FRAME * i + MFCC_WINDOW] for i in index
        ]
        audio_parts.append(net.forward_aud(torch.stack(mfcc_windows)[:, None]))  # (B, 1, 13, 20)
    return torch.cat(video_parts), torch.cat(audio_parts)


def sync_distances(video: Tensor, audio: Tensor, vshift: int = SYNCNET_DEFAULT_VSHIFT) -> Tensor:
    """Distances of each video window to the audio windows around it (`calc_pdist`).

    Args:
        video: (N, D) video embeddings.
        audio: (N, D) audio embeddings of the same windows.
        vshift: largest offset in frames.

    Returns:
        (N, 2·vshift + 1): column `j` is `|video[i] - audio[i + j - vshift]|` (torch's
        `pairwise_distance`, eps 1e-6), with zero vectors for audio outside the clip.
    """
    if video.ndim != 2 or video.shape != audio.shape:
        raise ValueError(
            "video and audio embeddings must both have shape (N, D), got "
            f"{tuple(video.shape)} and {tuple(audio.shape)}"
        )
    if not isinstance(vshift, int) or vshift < 0:
        raise ValueError(f"vshift must be a non-negative int (frames), got {vshift!r}")
    width = 2 * vshift + 1
    padded = F.pad(audio, (0, 0, vshift, vshift))  # (N + 2·vshift, D)
    windows = padded.unfold(0, width, 1).transpose(1, 2)  # (N, width, D)
    return F.pairwise_distance(video[:, None, :].expand_as(windows), windows)


def sync_scores(distances: Tensor, vshift: int = SYNCNET_DEFAULT_VSHIFT) -> dict[str, Tensor]:
    """LSE-D, LSE-C and A/V offset from `sync_distances` (syncnet_python's `evaluate`).

    Args:
        distances: (N, 2·vshift + 1) from `sync_distances`.
        vshift: the offset range it was computed with.

    Returns:
        {"lse_d": min over offsets of the mean distance, "lse_c": median minus that minimum,
        "offset": `vshift - argmin` (int64; video frame i matches audio frame i - offset)},
        each 0-d.
    """
    if distances.ndim != 2 or distances.shape[1] != 2 * vshift + 1:
        raise ValueError(
            f"distances must have shape (N, {2 * vshift + 1}) for vshift={vshift}, got "
            f"{tuple(distances.shape)}"
        )
    mean_distance = distances.mean(dim=0)  # (2·vshift + 1,)
    min_value, min_index = torch.min(mean_distance, dim=0)
    return {
        "lse_d": min_value,
        "lse_c": torch.median(mean_distance) - min_value,
        "offset": (vshift - min_index).to(torch.int64),
    }


class SyncNetScore(Metric):
    """SyncNet LSE-D / LSE-C / A/V offset, averaged over clips (syncnet_python's definitions).

    `score(frames, audio)` scores one clip; `update(frames, audio)` adds one clip; `compute()`
    returns the means over clips, DDP-synchronised: {"lse_d", "lse_c", "offset", "abs_offset"}.

    Args:
        weights: `syncnet_v2.model`; None looks in the torch hub cache.
        vshift: offsets searched, ± frames (15 as Wav2Lip's scripts).
        batch_size: 5-frame windows per forward pass.

    Raises:
        MetricWeightsError: the weights file does not exist.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    lse_d_sum: Tensor
    lse_c_sum: Tensor
    offset_sum: Tensor
    abs_offset_sum: Tensor
    clips: Tensor

    def __init__(
        self,
        weights: str | Path | None = None,
        vshift: int = SYNCNET_DEFAULT_VSHIFT,
        batch_size: int = 20,
    ) -> None:
        super().__init__()
        if not isinstance(vshift, int) or vshift < 0:
            raise ValueError(f"vshift must be a non-negative int (frames), got {vshift!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.net = load_syncnet(weights)
        self.vshift = vshift
        self.batch_size = batch_size
        for name in ("lse_d_sum", "lse_c_sum", "offset_sum", "abs_offset_sum"):
            self.add_state(name, default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("clips", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def score(self, frames: Tensor, audio: Tensor | np.ndarray) -> dict[str, Tensor]:
        """Scores of one clip.

        Args:
            frames: (T, 3, H, W) RGB face crops in [0, 1], 25 fps.
            audio: (S,) mono 16 kHz waveform aligned with frame 0.

        Returns:
            {"lse_d", "lse_c", "offset"} as in `sync_scores`, 0-d tensors.
        """
        video_emb, audio_emb = syncnet_embeddings(self.net, frames, audio, self.batch_size)
        return sync_scores(sync_distances(video_emb, audio_emb, self.vshift), self.vshift)

    def update(self, frames: Tensor, audio: Tensor | np.ndarray) -> None:
        """Add one clip: `frames` (T, 3, H, W) in [0, 1], `audio` (S,) at 16 kHz."""
        scores = self.score(frames, audio)
        offset = scores["offset"].to(self.offset_sum)
        self.lse_d_sum += scores["lse_d"].to(self.lse_d_sum)
        self.lse_c_sum += scores["lse_c"].to(self.lse_c_sum)
        self.offset_sum += offset
        self.abs_offset_sum += offset.abs()
        self.clips += 1

    def compute(self) -> dict[str, Tensor]:
        """Means over the clips seen: {"lse_d", "lse_c", "offset", "abs_offset"}, 0-d floats."""
        return {
            "lse_d": self.lse_d_sum / self.clips,
            "lse_c": self.lse_c_sum / self.clips,
            "offset": self.offset_sum / self.clips,
            "abs_offset": self.abs_offset_sum / self.clips,
        }
