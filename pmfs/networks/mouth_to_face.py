"""`MouthToFaceNet`: stage 2's network, canonical content + target pose → all 68 landmarks.

The target frame's similarity to the canonical frame is fitted on its pose landmarks (the stable
points, eye corners and nose, are all pose points). The analytic answer puts the canonical content
back through that similarity's inverse; the network adds a learned correction in the canonical
frame from the content, the canonical pose and the mean canonical reference, with a transformer
over the T frames, so it can fit the mouth to this face and smooth stage-1 errors over time.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pmfs.landmarks import (
    CONTENT_INDICES,
    NUM_LANDMARKS,
    POSE_INDICES,
    STABLE_INDICES,
    Similarity,
    from_canonical,
    template_tensor,
    to_canonical,
    umeyama,
)

NUM_CONTENT, NUM_POSE = len(CONTENT_INDICES), len(POSE_INDICES)
_STABLE_IN_POSE = torch.from_numpy(
    (POSE_INDICES[:, None] == STABLE_INDICES[None, :]).argmax(axis=0)
)  # position of each stable point inside the pose points


def pose_similarity(pose: Tensor) -> Similarity:
    """Similarity mapping a frame onto the canonical frame, fitted on its pose points.

    Args:
        pose: (..., 37, 2) pose landmarks (`POSE_INDICES` order), normalized `(x, y)`.

    Returns:
        `Similarity` of batch shape (...,), the same one `to_canonical` fits on all 68 points.
    """
    stable = pose[..., _STABLE_IN_POSE.to(pose.device), :]
    target = template_tensor(pose.device, pose.dtype)[STABLE_INDICES]
    return umeyama(stable, target.expand_as(stable))


def assemble(content: Tensor, pose: Tensor) -> Tensor:
    """(..., 31, 2) content + (..., 37, 2) pose points → (..., 68, 2) in iBUG order."""
    out = content.new_empty(*content.shape[:-2], NUM_LANDMARKS, 2)
    out[..., CONTENT_INDICES, :] = content
    out[..., POSE_INDICES, :] = pose
    return out


def analytic_face(content: Tensor, pose: Tensor) -> Tensor:
    """The analytic baseline: canonical content through the inverse of the pose's similarity.

    Args:
        content: (B, T, 31, 2) canonical content points.
        pose: (B, T, 37, 2) pose points of the target frames, normalized image `(x, y)`.

    Returns:
        (B, T, 68, 2) landmarks in normalized image coordinates.
    """
    return assemble(from_canonical(content, pose_similarity(pose)), pose)


class MouthToFaceNet(nn.Module):
    """Canonical content + pose + references → 68 landmarks, a correction of `analytic_face`.

    Args:
        dim: token size.
        depth: transformer encoder layers over the T frames.
        heads: attention heads (must divide `dim`).
        ff_mult: feed-forward width as a multiple of `dim`.
        dropout: dropout inside the transformer.
        max_frames: the longest window T supported.
    """

    def __init__(
        self,
        dim: int = 128,
        depth: int = 2,
        heads: int = 4,
        ff_mult: int = 2,
        dropout: float = 0.0,
        max_frames: int = 64,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be a multiple of heads={heads}")
        self.max_frames = max_frames
        self.embed = nn.Sequential(
            nn.Linear((NUM_CONTENT + NUM_POSE + NUM_LANDMARKS) * 2, dim),
            nn.GELU(),
            nn.Linear(dim, dim),
        )
        self.time = nn.Parameter(torch.zeros(max_frames, dim))
        nn.init.normal_(self.time, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, ff_mult * dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, NUM_CONTENT * 2)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, content: Tensor, pose: Tensor, ref_landmarks: Tensor) -> Tensor:
        """Place the canonical content on the target face.

        Args:
            content: (B, T, 31, 2) canonical content points (stage 1's output).
            pose: (B, T, 37, 2) pose points of the target frames, normalized image `(x, y)`.
            ref_landmarks: (B, K, 68, 2) reference landmarks, normalized image `(x, y)`.

        Returns:
            (B, T, 68, 2) landmarks in normalized image coordinates; the pose points are `pose`.
        """
        batch, frames = content.shape[:2]
        if frames > self.max_frames:
            raise ValueError(f"T={frames} exceeds max_frames={self.max_frames}")
        sim = pose_similarity(pose)  # batch (B, T)
        canon_pose = sim.apply(pose)  # (B, T, 37, 2)
        canon_ref = to_canonical(ref_landmarks)[0].mean(dim=1)  # (B, 68, 2)
        features = torch.cat(
            [
                content.flatten(2),
                canon_pose.flatten(2),
                canon_ref.flatten(1)[:, None].expand(batch, frames, -1),
            ],
            dim=-1,
        )  # (B, T, (31 + 37 + 68) · 2)
        tokens = self.embed(features) + self.time[:frames]
        offset = self.head(self.norm(self.encoder(tokens))).view(batch, frames, NUM_CONTENT, 2)
        return assemble(from_canonical(content + offset, sim), pose)
