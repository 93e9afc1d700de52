"""RendererLitModule: trains the neural renderer's :class:`WarpRefineNet` on
:mod:`avatar.data.renderer_datamodule` items.

Per batch of B frames (tensors (B, C, s, s) in [0, 1]): ``out = net.refine(prior, source,
region, motion[, audio])`` and the loss

    L = w_l1 * |out - target|_1 + w_lp * ST-LPIPS(out, target) + w_gan * hinge_G(D(out))

with ST-LPIPS (shift-tolerant LPIPS, the ``stlpips-pytorch`` wheel: weights ship with it,
frozen, kept out of the checkpoint) and an optional PatchGAN ``D``
(:class:`~avatar.modules.patch_discriminator.PatchDiscriminator`, hinge loss). ``D`` is trained
in the same step with the same optimizer: its loss on the detached output is added, and the
generator's adversarial term is computed with ``D``'s parameters frozen, so one optimizer and
Lightning's automatic optimization (gradient clipping, precision, DDP) serve both.

Validation and test log L1, PSNR (dB) and ST-LPIPS of the output and, as the baseline, of the
prior (plain mesh-warp) against the target, and a sample grid (prior | output | target) to a
logger that takes images (W&B). Checkpoints carry the net config and the renderer config, so
``avatar.load_renderer(ckpt)`` and ``renderer=neural renderer.ckpt_path=ckpt`` load them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torchmetrics import MeanMetric

from avatar.checkpoint import RENDERER_KEY, store_net_config
from avatar.lit.optim import optimizers
from avatar.modules.patch_discriminator import PatchDiscriminator
from avatar.modules.perceptual import load_stlpips
from avatar.modules.refine_unet import WarpRefineNet

log = logging.getLogger(__name__)

__all__ = ["RendererLitModule", "psnr"]

_SCORES = ("l1", "psnr", "lpips", "prior_l1", "prior_psnr", "loss")
RENDERER_TARGET = "avatar.renderers.neural.renderer.NeuralRenderer"


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB of (B, C, H, W) images in [0, 1] (capped at 100 dB for equal images)."""
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


class RendererLitModule(L.LightningModule):
    """Warp-and-refine training (see the module docstring).

    Args:
        net: the refine network (its config is stored in checkpoints).
        optimizer: partial optimizer, called with ``params``.
        scheduler: partial LR scheduler called with ``optimizer``, or None.
        scheduler_interval: ``"step"`` or ``"epoch"``.
        size: the renderer's frame side S (stored in the renderer config of checkpoints).
        chunk_frames: the renderer's frames per network batch (renderer config).
        l1_weight: w_l1.
        lpips_weight: w_lp (0: ST-LPIPS is not loaded for training; still logged when
            ``log_lpips``).
        gan_weight: w_gan (0: no discriminator).
        discriminator: the PatchGAN, built when ``gan_weight > 0`` (None: a default one).
        log_lpips: compute ST-LPIPS in validation and test.
        sample_images: items of the first validation batch drawn in the sample grid.
    """

    def __init__(
        self,
        *,
        net: WarpRefineNet,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "step",
        size: int = 256,
        chunk_frames: int = 8,
        l1_weight: float = 1.0,
        lpips_weight: float = 0.0,
        gan_weight: float = 0.0,
        discriminator: PatchDiscriminator | None = None,
        log_lpips: bool = True,
        sample_images: int = 4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            logger=False, ignore=["net", "optimizer", "scheduler", "discriminator"]
        )
        if size % 2**net.depth:
            raise ValueError(f"size {size} must be divisible by 2**depth = {2**net.depth}")
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.disc = (discriminator or PatchDiscriminator()) if gan_weight > 0 else None
        self._lpips: list[nn.Module] = []  # a list: kept out of the state dict and checkpoints
        self.scores = torch.nn.ModuleDict(
            {f"{stage}_{k}": MeanMetric() for stage in ("val", "test") for k in _SCORES}
        )
        self._samples: torch.Tensor | None = None

    def lpips(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(B,) ST-LPIPS distance of (B, 3, H, W) images in [0, 1]."""
        if not self._lpips:
            self._lpips.append(load_stlpips(frozen=True))
        model = self._lpips[0].to(a.device)
        return model(a.float() * 2 - 1, b.float() * 2 - 1).reshape(len(a), -1).mean(1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The refined frames (B, 3, s, s) in [0, 1] of a batch of items."""
        args = [batch["prior"], batch["source"], batch["region"], batch["motion"]]
        if self.net.audio_dim:
            args.append(batch["audio"])
        return self.net.refine(*args)

    def _gan_terms(self, out: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Hinge losses: the generator's through a frozen D, D's on the detached output."""
        assert self.disc is not None
        for p in self.disc.parameters():
            p.requires_grad_(False)
        g = -self.disc(out).mean()
        for p in self.disc.parameters():
            p.requires_grad_(True)
        real, fake = self.disc(target), self.disc(out.detach())
        d = F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
        return {"gan_g": g, "gan_d": d}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out, target = self(batch), batch["target"]
        hp = self.hparams
        logs = {"l1": F.l1_loss(out, target)}
        loss = hp.l1_weight * logs["l1"]
        if hp.lpips_weight > 0:
            logs["lpips"] = self.lpips(out, target).mean()
            loss = loss + hp.lpips_weight * logs["lpips"]
        if self.disc is not None:
            logs |= self._gan_terms(out, target)
            loss = loss + hp.gan_weight * logs["gan_g"] + logs["gan_d"]
        logs["psnr"] = psnr(out.detach(), target).mean()
        logs["loss"] = loss
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, prog_bar=False)
        return loss

    def _score(self, batch: dict[str, torch.Tensor], batch_idx: int, stage: str) -> None:
        out, target, prior = self(batch), batch["target"], batch["prior"]
        hp = self.hparams
        l1 = (out - target).abs().flatten(1).mean(1)
        values = {
            "l1": l1,
            "psnr": psnr(out, target),
            "prior_l1": (prior - target).abs().flatten(1).mean(1),
            "prior_psnr": psnr(prior, target),
        }
        loss = hp.l1_weight * l1
        if hp.log_lpips or hp.lpips_weight > 0:
            values["lpips"] = self.lpips(out, target)
            loss = loss + hp.lpips_weight * values["lpips"]
        values["loss"] = loss
        for k, v in values.items():
            self.scores[f"{stage}_{k}"].update(v)
        if stage == "val" and batch_idx == 0 and hp.sample_images:
            n = hp.sample_images
            self._samples = torch.cat([prior[:n], out[:n], target[:n]], dim=3).detach().cpu()

    def _log_scores(self, stage: str) -> None:
        for k in _SCORES:
            metric = self.scores[f"{stage}_{k}"]
            if metric.update_count:
                self.log(f"{stage}/{k}", metric.compute(), prog_bar=k == "psnr", sync_dist=True)
            metric.reset()

    def _log_samples(self) -> None:
        """Prior | output | target rows to every logger that takes images (W&B)."""
        if self._samples is None:
            return
        grid = torch.cat(list(self._samples), dim=1)  # (3, n * s, 3 * s)
        image = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        for lg in self.loggers:
            if hasattr(lg, "log_image"):
                caption = f"prior | output | target, step {self.global_step}"
                lg.log_image("val/samples", [image], step=self.global_step, caption=[caption])
        self._samples = None

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._score(batch, batch_idx, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")
        if not self.trainer.sanity_checking:
            self._log_samples()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._score(batch, batch_idx, "test")

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        return optimizers(
            params, self.optimizer_factory, self.scheduler_factory, self.hparams.scheduler_interval
        )

    def renderer_config(self) -> dict[str, Any]:
        """The :class:`NeuralRenderer` settings stored beside the net."""
        return {
            "_target_": RENDERER_TARGET,
            "size": int(self.hparams.size),
            "chunk_frames": int(self.hparams.chunk_frames),
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        store_net_config(checkpoint, self.net)  # unwraps torch.compile
        checkpoint[RENDERER_KEY] = self.renderer_config()
