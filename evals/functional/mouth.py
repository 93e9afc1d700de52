"""Mouth aperture and eye openness from MediaPipe face landmarks, normalised by face size.

Both measures are ratios of 2-D (x, y) pixel distances, so they do not depend on the frame size or
on how far the face is from the camera; z (MediaPipe's relative depth) is ignored.
"""

from __future__ import annotations

import numpy as np

from avatar.identity.topology import (
    EYE_L_INNER,
    EYE_L_LOWER,
    EYE_L_OUTER,
    EYE_L_UPPER,
    EYE_R_INNER,
    EYE_R_LOWER,
    EYE_R_OUTER,
    EYE_R_UPPER,
    LIP_INNER_BOTTOM,
    LIP_INNER_TOP,
    NUM_LANDMARKS,
)

__all__ = ["eye_openness", "mouth_aperture"]


def _as_track(landmarks: np.ndarray) -> np.ndarray:
    """(T, 478, 2|3) or one (478, 2|3) face -> (T, 478, 2) x, y (a view: no copy of a long clip)."""
    arr = np.asarray(landmarks)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != NUM_LANDMARKS or arr.shape[2] < 2:
        raise ValueError(f"landmarks must be (T, {NUM_LANDMARKS}, 2 or 3), got {arr.shape}")
    return arr[..., :2]


def _dist(xy: np.ndarray, a: int | list[int], b: int | list[int]) -> np.ndarray:
    """Distances between points ``a`` and ``b`` of each frame, in float64."""
    pa, pb = xy[:, a].astype(np.float64), xy[:, b].astype(np.float64)
    dist: np.ndarray = np.linalg.norm(pa - pb, axis=-1)
    return dist


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is not positive or either is NaN (no warnings)."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    ok = np.isfinite(num) & np.isfinite(den) & (den > 0)
    np.divide(num, den, out=out, where=ok)
    return out


def mouth_aperture(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip opening over eye-corner distance, per frame.

    ``|p13 - p14| / |p33 - p263|``: the gap between the inner-lip midpoints (13 top, 14 bottom)
    divided by the outer-eye-corner distance (33, 263). A closed mouth reads about 0-0.03, relaxed
    speech about 0.1-0.3, a wide-open mouth 0.4 or more.

    Args:
        landmarks: (T, 478, 3) or (T, 478, 2) in pixels (a single (478, 3) face is taken as T=1);
            NaN rows (no face) are allowed.

    Returns:
        (T,) float64 aperture >= 0, NaN in frames without a face.

    Example:
        >>> pts = np.zeros((2, 478, 3)); pts[:, 263, 0] = 100.0; pts[:, 14, 1] = [0.0, 20.0]
        >>> mouth_aperture(pts)
        array([0. , 0.2])
    """
    xy = _as_track(landmarks)
    return _ratio(_dist(xy, LIP_INNER_TOP, LIP_INNER_BOTTOM), _dist(xy, EYE_L_OUTER, EYE_R_OUTER))


def eye_openness(landmarks: np.ndarray) -> np.ndarray:
    """Lid opening over eye width, per frame and eye.

    For each eye, the mean distance between the 7 paired interior points of the upper and lower
    lid contours (each ordered corner to corner, see :mod:`avatar.identity.topology`) divided by
    the distance between the eye's corners. An open eye reads about 0.2-0.35, a closed one below
    about 0.1.

    Args:
        landmarks: (T, 478, 3) or (T, 478, 2) in pixels; NaN rows (no face) are allowed.

    Returns:
        (T, 2) float64 openness >= 0: column 0 the image-left eye (subject's right, corners
        33/133), column 1 the image-right eye (corners 263/362); NaN in frames without a face.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> eye_openness(rng.normal(size=(4, 478, 3))).shape
        (4, 2)
    """
    xy = _as_track(landmarks)
    eyes = (
        (EYE_L_UPPER, EYE_L_LOWER, EYE_L_OUTER, EYE_L_INNER),
        (EYE_R_UPPER, EYE_R_LOWER, EYE_R_OUTER, EYE_R_INNER),
    )
    cols = []
    for upper, lower, outer, inner in eyes:
        if len(upper) != len(lower):
            raise RuntimeError("lid contours differ in length; cannot pair upper and lower points")
        gap = _dist(xy, upper[1:-1], lower[1:-1]).mean(axis=1)  # (T,), corners excluded
        cols.append(_ratio(gap, _dist(xy, outer, inner)))
    return np.stack(cols, axis=1)
