"""Aligned landmark jitter: frame-to-frame noise of face landmarks once head motion is removed.

Per clip, every frame's landmarks are aligned to the clip's mean shape by a 2-D similarity
transform (rotation, uniform scale, translation; Umeyama's least-squares solution, two rounds of
generalised Procrustes), in units of the mean shape's outer-eye-corner distance. The jitter is the
size of the high-pass residual ``r_t = a_t - (a_{t-1} + a_{t+1}) / 2`` (a centred second
difference), divided by ``sqrt(3/2)``: for i.i.d. isotropic Gaussian noise of standard deviation
``sigma`` per coordinate it reads ``sigma * sqrt(pi / 2)``, the mean length of the noise itself
(the Rayleigh mean), so jitter and noise are on one scale. Slow motion (speech, expressions)
passes the filter only weakly; by default only points that speech barely moves are used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avatar.identity.topology import EYE_L_INNER, EYE_L_OUTER, EYE_R_INNER, EYE_R_OUTER, FACE_OVAL
from evals.functional._clips import as_clips

__all__ = ["RIGID_POINTS", "align_similarity", "landmark_jitter"]

_NOSE_BRIDGE = (6, 168, 197, 195, 5, 4, 1)
_EYE_CORNERS = (EYE_L_OUTER, EYE_L_INNER, EYE_R_OUTER, EYE_R_INNER)
RIGID_POINTS: tuple[int, ...] = tuple(
    sorted({*FACE_OVAL[:10], *FACE_OVAL[-9:], *_EYE_CORNERS, *_NOSE_BRIDGE})
)
"""Upper face oval (forehead, temples), eye corners and nose bridge: points speech barely moves."""
_HIGH_PASS_GAIN = float(np.sqrt(1.5))
"""Standard deviation of the second-difference residual of unit white noise."""


def align_similarity(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Aligns each frame's points to ``target`` by its least-squares similarity transform.

    Args:
        points: (T, N, 2) points per frame (frames with any NaN stay NaN).
        target: (N, 2) target shape.

    Returns:
        (T, N, 2) aligned points: ``s R p + t`` with the rotation R, scale s and translation t
        minimising the squared distance to ``target`` (Umeyama 1991), reflections excluded.
    """
    x = np.asarray(points, np.float64)
    y = np.asarray(target, np.float64)
    out = np.full_like(x, np.nan)
    ok = np.isfinite(x).all(axis=(1, 2))
    if not ok.any():
        return out
    src = x[ok]
    mu_x, mu_y = src.mean(axis=1, keepdims=True), y.mean(axis=0)
    xc, yc = src - mu_x, y - mu_y
    cov = np.einsum("nj,tni->tji", yc, xc) / x.shape[1]  # (T, 2, 2): sum y x^T / N
    u, s, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    sign = np.stack([np.ones_like(d), d], axis=1)  # (T, 2)
    rot = u @ (sign[:, :, None] * vt)
    var_x = (xc**2).sum(axis=(1, 2)) / x.shape[1]
    scale = (s * sign).sum(axis=1) / np.maximum(var_x, 1e-12)
    out[ok] = scale[:, None, None] * np.einsum("tij,tnj->tni", rot, xc) + mu_y
    return out


def _mean_shape(xy: np.ndarray, eye_a: int, eye_b: int) -> np.ndarray | None:
    """Generalised Procrustes mean of (T, N, 2), centred, unit distance between points a and b."""
    ok = np.isfinite(xy).all(axis=(1, 2))
    if not ok.any():
        return None
    ref = xy[np.flatnonzero(ok)[0]]
    for _ in range(2):
        ref = np.nanmean(align_similarity(xy, ref), axis=0)
    ref = ref - ref.mean(axis=0)
    scale = np.linalg.norm(ref[eye_a] - ref[eye_b])
    return ref / scale if scale > 1e-12 else None


def _landmark_jitter_update(landmarks: Any, points: tuple[int, ...] | None) -> tuple[float, float]:
    """Sums: (residual lengths over points and frames, count)."""
    total = count = 0.0
    for lm in as_clips(landmarks, 3, "landmarks", dtype=None):
        if lm.shape[-1] < 2:
            raise ValueError(f"landmarks need x, y in the last axis, got {lm.shape}")
        idx = list(points) if points is not None else list(range(lm.shape[1]))
        if max(idx) >= lm.shape[1]:
            raise ValueError(f"point index {max(idx)} out of range for {lm.shape[1]} landmarks")
        xy = lm[:, idx, :2].astype(np.float64)  # the points used, not a copy of the whole clip
        a, b = idx.index(EYE_L_OUTER), idx.index(EYE_R_OUTER)
        ref = _mean_shape(xy, a, b)
        if ref is None or len(xy) < 3:
            continue
        aligned = align_similarity(xy, ref)
        resid = aligned[1:-1] - 0.5 * (aligned[:-2] + aligned[2:])  # (T-2, N, 2)
        dist = np.linalg.norm(resid, axis=-1)
        ok = np.isfinite(dist).all(axis=1)
        total += float(dist[ok].sum())
        count += float(dist[ok].size)
    return total, count


def _landmark_jitter_compute(total: float, count: float) -> float:
    return total / count / _HIGH_PASS_GAIN if count else float("nan")


def landmark_jitter(landmarks: Any, *, points: tuple[int, ...] | None = RIGID_POINTS) -> float:
    """Aligned landmark jitter of a batch of clips, in fractions of the eye-corner distance.

    Args:
        landmarks: (B, T, P, 2|3) landmarks in pixels (MediaPipe's 478 by default; NaN rows
            where no face), or B (T_i, P, 2|3) arrays.
        points: landmark indices used (must include the outer eye corners 33 and 263); None
            uses every point (then P may be anything but must still include 33 and 263).

    Returns:
        Mean residual length / sqrt(3/2), >= 0 (lower is steadier); ``sigma * sqrt(pi / 2)``
        for i.i.d. Gaussian noise of std ``sigma`` (same units); NaN when no clip has 3 frames.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> face = rng.normal(size=(478, 2)) * 50 + 200; face[263] = face[33] + [100.0, 0.0]
        >>> noisy = face + rng.normal(scale=1.0, size=(400, 478, 2))  # sigma = 1 px = 0.01 eye
        >>> round(landmark_jitter(noisy) / 0.01 / float(np.sqrt(np.pi / 2)), 1)
        1.0
    """
    return _landmark_jitter_compute(*_landmark_jitter_update(landmarks, points))
