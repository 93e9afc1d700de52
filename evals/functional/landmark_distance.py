"""Landmark distance (LMD): mean Euclidean distance between corresponding landmarks of two clips.

Used for reconstruction tasks, where the render has a ground-truth video: e.g. mouth LMD over the
lip points of rendered and real frames. Optionally normalised per frame by the target's
outer-eye-corner distance, so that it does not depend on the frame size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avatar.identity.topology import EYE_L_OUTER, EYE_R_OUTER
from evals.functional._clips import as_clips

__all__ = ["landmark_distance"]


def _landmark_distance_update(
    preds: Any, target: Any, points: tuple[int, ...] | None, normalize: bool
) -> tuple[float, float]:
    """Sums: (point distances, count) over frames where both faces are found."""
    ps, ts = as_clips(preds, 3, "preds"), as_clips(target, 3, "target")
    if len(ps) != len(ts):
        raise ValueError(f"preds has {len(ps)} clips but target has {len(ts)}")
    total = count = 0.0
    for p, t in zip(ps, ts, strict=True):
        if p.shape != t.shape or p.shape[-1] < 2:
            raise ValueError(f"preds, target must be alike (T, P, 2|3), got {p.shape}, {t.shape}")
        dist = np.linalg.norm(p[..., :2] - t[..., :2], axis=-1)  # (T, P)
        if normalize:
            eye = np.linalg.norm(t[:, EYE_L_OUTER, :2] - t[:, EYE_R_OUTER, :2], axis=-1)
            dist = dist / np.where(eye > 0, eye, np.nan)[:, None]
        if points is not None:
            dist = dist[:, list(points)]
        ok = np.isfinite(dist).all(axis=1)
        total += float(dist[ok].sum())
        count += float(dist[ok].size)
    return total, count


def _landmark_distance_compute(total: float, count: float) -> float:
    return total / count if count else float("nan")


def landmark_distance(
    preds: Any, target: Any, *, points: tuple[int, ...] | None = None, normalize: bool = False
) -> float:
    """Mean distance between corresponding 2-D landmarks (LMD), pooled over points and frames.

    Args:
        preds: (B, T, P, 2|3) landmarks of the render in pixels (NaN rows: no face), or B
            (T_i, P, 2|3) arrays.
        target: the same shape, of the ground truth.
        points: indices to score (e.g. the lip contour); None scores all.
        normalize: divide by the target's outer-eye-corner distance (points 33, 263 of
            MediaPipe's mesh) per frame.

    Returns:
        Mean distance >= 0 in pixels (or eye-corner distances); for isotropic Gaussian noise of
        std ``sigma`` per coordinate it is the Rayleigh mean ``sigma * sqrt(pi / 2)``.

    Example:
        >>> a = np.zeros((1, 2, 3, 2)); b = a.copy(); b[..., 0] = 3.0; b[..., 1] = 4.0
        >>> landmark_distance(a, b)
        5.0
    """
    return _landmark_distance_compute(*_landmark_distance_update(preds, target, points, normalize))
