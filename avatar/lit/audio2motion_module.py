"""Audio2MotionLitModule: trains :class:`avatar.modules.audio2motion.Audio2Motion`.

Loss (per frame, averaged):
    L = w_mouth * |m - m*|_1 + w_vis * CE(softmax(v), p*) + w_vel * |dm/dt - dm*/dt|_1
with ``m`` the 7 mouth channels, ``v`` the 14 viseme logits and ``p*`` the coarticulated viseme
weights (soft labels). Checkpoints carry the network's resolved config
(:func:`avatar.checkpoint.store_net_config`), so :meth:`avatar.motion.learned.LearnedMotion.load`
rebuilds it without ``configs/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torchmetrics import MeanAbsoluteError, MeanMetric, MinMetric, PearsonCorrCoef
from torchmetrics.classification import MulticlassAccuracy

from avatar.checkpoint import store_net_config
from avatar.lit.optim import optimizers
from avatar.modules.audio2motion import N_VISEMES, Audio2Motion

STAGES = ("train", "val", "test")


def _stage_metrics() -> dict[str, Any]:
    return {
        "loss": MeanMetric(),
        "mouth_l1": MeanAbsoluteError(),
        "viseme_acc": MulticlassAccuracy(num_classes=N_VISEMES, average="micro"),
        "open_corr": PearsonCorrCoef(),
    }


class Audio2MotionLitModule(LightningModule):
    """Lightning wrapper: one :meth:`model_step` for train, val and test.

    Args:
        net: the network (injected; its config is stored in checkpoints).
        optimizer: partial optimizer, called with ``params``.
        scheduler: partial LR scheduler called with ``optimizer``, or None.
        scheduler_interval: ``"step"`` or ``"epoch"``: when the scheduler steps.
        mouth_weight: w_mouth, weight of the mouth-channel L1.
        viseme_weight: w_vis, weight of the viseme cross-entropy.
        velocity_weight: w_vel, weight of the L1 on frame-to-frame mouth changes.
        compile: ``torch.compile`` the network when fitting.
    """

    def __init__(
        self,
        *,
        net: Audio2Motion,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None,
        scheduler_interval: str,
        mouth_weight: float,
        viseme_weight: float,
        velocity_weight: float,
        compile: bool,
    ) -> None:
        super().__init__()
        # net is a module (Lightning PR #12068); optimizer/scheduler are partials that would
        # make checkpoints unloadable with weights_only=True: the run config logs them instead.
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.metrics = torch.nn.ModuleDict(
            {f"{stage}_{name}": m for stage in STAGES for name, m in _stage_metrics().items()}
        )
        self.val_mouth_l1_best = MinMetric()

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, S)`` audio -> ``(B, T, 7)`` mouth channels and ``(B, T, 14)`` viseme logits."""
        return self.net(audio)

    def on_train_start(self) -> None:
        # Lightning's sanity check may have filled the val metrics
        for name, metric in self.metrics.items():
            if name.startswith("val_"):
                metric.reset()
        self.val_mouth_l1_best.reset()

    def model_step(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Loss, its parts, predicted mouth ``(B, T, 7)`` and viseme logits ``(B, T, 14)``."""
        mouth, logits = self.net(batch["audio"])
        target_mouth, target_vis = batch["mouth"], batch["visemes"]
        if mouth.shape != target_mouth.shape:
            raise ValueError(
                f"prediction {tuple(mouth.shape)} vs target {tuple(target_mouth.shape)}: "
                "check that model.net.hops_per_frame matches the data's fps"
            )
        parts = {
            "mouth": F.l1_loss(mouth, target_mouth),
            "viseme": -(target_vis * F.log_softmax(logits, dim=-1)).sum(-1).mean(),
            "velocity": F.l1_loss(mouth.diff(dim=1), target_mouth.diff(dim=1)),
        }
        hp = self.hparams
        loss = (
            hp.mouth_weight * parts["mouth"]
            + hp.viseme_weight * parts["viseme"]
            + hp.velocity_weight * parts["velocity"]
        )
        return loss, parts, mouth, logits

    def _shared_step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        loss, parts, mouth, logits = self.model_step(batch)
        m = {name: self.metrics[f"{stage}_{name}"] for name in _stage_metrics()}
        m["loss"](loss)
        m["mouth_l1"](mouth.detach(), batch["mouth"])
        m["viseme_acc"](logits.detach().flatten(0, 1), batch["visemes"].flatten(0, 1).argmax(-1))
        opening = mouth.detach()[..., :2].sum(-1).flatten()  # jaw_open + lip_open
        m["open_corr"](opening, batch["mouth"][..., :2].sum(-1).flatten())
        on_step = stage == "train"
        for name, metric in m.items():
            self.log(
                f"{stage}/{name}", metric, on_step=on_step, on_epoch=True, prog_bar=name == "loss"
            )
        for name, value in parts.items():
            self.log(f"{stage}/loss_{name}", value.detach(), on_step=on_step, on_epoch=True)
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._shared_step(batch, "train")
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self.val_mouth_l1_best(self.metrics["val_mouth_l1"].compute())
        self.log("val/mouth_l1_best", self.val_mouth_l1_best.compute(), prog_bar=True)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def setup(self, stage: str) -> None:
        if self.hparams.compile and stage == "fit":
            self.net = torch.compile(self.net)

    def configure_optimizers(self) -> Any:
        return optimizers(
            self.parameters(),
            self.optimizer_factory,
            self.scheduler_factory,
            self.hparams.scheduler_interval,
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        store_net_config(checkpoint, self.net)  # unwraps torch.compile
