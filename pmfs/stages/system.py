"""`PMFS`: the three stages in one `fit`, trained progressively (DESIGN §1).

Each training batch (an image batch of the batch contract) trains all three stages at once, each
with its own optimizer:

1. `AudioToMouth` on the true canonical content;
2. `MouthToFace` on content that is, per sample, the true content (with the stage's training noise)
   or stage 1's prediction, with probability `curriculum.mouth_to_face.at(step)`;
3. `FaceRenderer` on window landmarks that are, per sample, the true ones or stage 2's
   prediction, with probability `curriculum.renderer.at(step)`.

This is scheduled sampling: each stage starts from ground-truth inputs and moves towards the
inputs it gets at inference, so errors do not compound. With `curriculum.joint_start` the image
loss also reaches stage 2 through the differentiable sketches (scaled by `joint_weight`); before
that, predictions are detached at every stage boundary.

All losses of a batch go into one backward pass (the generator's GAN terms see the discriminator
with its parameters frozen, the discriminator's loss sees detached frames), so each parameter gets
exactly its own stage's gradient, and under DDP every parameter is reduced once per step with no
unused parameters. Then each stage's optimizer steps. Lightning counts every optimizer step in
`trainer.global_step` (3–4 per batch); the curriculum counts batches (`batches_seen`, saved in
checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from pmfs.batch import Batch, Split
from pmfs.clip import ClipInputs, ClipOutput
from pmfs.landmarks import POSE_INDICES
from pmfs.losses.landmarks import landmark_losses
from pmfs.metrics.image import image_metrics
from pmfs.stages.audio_to_mouth import AudioToMouth
from pmfs.stages.common import (
    NonFinite,
    canonical_content,
    check_finite,
    clip_window_index,
    landmark_metrics,
    load_stage_checkpoint,
    place_content,
    save_config,
)
from pmfs.stages.curriculum import Curriculum
from pmfs.stages.face_renderer import FaceRenderer
from pmfs.stages.lr_decay import LRDecay, decay_schedulers, training_horizon
from pmfs.stages.manual_step import manual_step
from pmfs.stages.mouth_to_face import MouthToFace

StageName = Literal["audio_to_mouth", "mouth_to_face", "renderer"]
STAGES: tuple[StageName, ...] = ("audio_to_mouth", "mouth_to_face", "renderer")


@dataclass(frozen=True)
class StageCheckpoints:
    """Checkpoints to start the system's stages from (weights only: training starts afresh).

    Attributes:
        system: a `PMFS` checkpoint: every stage starts from its weights (fine-tuning a trained
            model, e.g. on one person: experiments/personal.yaml).
        audio_to_mouth, mouth_to_face, renderer: checkpoints of stages trained alone, loaded
            after `system` (so one stage can be replaced).
    """

    system: str | None = None
    audio_to_mouth: str | None = None
    mouth_to_face: str | None = None
    renderer: str | None = None


class PMFS(LightningModule):
    """The whole method: audio → mouth → face landmarks → image, trained progressively.

    Args:
        audio_to_mouth: stage 1 (`class_path` in YAML).
        mouth_to_face: stage 2; its own `content_model` must be None (the system feeds it).
        renderer: stage 3.
        curriculum: the scheduled-sampling schedule; None → `Curriculum()`.
        checkpoints: stage checkpoints to start from; None → none.
        freeze: stages that are not trained (eval mode, no optimizer, no loss).
        window: T of the training windows (for whole-clip generation).
        gradient_clip: clip each stage's gradient norm (manual optimization cannot use the
            Trainer's `gradient_clip_val`); None = off.
        nonfinite: "raise" or "skip" a batch with a non-finite loss.
        lr_decay: every stage's learning rate decays linearly over the end of training (see
            `pmfs.stages.lr_decay`); None keeps it constant.
    """

    def __init__(
        self,
        audio_to_mouth: AudioToMouth,
        mouth_to_face: MouthToFace,
        renderer: FaceRenderer,
        curriculum: Curriculum | None = None,
        checkpoints: StageCheckpoints | None = None,
        freeze: list[StageName] | None = None,
        window: int = 5,
        gradient_clip: float | None = 1.0,
        nonfinite: NonFinite = "raise",
        lr_decay: LRDecay | None = None,
    ) -> None:
        super().__init__()
        if mouth_to_face.content_model is not None:
            raise ValueError(
                "mouth_to_face.content_model must be None inside PMFS: the system feeds stage 2 "
                "with stage 1's predictions on the curriculum's schedule"
            )
        unknown = set(freeze or ()) - set(STAGES)
        if unknown:
            raise ValueError(f"freeze: unknown stages {sorted(unknown)}; choose from {STAGES}")
        save_config(self, ["audio_to_mouth", "mouth_to_face", "renderer"])
        self.automatic_optimization = False
        self.audio_to_mouth = audio_to_mouth
        self.mouth_to_face = mouth_to_face
        self.renderer = renderer
        self.curriculum = curriculum or Curriculum()
        self.frozen: tuple[StageName, ...] = tuple(s for s in STAGES if s in set(freeze or ()))
        self.window = window
        self.gradient_clip = gradient_clip
        self.nonfinite: NonFinite = nonfinite
        self.lr_decay = lr_decay
        self.batches_seen: Tensor
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.int64))
        paths = checkpoints or StageCheckpoints()
        if paths.system is not None:
            for name in STAGES:
                stage = self.stage(name)
                load_stage_checkpoint(stage, paths.system, "checkpoints.system", f"{name}.")
        for name in STAGES:
            path = getattr(paths, name)
            if path is not None:
                load_stage_checkpoint(self.stage(name), path)
        for name in self.frozen:
            self.stage(name).requires_grad_(False).eval()
        self.val_stage1 = landmark_metrics("val/audio_to_mouth/", face=False)
        self.test_stage1 = landmark_metrics("test/audio_to_mouth/", face=False)
        self.val_landmarks = landmark_metrics("val/", face=True)
        self.test_landmarks = landmark_metrics("test/", face=True)
        self.val_images = image_metrics("val/")
        self.test_images = image_metrics("test/")
        self.val_images_gt = image_metrics("val/from_landmarks/")
        self.test_images_gt = image_metrics("test/from_landmarks/")

    def stage(self, name: StageName) -> LightningModule:
        """The stage called `name`."""
        return {
            "audio_to_mouth": self.audio_to_mouth,
            "mouth_to_face": self.mouth_to_face,
            "renderer": self.renderer,
        }[name]

    def train(self, mode: bool = True) -> PMFS:
        """Set train/eval mode; frozen stages always stay in eval mode."""
        super().train(mode)
        for name in self.frozen:
            self.stage(name).eval()
        return self

    # -- the chain ------------------------------------------------------------------------------

    def _content(self, batch: Batch) -> Tensor:
        """Stage 1: (B, T, 31, 2) canonical content predicted from the batch's audio."""
        return self.audio_to_mouth(
            batch["mel"], batch["ref_landmarks"], batch.get("emotion"), batch.get("level")
        )

    def _faces(self, content: Tensor, batch: Batch) -> Tensor:
        """Stage 2: (B, T, 68, 2) landmarks from content and the batch's true pose."""
        pose = batch["landmarks"][..., POSE_INDICES, :]
        return self.mouth_to_face(content, pose, batch["ref_landmarks"])

    @staticmethod
    def _mix(truth: Tensor, prediction: Tensor, probability: float) -> Tensor:
        """Per sample, `prediction` with `probability`, else `truth` (both (B, ...))."""
        if probability <= 0:
            return truth
        shape = (truth.shape[0],) + (1,) * (truth.ndim - 1)
        use = torch.rand(shape, device=truth.device) < probability
        return torch.where(use, prediction, truth)

    def schedule(self, step: int) -> dict[str, float]:
        """The curriculum's values at training batch `step`."""
        joint = self.curriculum.joint_start is not None and step >= self.curriculum.joint_start
        return {
            "mouth_to_face": self.curriculum.mouth_to_face.at(step),
            "renderer": self.curriculum.renderer.at(step),
            "joint": float(joint and "mouth_to_face" not in self.frozen),
        }

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        """Inference on a batch: audio → content → landmarks (true pose) → frames.

        Returns:
            `content` (B, T, 31, 2), `landmarks` (B, T, 68, 2), `image` (B, 3, H, W).
        """
        content = self._content(batch)
        faces = self._faces(content, batch)
        refs = self.renderer.encode_references(batch["ref_frames"], batch["ref_landmarks"])
        image = self.renderer.render(faces, batch["target"], refs).image
        return {"content": content, "landmarks": faces, "image": image.clamp(0, 1)}

    # -- training -------------------------------------------------------------------------------

    def _losses(self, batch: Batch, step: int) -> tuple[dict[str, Tensor], Tensor]:
        """Every stage's losses on a batch (scheduled sampling applied), and the backward total."""
        schedule = self.schedule(step)
        losses: dict[str, Tensor] = {}
        total = batch["mel"].new_zeros(())
        landmarks = batch["landmarks"]
        content = self._content(batch)
        if "audio_to_mouth" not in self.frozen:
            l1 = landmark_losses(
                content, canonical_content(landmarks), self.audio_to_mouth.loss_weights
            )
            losses |= {f"audio_to_mouth/{k}": v for k, v in l1.items()}
            total = total + l1["loss"]
        truth = self.mouth_to_face.content_input(batch, "train")
        faces = self._faces(self._mix(truth, content.detach(), schedule["mouth_to_face"]), batch)
        if "mouth_to_face" not in self.frozen:
            l2 = landmark_losses(faces, landmarks, self.mouth_to_face.loss_weights)
            losses |= {f"mouth_to_face/{k}": v for k, v in l2.items()}
            total = total + l2["loss"]
        if schedule["joint"]:
            w = self.curriculum.joint_weight  # same value, gradient scaled by w
            drawn = faces * w + (faces * (1 - w)).detach()
        else:
            drawn = faces.detach()
        refs = self.renderer.encode_references(batch["ref_frames"], batch["ref_landmarks"])
        out = self.renderer.render(
            self._mix(landmarks, drawn, schedule["renderer"]), batch["target"], refs
        )
        if "renderer" not in self.frozen:
            g = self.renderer.generator_losses(out, batch)
            d = self.renderer.discriminator_losses(out, batch)
            losses |= {f"renderer/{k}": v for k, v in (g | d).items()}
            total = total + g["loss"] + d.get("d_loss", total.new_zeros(()))
        return losses, total

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        step = int(self.batches_seen)
        losses, total = self._losses(self.curriculum.frames(batch, step), step)
        self.batches_seen += 1
        if not check_finite(losses, batch, self.global_step, self.nonfinite, "PMFS"):
            return
        manual_step(self, total, self._trained_modules(), self.gradient_clip, self._schedulers())
        size = batch["mel"].shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, batch_size=size)
        self.log_dict(
            {f"train/schedule/{k}": v for k, v in self.schedule(step).items()}, batch_size=size
        )
        # averaged over DDP processes: N processes with batch B/N log what one with B logs
        self.log("train/loss", total.detach(), prog_bar=True, batch_size=size, sync_dist=True)

    def _trained_modules(self) -> list[nn.Module]:
        """The network each optimizer updates, in `configure_optimizers` order."""
        modules: list[nn.Module] = []
        if "audio_to_mouth" not in self.frozen:
            modules.append(self.audio_to_mouth.network)
        if "mouth_to_face" not in self.frozen:
            modules.append(self.mouth_to_face.network)
        if "renderer" not in self.frozen:
            modules.append(self.renderer.network)
            if self.renderer.critics is not None:
                modules.append(self.renderer.critics)
        return modules

    def _schedulers(self) -> list[LRScheduler]:
        if self.lr_decay is None:
            return []
        schedulers = self.lr_schedulers()
        return schedulers if isinstance(schedulers, list) else [schedulers]  # type: ignore[list-item]

    def configure_optimizers(self) -> list[Optimizer] | tuple[list[Optimizer], list[LRScheduler]]:
        optimizers = self._build_optimizers()
        if self.lr_decay is None:
            return optimizers
        horizon = training_horizon(self.trainer, len(optimizers))
        return optimizers, list(decay_schedulers(optimizers, self.lr_decay, horizon))

    def _build_optimizers(self) -> list[Optimizer]:
        optimizers = []
        if "audio_to_mouth" not in self.frozen:
            optimizers.append(
                self.audio_to_mouth.optimizer(self.audio_to_mouth.network.parameters())
            )
        if "mouth_to_face" not in self.frozen:
            optimizers.append(self.mouth_to_face.optimizer(self.mouth_to_face.network.parameters()))
        if "renderer" not in self.frozen:
            optimizers.extend(self.renderer.configure_optimizers())
        if not optimizers:
            raise ValueError(f"every stage is frozen ({self.frozen}); nothing to train")
        return optimizers

    # -- evaluation -----------------------------------------------------------------------------

    def _eval_step(self, batch: Batch, split: Split) -> None:
        landmarks = batch["landmarks"]
        centre = landmarks[:, landmarks.shape[1] // 2]
        content = self._content(batch)
        faces = self._faces(content, batch)
        refs = self.renderer.encode_references(batch["ref_frames"], batch["ref_landmarks"])
        chain = self.renderer.render(faces, batch["target"], refs)
        from_truth = self.renderer.render(landmarks, batch["target"], refs)
        size = landmarks.shape[0]
        losses = {
            "audio_to_mouth/loss": landmark_losses(
                content, canonical_content(landmarks), self.audio_to_mouth.loss_weights
            )["loss"],
            "mouth_to_face/loss": landmark_losses(
                faces, landmarks, self.mouth_to_face.loss_weights
            )["loss"],
            "renderer/loss": self.renderer.generator_losses(from_truth, batch)["loss"],
        }
        self.log_dict(
            {f"{split}/{k}": v for k, v in losses.items()}, batch_size=size, sync_dist=True
        )
        lm_metrics, images, images_gt = (
            (self.val_landmarks, self.val_images, self.val_images_gt)
            if split == "val"
            else (self.test_landmarks, self.test_images, self.test_images_gt)
        )
        lm_metrics.update(faces, landmarks)
        images.update(chain.image.clamp(0, 1), batch["target"], centre)
        images_gt.update(from_truth.image.clamp(0, 1), batch["target"], centre)
        for metrics in (lm_metrics, images, images_gt):
            self.log_dict(metrics, batch_size=size)
        stage1 = self.val_stage1 if split == "val" else self.test_stage1
        stage1.update(place_content(content, landmarks), landmarks)  # in the true pose
        self.log_dict(stage1, batch_size=size)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, Tensor]:
        """The whole chain on a batch (see `forward`)."""
        return self(batch)

    @torch.no_grad()
    def generate_clip(
        self, clip: ClipInputs, *, from_audio: bool = True, chunk: int = 16
    ) -> ClipOutput:
        """Make every frame of a clip: audio → landmarks → frames, references encoded once.

        Args:
            clip: the clip (on this module's device); its landmarks give each frame's pose.
            from_audio: True: the whole chain; False: the renderer on `clip.landmarks`.
            chunk: frames per forward pass.

        Returns:
            The generated frames with the landmarks they were drawn from.
        """
        landmarks = self.predict_clip_landmarks(clip, chunk=chunk) if from_audio else None
        return self.renderer.generate_clip(clip, landmarks, window=self.window, chunk=chunk)

    @torch.no_grad()
    def predict_clip_landmarks(self, clip: ClipInputs, *, chunk: int = 64) -> Tensor:
        """(N, 68, 2) landmarks of a clip from its audio, each frame its window's centre."""
        n = clip.num_frames
        index = clip_window_index(n, self.window, n, clip.mel.device)  # (N, T)
        centre = self.window // 2
        parts: list[Tensor] = []
        for start in range(0, n, chunk):
            rows = index[start : start + chunk]
            batch: Batch = {
                "mel": clip.mel[rows],
                "landmarks": clip.landmarks[rows],
                "ref_landmarks": clip.ref_landmarks.expand(len(rows), *clip.ref_landmarks.shape),
            }
            if clip.emotion is not None and clip.level is not None:
                batch["emotion"] = torch.full((len(rows),), clip.emotion, device=clip.mel.device)
                batch["level"] = torch.full((len(rows),), clip.level, device=clip.mel.device)
            parts.append(self._content(batch)[:, centre])
        content = torch.cat(parts)  # (N, 31, 2), one per frame
        faces = []
        for start in range(0, n, chunk):
            rows = index[start : start + chunk]
            batch = {
                "landmarks": clip.landmarks[rows],
                "ref_landmarks": clip.ref_landmarks.expand(len(rows), *clip.ref_landmarks.shape),
            }
            faces.append(self._faces(content[rows], batch)[:, centre])
        return torch.cat(faces)
