"""Perceptual distances of rendered frames to reference frames: LPIPS and ST-LPIPS.

- **LPIPS** (Zhang et al. 2018, ``lpips`` package): the wheel ships only the linear heads; the
  AlexNet trunk (torchvision ``alexnet-owt-7be5be79.pth``) is resolved through
  :mod:`evals.weights` (weights directory, then torch's hub cache) and loaded here, so nothing
  downloads; absent -> :class:`~avatar.errors.WeightsMissingError` with the registry's reason.
- **ST-LPIPS** (shift-tolerant LPIPS, Ghildyal & Liu 2022, ``stlpips-pytorch``): ships complete
  networks and runs offline. A different metric from LPIPS: report it as ST-LPIPS.

Both take frames in [0, 1] and return a distance >= 0 per frame (0 = identical; lower is better).
"""

from __future__ import annotations

import logging
import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from avatar.errors import WeightsMissingError
from avatar.modules.perceptual import load_stlpips
from evals.functional.reconstruction import frame_pairs

if TYPE_CHECKING:
    from evals.weights import WeightsRegistry

log = logging.getLogger(__name__)

__all__ = ["LPIPS_WEIGHTS", "load_lpips", "load_stlpips", "perceptual_distance"]

LPIPS_WEIGHTS = {"alex": "lpips_alex", "vgg": "lpips_vgg"}
"""Trunk of each LPIPS network -> its registry name (configs/weights/registry.yaml)."""


def _load_trunk(model: nn.Module, path: Path) -> None:
    """Copies a torchvision ``features.<i>.*`` state dict into lpips' ``net.slice<k>.<i>.*``."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    trunk: nn.Module = model.net  # type: ignore[assignment]
    mapped = {}
    for slice_name, block in trunk.named_children():
        for idx, _ in block.named_children():
            for pname in ("weight", "bias"):
                key = f"features.{idx}.{pname}"
                if key in state:
                    mapped[f"{slice_name}.{idx}.{pname}"] = state[key]
    expected = {k for k, _ in trunk.named_parameters()}
    if set(mapped) != expected:
        raise WeightsMissingError(
            f"{path} is not a torchvision trunk for lpips: "
            f"missing {sorted(expected - set(mapped))[:4]}"
        )
    trunk.load_state_dict(mapped, strict=True)


def load_lpips(
    net: str = "alex", *, trunk: str | Path | None = None, registry: WeightsRegistry | None = None
) -> nn.Module:
    """LPIPS with the package's linear heads and a torchvision trunk from the weights directory.

    Args:
        net: ``alex`` or ``vgg``.
        trunk: the torchvision state-dict file (None: resolved from the weights registry).
        registry: where to resolve it (None: ``configs/weights/registry.yaml``).

    Raises:
        WeightsMissingError: the trunk is absent (the registry's reason) or not a trunk.
    """
    import lpips  # type: ignore[import-untyped]

    if net not in LPIPS_WEIGHTS:
        raise ValueError(f"net must be one of {sorted(LPIPS_WEIGHTS)}, got {net!r}")
    if trunk is None:
        if registry is None:
            from evals.weights import active_registry

            registry = active_registry()
        trunk = registry.resolve(LPIPS_WEIGHTS[net], required=False)
        if trunk is None:
            reason = str(registry.reason(LPIPS_WEIGHTS[net]))
            raise WeightsMissingError(reason.removeprefix("skipped: "))
    # pnet_rand: torchvision builds an untrained trunk (no download); the heads load from the wheel
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated ``pretrained``
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, verbose=False)
    _load_trunk(model, Path(trunk))
    log.info("LPIPS-%s trunk from %s", net, trunk)
    return model.eval()


@lru_cache(maxsize=2)
@torch.no_grad()
def _perceptual_update(video: Any, target_video: Any, model: nn.Module) -> tuple[float, float]:
    """Sums: (per-frame distance, frames)."""
    total = count = 0.0
    device = next(model.parameters()).device
    for p, t in frame_pairs(video, target_video):
        p, t = p.float().to(device), t.float().to(device)
        d = model(p * 2 - 1, t * 2 - 1).reshape(len(p), -1).mean(1)  # (N,) lpips wants [-1, 1]
        total, count = total + float(d.double().sum()), count + len(d)
    return total, count


def perceptual_distance(video: Any, target_video: Any, model: nn.Module) -> float:
    """Mean per-frame perceptual distance (LPIPS-like ``model``; >= 0, lower is better).

    Args:
        video: (B, T, 3, H, W) rendered frames, float in [0, 1] or uint8.
        target_video: (B, T, 3, H, W) reference frames, same shape and range.
        model: ``model(x, y) -> (N, 1, 1, 1)`` on frames in [-1, 1] (:func:`load_lpips`,
            :func:`load_stlpips`).

    Example:
        >>> class L1(nn.Module):  # a stand-in for LPIPS
        ...     def __init__(self):
        ...         super().__init__(); self.w = nn.Parameter(torch.ones(1))
        ...     def forward(self, x, y):
        ...         return (x - y).abs().mean((1, 2, 3), keepdim=True) * self.w
        >>> x = torch.zeros(1, 2, 3, 4, 4)
        >>> perceptual_distance(x + 0.25, x, L1())
        0.5
    """
    total, count = _perceptual_update(video, target_video, model)
    return total / count if count else float("nan")
