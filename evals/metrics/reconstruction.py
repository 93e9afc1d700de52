"""Reconstruction metrics against ground-truth frames: PSNR, SSIM, LPIPS and ST-LPIPS."""

from __future__ import annotations

from typing import Any

import torch

from evals.functional.perceptual import (
    LPIPS_WEIGHTS,
    _perceptual_update,
    load_lpips,
    load_stlpips,
)
from evals.functional.reconstruction import _mean_compute, _psnr_update, _ssim_update
from evals.metrics._backbone import BackboneMetric
from evals.metrics.base import EvalMetric
from evals.weights import WeightsRegistry

__all__ = ["LPIPS", "PSNR", "SSIM", "STLPIPS"]


class PSNR(EvalMetric):
    """Mean per-frame PSNR in dB of rendered frames against the reference frames.

    Inputs to ``update``: ``video`` and ``target_video``, (B, T, 3, H, W) float in [0, 1] (or
    uint8). Output: the mean PSNR (a scalar tensor; higher is better; identical frames read
    :data:`~evals.functional.reconstruction.MAX_PSNR_DB`).

    Example:
        >>> x = torch.zeros(2, 3, 3, 8, 8)
        >>> round(PSNR()(x + 0.01, x).item(), 3)  # MSE 1e-4 -> 40 dB
        40.0
    """

    higher_is_better = True
    _sum_states = ("total", "frames")

    def update(self, video: Any, target_video: Any) -> None:
        """Adds clips: (B, T, 3, H, W) rendered and reference frames."""
        self._add(_psnr_update(video, target_video))

    def compute(self) -> torch.Tensor:
        return torch.tensor(_mean_compute(*self._sums()), dtype=torch.float64)


class SSIM(EvalMetric):
    """Mean per-frame SSIM of rendered frames against the reference frames.

    Inputs to ``update``: ``video`` and ``target_video``, (B, T, 3, H, W) float in [0, 1] (or
    uint8), H, W >= 11. Output: the mean SSIM in [-1, 1] (higher is better; 1 = identical).

    Example:
        >>> x = torch.rand(1, 2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> round(SSIM()(x, x).item(), 6)
        1.0
    """

    higher_is_better = True
    _sum_states = ("total", "frames")

    def update(self, video: Any, target_video: Any) -> None:
        """Adds clips: (B, T, 3, H, W) rendered and reference frames."""
        self._add(_ssim_update(video, target_video))

    def compute(self) -> torch.Tensor:
        return torch.tensor(_mean_compute(*self._sums()), dtype=torch.float64)


class LPIPS(BackboneMetric):
    """LPIPS (Zhang et al. 2018) of rendered frames to the reference frames, mean per frame.

    Inputs to ``update``: ``video`` and ``target_video``, (B, T, 3, H, W) float in [0, 1] (or
    uint8). Output: the mean distance (>= 0, lower is better). The default network needs the
    torchvision trunk (registry ``lpips_alex``) in the weights directory or torch's hub cache;
    absent, ``update`` raises :class:`~avatar.errors.WeightsMissingError` (suites: skipped).

    Args:
        model: ``model(x, y)`` on frames in [-1, 1]; None loads :func:`load_lpips` on first use.
        net: ``alex`` or ``vgg`` (default model only).
        registry: weights registry for the trunk (None: ``configs/weights/registry.yaml``).

    Example:
        >>> class L1(torch.nn.Module):  # a stand-in network
        ...     def __init__(self):
        ...         super().__init__(); self.w = torch.nn.Parameter(torch.ones(1))
        ...     def forward(self, x, y):
        ...         return (x - y).abs().mean((1, 2, 3), keepdim=True) * self.w
        >>> x = torch.zeros(1, 2, 3, 4, 4)
        >>> LPIPS(model=L1(), net="alex")(x + 0.25, x).item()
        0.5
    """

    higher_is_better = False
    _sum_states = ("total", "frames")

    def __init__(
        self,
        model: torch.nn.Module | None = None,
        *,
        net: str,
        registry: WeightsRegistry | None = None,
        **kwargs: Any,
    ) -> None:
        if net not in LPIPS_WEIGHTS:
            raise ValueError(f"net must be one of {sorted(LPIPS_WEIGHTS)}, got {net!r}")
        super().__init__(model, **kwargs)
        self.net, self.registry = net, registry

    def _load(self) -> torch.nn.Module:
        return load_lpips(self.net, registry=self.registry)

    def update(self, video: Any, target_video: Any) -> None:
        """Adds clips: (B, T, 3, H, W) rendered and reference frames."""
        self._add(_perceptual_update(video, target_video, self._backbone()))

    def compute(self) -> torch.Tensor:
        return torch.tensor(_mean_compute(*self._sums()), dtype=torch.float64)


class STLPIPS(LPIPS):
    """ST-LPIPS (shift-tolerant LPIPS, Ghildyal & Liu 2022), mean per frame; not LPIPS.

    Inputs and output as :class:`LPIPS`; the default network ships with ``stlpips-pytorch``
    and runs offline.

    Example:
        >>> x = torch.rand(1, 2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> STLPIPS(net="alex")(x, x).item()
        0.0
    """

    def _load(self) -> torch.nn.Module:
        return load_stlpips(self.net)
