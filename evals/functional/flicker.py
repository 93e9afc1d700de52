"""Flicker: mean absolute frame-to-frame change of luminance, overall and in static regions.

Luminance is Rec. 601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` in [0, 1]. In regions that should
not move (the background behind a talking head) any change is flicker from rendering or
compression; over the whole frame the value also includes real motion.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evals.functional._clips import as_clips

__all__ = ["flicker", "luminance"]

_LUMA = np.array([0.299, 0.587, 0.114])


def luminance(frame: np.ndarray) -> np.ndarray:
    """(3, H, W) frame, uint8 in [0, 255] or float in [0, 1] -> (H, W) float32 luma in [0, 1]."""
    f = np.asarray(frame)
    if f.ndim != 3 or f.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) frame, got {f.shape}")
    y = np.tensordot(_LUMA, f, axes=(0, 0)).astype(np.float32)
    return y / 255.0 if f.dtype == np.uint8 else y


def _flicker_update(video: Any, static_mask: Any | None) -> tuple[float, float, float, float]:
    """Sums: (|dY| over all pixels, pixel pairs, |dY| over static pixels, static pixel pairs)."""
    clips = as_clips(video, 4, "video", dtype=None)
    masks = as_clips(static_mask, 2, "static_mask", dtype=bool) if static_mask is not None else None
    if masks is not None and len(masks) != len(clips):
        raise ValueError(f"video has {len(clips)} clips but static_mask has {len(masks)}")
    s_all = n_all = s_static = n_static = 0.0
    for i, clip in enumerate(clips):
        if clip.shape[1] != 3:
            raise ValueError(f"video[{i}] must be (T, 3, H, W), got {clip.shape}")
        mask = masks[i] if masks is not None else None
        if mask is not None and mask.shape != clip.shape[2:]:
            raise ValueError(f"static_mask[{i}] is {mask.shape}, frames are {clip.shape[2:]}")
        prev = None
        for frame in clip:
            y = luminance(frame)
            if prev is not None:
                diff = np.abs(y - prev)
                s_all += float(diff.sum(dtype=np.float64))
                n_all += diff.size
                if mask is not None:
                    s_static += float(diff[mask].sum(dtype=np.float64))
                    n_static += float(mask.sum())
            prev = y
    return s_all, n_all, s_static, n_static


def _flicker_compute(s_all: float, n_all: float, s_static: float, n_static: float) -> dict:
    nan = float("nan")
    return {
        "overall": s_all / n_all if n_all else nan,
        "static": s_static / n_static if n_static else nan,
    }


def flicker(video: Any, static_mask: Any | None = None) -> dict[str, float]:
    """Mean absolute temporal difference of luminance, pooled over frame pairs and pixels.

    Args:
        video: (B, T, 3, H, W) uint8 in [0, 255] or float in [0, 1], or B (T_i, 3, H, W) arrays.
        static_mask: (B, H, W) bool, True where the scene should not move (e.g. background);
            None scores only the whole frame.

    Returns:
        ``overall`` over every pixel and ``static`` over the masked pixels (NaN without a mask
        or masked pixels), in luminance units [0, 1] per frame (x 255 for 8-bit levels); lower
        is steadier.

    Example:
        >>> v = np.zeros((1, 3, 3, 4, 4), np.uint8); v[0, 1] = 51  # one frame brighter by 0.2
        >>> {k: round(x, 3) for k, x in flicker(v, np.ones((1, 4, 4), bool)).items()}
        {'overall': 0.2, 'static': 0.2}
    """
    return _flicker_compute(*_flicker_update(video, static_mask))
