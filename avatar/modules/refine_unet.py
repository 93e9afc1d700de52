"""WarpRefineNet: a small FiLM-conditioned U-Net that refines a mesh-warp frame (G in the
warp-and-refine generator of :mod:`avatar.renderers.neural`).

The mesh-warp render is the geometric prior ``P``; the net sees it beside the source portrait
``I_s``, a soft region mask ``R`` (where a warp cannot create content: the mouth and the eyes,
from the warped landmarks) and the frame's motion channel values ``m`` (optionally audio
features ``a``), and predicts a residual ``r`` and a blend mask ``M``::

    x = [2P - 1, 2I_s - 1, R]                     # (B, 7, S, S)
    z = MLP([asinh(m), a])                        # FiLM code of the frame
    r, M = U-Net(x | FiLM(z))                     # (B, 3, S, S) in [-1, 1], (B, 1, S, S) in [0, 1]
    out = clamp(P + M * r, 0, 1)

The residual head is zero-initialised, so an untrained net returns ``P`` exactly (the renderer
then renders plain mesh-warp), and every FiLM layer starts as the identity. Motion values pass
through ``asinh`` so head angles in degrees and unit channels share a scale without a table of
channel ranges. There are no normalisation layers: a pixel's output depends only on its
receptive field, not on statistics of the whole frame, so the net trains on crops (the mouth
at full resolution) and renders whole frames alike (GroupNorm broke exactly that in a test).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

__all__ = ["WarpRefineNet"]

IN_CHANNELS = 7  # prior (3) + source (3) + region mask (1)


class _Block(nn.Module):
    """conv3x3 -> SiLU, twice (the first conv may stride 2); no normalisation (see the
    module docstring)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1),
            nn.SiLU(),
            nn.Conv2d(cout, cout, 3, 1, 1),
            nn.SiLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _FiLM(nn.Module):
    """``h * (1 + gamma(z)) + beta(z)`` per channel; zero-initialised, so it starts as identity."""

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(z)[:, :, None, None].chunk(2, dim=1)
        return h * (1.0 + gamma) + beta


class WarpRefineNet(nn.Module):
    """Prior frame + source + region mask + motion (+ audio) -> residual and blend mask.

    Args:
        motion_dim: C, motion channel values per frame (``len(avatar.motion.track.CHANNELS)``).
        audio_dim: A, audio features per frame (0: no audio input).
        base_channels: width of the first level; each level down doubles it, up to 8x.
        depth: number of stride-2 levels; inputs must have S divisible by ``2 ** depth``.
        cond_dim: width of the FiLM code the motion (and audio) MLP makes.

    All arguments are plain ints so :func:`avatar.checkpoint.save_network` stores them and
    :func:`avatar.checkpoint.load_network` rebuilds the net (``self.config``).

    Example:
        >>> net = WarpRefineNet(motion_dim=21, base_channels=8, depth=2)
        >>> prior, source = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
        >>> region, motion = torch.rand(2, 1, 32, 32), torch.rand(2, 21)
        >>> residual, mask = net(prior, source, region, motion)
        >>> residual.shape, mask.shape
        (torch.Size([2, 3, 32, 32]), torch.Size([2, 1, 32, 32]))
        >>> bool((net.refine(prior, source, region, motion) == prior).all())  # untrained: P
        True
    """

    def __init__(
        self,
        *,
        motion_dim: int,
        audio_dim: int = 0,
        base_channels: int = 32,
        depth: int = 3,
        cond_dim: int = 64,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("motion_dim", motion_dim, 1),
            ("audio_dim", audio_dim, 0),
            ("base_channels", base_channels, 1),
            ("depth", depth, 1),
            ("cond_dim", cond_dim, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"WarpRefineNet: {name} must be an int >= {low}, got {value!r}")
        self.config: dict[str, Any] = dict(
            motion_dim=motion_dim,
            audio_dim=audio_dim,
            base_channels=base_channels,
            depth=depth,
            cond_dim=cond_dim,
        )
        self.motion_dim, self.audio_dim, self.depth = motion_dim, audio_dim, depth
        widths = [base_channels * 2 ** min(i, 3) for i in range(depth + 1)]
        self.cond = nn.Sequential(
            nn.Linear(motion_dim + audio_dim, cond_dim),
            nn.SiLU(),
            nn.Linear(cond_dim, cond_dim),
            nn.SiLU(),
        )
        self.stem = _Block(IN_CHANNELS, widths[0])
        self.down = nn.ModuleList(_Block(widths[i], widths[i + 1], 2) for i in range(depth))
        self.mid_film = _FiLM(cond_dim, widths[depth])
        self.up = nn.ModuleList(
            _Block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.up_film = nn.ModuleList(_FiLM(cond_dim, widths[i]) for i in reversed(range(depth)))
        self.residual_head = nn.Conv2d(widths[0], 3, 3, 1, 1)
        nn.init.zeros_(self.residual_head.weight)  # untrained: out == prior exactly
        nn.init.zeros_(self.residual_head.bias)
        self.mask_head = nn.Conv2d(widths[0], 1, 3, 1, 1)

    def _check(
        self,
        prior: torch.Tensor,
        source: torch.Tensor,
        region: torch.Tensor,
        motion: torch.Tensor,
        audio: torch.Tensor | None,
    ) -> None:
        b, _, s, _ = prior.shape if prior.ndim == 4 else (0, 0, -1, 0)
        if prior.ndim != 4 or prior.shape[1] != 3 or prior.shape[2] != prior.shape[3]:
            raise ValueError(f"prior must be (B, 3, S, S), got {tuple(prior.shape)}")
        if s % 2**self.depth:
            raise ValueError(f"frame side {s} must be divisible by 2**depth = {2**self.depth}")
        if tuple(source.shape) != (b, 3, s, s) or tuple(region.shape) != (b, 1, s, s):
            raise ValueError(
                f"source must be (B, 3, S, S) and region (B, 1, S, S) like the prior "
                f"{(b, 3, s, s)}, got {tuple(source.shape)} and {tuple(region.shape)}"
            )
        if tuple(motion.shape) != (b, self.motion_dim):
            raise ValueError(f"motion must be (B, {self.motion_dim}), got {tuple(motion.shape)}")
        if self.audio_dim and (audio is None or tuple(audio.shape) != (b, self.audio_dim)):
            got = None if audio is None else tuple(audio.shape)
            raise ValueError(f"audio features must be (B, {self.audio_dim}), got {got}")
        if not self.audio_dim and audio is not None:
            raise ValueError("this WarpRefineNet takes no audio (audio_dim=0), got features")

    def forward(
        self,
        prior: torch.Tensor,
        source: torch.Tensor,
        region: torch.Tensor,
        motion: torch.Tensor,
        audio: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Residual and blend mask of a batch of frames.

        Args:
            prior: (B, 3, S, S) mesh-warp frames in [0, 1].
            source: (B, 3, S, S) source portrait in [0, 1] (the same for every frame of one
                identity; broadcast it with ``expand``).
            region: (B, 1, S, S) region mask in [0, 1] (see the module docstring).
            motion: (B, C) motion channel values (channel units: 0..1, -1..1, degrees).
            audio: (B, A) audio features, only when ``audio_dim > 0``.

        Returns:
            ``(residual, mask)``: (B, 3, S, S) in [-1, 1] and (B, 1, S, S) in [0, 1].
        """
        self._check(prior, source, region, motion, audio)
        code = torch.asinh(motion)
        if audio is not None:
            code = torch.cat([code, audio], dim=1)
        z = self.cond(code)
        h = self.stem(torch.cat([2.0 * prior - 1.0, 2.0 * source - 1.0, region], dim=1))
        skips = [h]
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = self.mid_film(skips.pop(), z)
        for block, film in zip(self.up, self.up_film, strict=True):
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = film(block(torch.cat([h, skip], dim=1)), z)
        return torch.tanh(self.residual_head(h)), torch.sigmoid(self.mask_head(h))

    def refine(
        self,
        prior: torch.Tensor,
        source: torch.Tensor,
        region: torch.Tensor,
        motion: torch.Tensor,
        audio: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The refined frames ``clamp(prior + mask * residual, 0, 1)``, (B, 3, S, S) in [0, 1]
        (arguments as :meth:`forward`); differentiable, for training losses too."""
        residual, mask = self(prior, source, region, motion, audio)
        return (prior + mask * residual).clamp(0.0, 1.0)
