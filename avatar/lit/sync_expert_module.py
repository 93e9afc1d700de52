"""SyncExpertLitModule: trains :class:`avatar.modules.sync_expert.SyncExpert` contrastively.

Loss (per batch of B items of W frames, n = W - 4 windows each, N = B * n): the cosine
similarities of every video window with every audio window, ``logits = s * V @ A.T`` (N, N)
with a learned scale ``s`` (CLIP's temperature, clamped to <= 100), and a cross-entropy that
picks the matching window both ways. The other windows of the same item are the hard negatives
(the same face and voice, shifted by 1..n-1 frames); the other items' windows are the easy ones.
Rows whose window holds no speech are left out as anchors: silence matches any silence.

Validation and test score whole clips as the metric does: each 2 s segment with speech gets
the offset of its lowest mean distance over -K..K frames (:func:`offset_scores`);
``offset_acc`` is the share of segments found within +-1 frame of the truth (0: the renders
are in sync), ``offset_exact`` exactly at 0, ``confidence`` the median minus the minimum
distance (SyncNet's LSE-C, on cosine distances).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch.nn import functional as F  # noqa: N812
from torchmetrics import MeanMetric

from avatar.checkpoint import store_net_config
from avatar.lit.optim import optimizers
from avatar.modules.sync_expert import SyncExpert, offset_scores

__all__ = ["SyncExpertLitModule", "segment_offsets"]

_SCORES = ("offset_acc", "offset_exact", "confidence", "loss")


def segment_offsets(
    video: torch.Tensor,
    audio: torch.Tensor,
    speaking: torch.Tensor,
    *,
    segment: int,
    max_offset: int,
    min_speech: float = 0.3,
) -> list[tuple[int, float]]:
    """(offset, confidence) of each ``segment``-window stretch of one clip with enough speech.

    Args:
        video: (N, D) window embeddings; audio: (N, D); speaking: (N,) bool.
        segment: windows per stretch (> 2 * max_offset).
        max_offset: K, frames searched each way.
        min_speech: least share of speaking windows for a stretch to count.

    Returns:
        Per stretch: the offset in frames (> 0: the video lags the audio) and the median minus
        the minimum of the mean distances.
    """
    out = []
    for s in range(0, len(video) - segment + 1, segment):
        if speaking[s : s + segment].float().mean() < min_speech:
            continue
        r = offset_scores(video[s : s + segment], audio[s : s + segment], max_offset)
        out.append((int(r["offset"]), r["confidence"]))
    return out


class SyncExpertLitModule(L.LightningModule):
    """Contrastive training of the sync expert; validation by offset recovery on whole clips.

    Args:
        net: the network (its config is stored in checkpoints: :mod:`avatar.checkpoint`).
        optimizer: partial optimizer, called with ``params``.
        scheduler: partial LR scheduler called with ``optimizer``, or None.
        scheduler_interval: ``"step"`` or ``"epoch"``.
        temperature: initial softmax temperature (learned from there).
        max_offset: K, frames searched each way when scoring clips.
        segment_frames: frames per scored stretch of a clip (50 = 2 s).
    """

    def __init__(
        self,
        *,
        net: SyncExpert,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None,
        scheduler_interval: str,
        temperature: float,
        max_offset: int,
        segment_frames: int,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        if segment_frames - net.window + 1 <= 2 * max_offset:
            raise ValueError(f"segment_frames={segment_frames} is too short for +-{max_offset}")
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.scores = torch.nn.ModuleDict(
            {f"{stage}_{k}": MeanMetric() for stage in ("val", "test") for k in _SCORES}
        )

    def forward(
        self, video: torch.Tensor, audio: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 48, 96) crops and (B, T * 640) audio -> two (B, T - 4, D) embeddings."""
        return self.net.embed_video(video), self.net.embed_audio(audio)

    def contrastive_loss(
        self, video: torch.Tensor, audio: torch.Tensor, speaking: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, accuracy) of matching N flattened windows both ways, speaking anchors only."""
        v, a = video.reshape(-1, video.shape[-1]), audio.reshape(-1, audio.shape[-1])
        keep = speaking.reshape(-1)
        scale = self.logit_scale.clamp(max=math.log(100.0)).exp()
        logits = scale * v @ a.T  # (N, N)
        target = torch.arange(len(v), device=v.device)[keep]
        loss = 0.5 * (
            F.cross_entropy(logits[keep], target) + F.cross_entropy(logits.T[keep], target)
        )
        acc = (logits[keep].argmax(1) == target).float().mean()
        return loss, acc

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        video, audio = self(batch["video"], batch["audio"])
        loss, acc = self.contrastive_loss(video, audio, batch["speaking"])
        self.log_dict(
            {"train/loss": loss, "train/acc": acc, "train/scale": self.logit_scale.exp()},
            prog_bar=True,
        )
        return loss

    def _score(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        video, audio = self(batch["video"], batch["audio"])
        speaking = batch["speaking"]
        if speaking.any():
            loss, _ = self.contrastive_loss(video, audio, speaking)
            self.scores[f"{stage}_loss"].update(loss)
        segments = segment_offsets(
            video[0],
            audio[0],
            speaking[0],
            max_offset=self.hparams.max_offset,
            segment=self.hparams.segment_frames - self.net.window + 1,
        )
        for offset, confidence in segments:
            self.scores[f"{stage}_offset_acc"].update(float(abs(offset) <= 1))
            self.scores[f"{stage}_offset_exact"].update(float(offset == 0))
            self.scores[f"{stage}_confidence"].update(confidence)

    def _log_scores(self, stage: str) -> None:
        for k in _SCORES:
            metric = self.scores[f"{stage}_{k}"]
            if metric.update_count:
                self.log(f"{stage}/{k}", metric.compute(), prog_bar=k == "offset_acc")
            metric.reset()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._score(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._score(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")

    def configure_optimizers(self) -> Any:
        return optimizers(
            self.parameters(),
            self.optimizer_factory,
            self.scheduler_factory,
            self.hparams.scheduler_interval,
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        store_net_config(checkpoint, self.net)  # unwraps torch.compile
