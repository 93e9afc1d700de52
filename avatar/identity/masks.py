"""Region masks (face, mouth, eyes) of an aligned portrait.

Masks are (S, S) float32 in [0, 1]: polygons from the face-mesh contours, filled with sub-pixel
precision, optionally dilated, then feathered with a Gaussian whose width is a fraction of S.
"""

from __future__ import annotations

import cv2
import numpy as np

from avatar.identity.topology import (
    EYE_L,
    EYE_R,
    FACE_OVAL,
    LIPS_OUTER,
)

CLOSED_GAP = 0.03
"""An inner-lip gap below this fraction of the outer-eye distance counts as a closed mouth."""
# (dilate, feather) per mask as fractions of S: the face fades over ~1.5% of S, the mouth region
# is grown so lip motion stays inside it, eyes are grown a little to include the lash line.
MASK_SHAPES = {
    "face": (FACE_OVAL, 0.0, 0.015),
    "mouth": (LIPS_OUTER, 0.012, 0.006),
    "eye_l": (EYE_L, 0.004, 0.003),
    "eye_r": (EYE_R, 0.004, 0.003),
}
_SHIFT = 4  # fixed-point bits for cv2.fillPoly: 1/16 pixel vertex precision


def polygon_mask(
    points_xy: np.ndarray, size: int, *, dilate_px: float = 0.0, feather_px: float = 0.0
) -> np.ndarray:
    """A filled polygon as a soft mask.

    Args:
        points_xy: (N, 2) polygon vertices in pixels (x right, y down), in order.
        size: mask side S.
        dilate_px: grow the polygon by about this many pixels (elliptical kernel).
        feather_px: Gaussian sigma of the soft edge, pixels (0 keeps a hard edge).

    Returns:
        (S, S) float32 in [0, 1]; 0.5 lies near the (dilated) polygon edge when feathered.
    """
    mask = np.zeros((size, size), np.uint8)
    pts = np.round(np.asarray(points_xy, np.float64) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_8, shift=_SHIFT)
    radius = int(round(dilate_px))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = cv2.dilate(mask, kernel)
    out = mask.astype(np.float32) / 255.0
    if feather_px > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=float(feather_px))
    return np.clip(out, 0.0, 1.0)


def region_masks(landmarks: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """The ``face``, ``mouth``, ``eye_l`` and ``eye_r`` masks (``eye_l`` is on the image left).

    Args:
        landmarks: (478, 2+) landmarks in portrait pixels.
        size: portrait side S.

    Returns:
        name -> (S, S) float32 in [0, 1].
    """
    return {
        name: polygon_mask(
            landmarks[idx, :2], size, dilate_px=dilate * size, feather_px=feather * size
        )
        for name, (idx, dilate, feather) in MASK_SHAPES.items()
    }
