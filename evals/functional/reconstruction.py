"""Reconstruction fidelity of rendered frames against ground-truth frames: PSNR and SSIM.

For reconstruction tasks (re-rendering a recorded clip from its own audio/motion), each frame is
compared with the frame of the reference video at the same index; values are per-frame and
pooled (mean) over every frame of every clip. Both use :mod:`torchmetrics.functional.image`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

__all__ = ["MAX_PSNR_DB", "frame_pairs", "psnr", "ssim"]

MAX_PSNR_DB = 100.0
"""PSNR of identical frames (MSE 0) is infinite; it is capped here so means stay finite."""

_CHUNK = 32  # frames scored at once


def _as_video(x: Any, name: str) -> list[torch.Tensor]:
    """(B, T, 3, H, W) (or (T, 3, H, W), or B such clips) float in [0, 1] or uint8 -> clips."""
    clips = list(x) if isinstance(x, list | tuple) else None
    if clips is None:
        t = torch.as_tensor(x)
        clips = [t] if t.ndim == 4 else list(t) if t.ndim == 5 else None
        if clips is None:
            raise ValueError(f"{name} must be (B, T, 3, H, W), got shape {tuple(t.shape)}")
    out = []
    for i, c in enumerate(clips):
        c = torch.as_tensor(c)
        if c.ndim != 4 or c.shape[1] != 3:
            raise ValueError(f"{name}[{i}] must be (T, 3, H, W), got {tuple(c.shape)}")
        out.append(c.double() / 255.0 if c.dtype == torch.uint8 else c.double())
    return out


def frame_pairs(video: Any, target_video: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Chunks of aligned frames ``(N, 3, H, W)`` float64 in [0, 1] from two batches of clips.

    Raises:
        ValueError: the batches differ in clips or shapes.
    """
    preds, targets = _as_video(video, "video"), _as_video(target_video, "target_video")
    if len(preds) != len(targets):
        raise ValueError(f"video has {len(preds)} clips but target_video has {len(targets)}")
    for p, t in zip(preds, targets, strict=True):
        if p.shape != t.shape:
            raise ValueError(f"video and target_video differ in shape: {p.shape} vs {t.shape}")
        for s in range(0, len(p), _CHUNK):
            yield p[s : s + _CHUNK], t[s : s + _CHUNK]


def _per_frame_update(
    video: Any, target_video: Any, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> tuple[float, float]:
    total = count = 0.0
    for p, t in frame_pairs(video, target_video):
        v = fn(p, t)
        total, count = total + float(v.sum()), count + v.numel()
    return total, count


def _psnr_frames(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    v = peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3))
    return torch.clamp(v, max=MAX_PSNR_DB)


def _ssim_frames(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    if min(p.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs frames of at least 11x11 pixels, got {tuple(p.shape[-2:])}")
    out = structural_similarity_index_measure(p, t, data_range=1.0, reduction="none")
    assert isinstance(out, torch.Tensor)  # a tuple only with return_full_image
    return out


def _psnr_update(video: Any, target_video: Any) -> tuple[float, float]:
    """Sums: (per-frame PSNR in dB, frames)."""
    return _per_frame_update(video, target_video, _psnr_frames)


def _ssim_update(video: Any, target_video: Any) -> tuple[float, float]:
    """Sums: (per-frame SSIM, frames)."""
    return _per_frame_update(video, target_video, _ssim_frames)


def _mean_compute(total: float, count: float) -> float:
    return total / count if count else float("nan")


def psnr(video: Any, target_video: Any) -> float:
    """Mean per-frame PSNR in dB (data range 1; higher is better; capped at ``MAX_PSNR_DB``).

    Args:
        video: (B, T, 3, H, W) rendered frames, float in [0, 1] or uint8.
        target_video: (B, T, 3, H, W) ground-truth frames, same shape and range.

    Example:
        >>> x = torch.zeros(1, 2, 3, 4, 4)
        >>> round(psnr(x + 0.1, x), 3)  # MSE 0.01 -> 20 dB
        20.0
    """
    return _mean_compute(*_psnr_update(video, target_video))


def ssim(video: Any, target_video: Any) -> float:
    """Mean per-frame SSIM (Gaussian 11x11, sigma 1.5, data range 1; in [-1, 1], 1 = identical).

    Args:
        video: (B, T, 3, H, W) rendered frames, float in [0, 1] or uint8, H, W >= 11.
        target_video: (B, T, 3, H, W) ground-truth frames, same shape and range.

    Example:
        >>> x = torch.rand(1, 2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> round(ssim(x, x), 6)
        1.0
    """
    return _mean_compute(*_ssim_update(video, target_video))
