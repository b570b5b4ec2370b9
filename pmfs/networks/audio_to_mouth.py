"""`AudioToMouthNet`: stage 1's network, audio windows + reference mouths → canonical content.

A transformer over time (DESIGN §1). Tokens: one per frame from a small conv encoder of that
frame's mel window, one per reference landmark set (its canonical content points), and optionally
one emotion/level token. The network predicts each frame's content points as an offset from the
mean reference content, so an untrained network starts at the speaker's mean mouth.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pmfs.batch import EMOTIONS, LEVELS
from pmfs.landmarks import CONTENT_INDICES

NUM_CONTENT = len(CONTENT_INDICES)
MEL_BANDS, MEL_STEPS = 80, 16


class MelWindowEncoder(nn.Module):
    """Conv encoder of one mel window: (N, 80, 16) → (N, dim).

    Args:
        dim: output feature size.
        channels: channels of the two strided conv layers.
    """

    def __init__(self, dim: int = 128, channels: int = 32) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2, padding=1),  # (N, C, 40, 8)
            nn.GELU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),  # (N, 2C, 20, 4)
            nn.GELU(),
            nn.Conv2d(2 * channels, 2 * channels, 3, stride=(2, 1), padding=1),  # (N, 2C, 10, 4)
            nn.GELU(),
        )
        self.proj = nn.Linear(2 * channels * 10 * 4, dim)

    def forward(self, mel: Tensor) -> Tensor:
        """(N, 80, 16) log-mel windows in [-4, 4] → (N, dim) features."""
        features = self.convs(mel[:, None] / 4.0)  # (N, 2C, 10, 4)
        return self.proj(features.flatten(1))


class AudioToMouthNet(nn.Module):
    """Mel windows + reference content points (+ emotion/level) → content points per frame.

    Args:
        dim: token size of the transformer.
        depth: transformer encoder layers.
        heads: attention heads (must divide `dim`).
        ff_mult: feed-forward width as a multiple of `dim`.
        dropout: dropout inside the transformer.
        conv_channels: channels of the mel window encoder.
        max_frames: the longest window T supported (size of the learned time embedding).
        use_emotion: add an emotion/level token (indices into `EMOTIONS` × `LEVELS`).
    """

    def __init__(
        self,
        dim: int = 128,
        depth: int = 3,
        heads: int = 4,
        ff_mult: int = 2,
        dropout: float = 0.1,
        conv_channels: int = 32,
        max_frames: int = 64,
        use_emotion: bool = False,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be a multiple of heads={heads}")
        self.max_frames = max_frames
        self.use_emotion = use_emotion
        self.audio = MelWindowEncoder(dim, conv_channels)
        self.reference = nn.Sequential(
            nn.Linear(NUM_CONTENT * 2, dim), nn.GELU(), nn.Linear(dim, dim)
        )
        self.time = nn.Parameter(torch.zeros(max_frames, dim))
        self.kind = nn.Parameter(torch.zeros(3, dim))  # audio / reference / emotion token
        nn.init.normal_(self.time, std=0.02)
        nn.init.normal_(self.kind, std=0.02)
        self.emotion = nn.Embedding(len(EMOTIONS) * len(LEVELS), dim) if use_emotion else None
        layer = nn.TransformerEncoderLayer(
            dim, heads, ff_mult * dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, NUM_CONTENT * 2)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(
        self,
        mel: Tensor,
        ref_content: Tensor,
        emotion: Tensor | None = None,
        level: Tensor | None = None,
    ) -> Tensor:
        """Predict the content points of each frame.

        Args:
            mel: (B, T, 80, 16) mel windows, T ≤ `max_frames`.
            ref_content: (B, K, 31, 2) canonical content points of K references.
            emotion: (B,) int64 index into `EMOTIONS`; required when `use_emotion`.
            level: (B,) int64 index into `LEVELS`; required when `use_emotion`.

        Returns:
            (B, T, 31, 2) canonical content points, `(x, y)` in the template's normalized frame.
        """
        batch, frames = mel.shape[:2]
        if mel.shape[2:] != (MEL_BANDS, MEL_STEPS) or frames > self.max_frames:
            raise ValueError(
                f"mel must be (B, T ≤ {self.max_frames}, 80, 16), got {tuple(mel.shape)}"
            )
        audio = self.audio(mel.flatten(0, 1)).view(batch, frames, -1)  # (B, T, D)
        audio = audio + self.time[:frames] + self.kind[0]
        refs = self.reference(ref_content.flatten(2)) + self.kind[1]  # (B, K, D)
        tokens = [audio, refs]
        if self.emotion is not None:
            if emotion is None or level is None:
                raise ValueError("use_emotion=True needs the batch's emotion and level")
            label = self.emotion(emotion * len(LEVELS) + level)[:, None] + self.kind[2]
            tokens.append(label)  # (B, 1, D)
        out = self.norm(self.encoder(torch.cat(tokens, dim=1)))[:, :frames]  # (B, T, D)
        offset = self.head(out).view(batch, frames, NUM_CONTENT, 2)
        return ref_content.mean(dim=1, keepdim=True) + offset
