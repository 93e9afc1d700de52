"""PatchDiscriminator: a small PatchGAN (Isola et al. 2017) judging local patches of frames.

Strided 4x4 convolutions with LeakyReLU and spectral normalisation (no batch statistics, so
crops and whole frames are judged alike), ending in one logit per patch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import spectral_norm

__all__ = ["PatchDiscriminator"]


class PatchDiscriminator(nn.Module):
    """(B, 3, H, W) frames in [0, 1] -> (B, 1, H / 2**n, W / 2**n) real-vs-fake logits.

    Args:
        channels: width of the first layer; each further layer doubles it (up to 8x).
        layers: n, stride-2 layers (the receptive field grows with them).

    Example:
        >>> PatchDiscriminator(channels=4, layers=2)(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, *, channels: int = 32, layers: int = 3) -> None:
        super().__init__()
        if channels < 1 or layers < 1:
            raise ValueError(f"channels and layers must be >= 1, got {channels}, {layers}")
        self.config: dict[str, Any] = dict(channels=channels, layers=layers)
        blocks: list[nn.Module] = []
        cin = 3
        for i in range(layers):
            cout = channels * 2 ** min(i, 3)
            blocks += [spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2)]
            cin = cout
        blocks.append(spectral_norm(nn.Conv2d(cin, 1, 3, 1, 1)))
        self.body = nn.Sequential(*blocks)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.body(2.0 * frames - 1.0)
