"""Region masks (face, mouth, eyes) and mouth-interior measurements for an aligned portrait.

Masks are (S, S) float32 in [0, 1]: polygons from the face-mesh contours, filled with sub-pixel
precision, optionally dilated, then feathered with a Gaussian whose width is a fraction of S.
Colours are RGB floats in [0, 255].
"""

from __future__ import annotations

import cv2
import numpy as np

from avatar.identity.topology import (
    BROW_L,
    BROW_R,
    EYE_L,
    EYE_L_OUTER,
    EYE_R,
    EYE_R_OUTER,
    FACE_OVAL,
    LIP_INNER_BOTTOM,
    LIP_INNER_TOP,
    LIPS_INNER,
    LIPS_OUTER,
    MOUTH_CORNER_L,
    MOUTH_CORNER_R,
)
from avatar.identity.types import MouthInterior

CLOSED_GAP = 0.03
"""An inner-lip gap below this fraction of the outer-eye distance counts as a closed mouth."""
TEETH_GAP = 0.05
"""Above this gap (same units) the opening is searched for visible teeth."""
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


def _median_rgb(portrait: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    pixels = portrait[mask > 0]
    return np.median(pixels, axis=0).astype(np.float64) if len(pixels) >= 10 else None


def _hard(landmarks: np.ndarray, idx: list[int], size: int, dilate_px: float = 0.0) -> np.ndarray:
    return polygon_mask(landmarks[idx, :2], size, dilate_px=dilate_px) > 0.5


def _hsv_scale(rgb: np.ndarray, *, sat: float, val: float) -> np.ndarray:
    """Scales an RGB colour's HSV saturation and value."""
    px = np.clip(rgb, 0, 255).astype(np.uint8).reshape(1, 1, 3)
    hsv = cv2.cvtColor(px, cv2.COLOR_RGB2HSV).astype(np.float64)
    hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * val, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).reshape(3).astype(np.float64)


def _sample_opening(portrait: np.ndarray, opening: np.ndarray) -> tuple:
    """Median teeth (bright, unsaturated) and cavity (dark) colours inside the mouth opening."""
    pixels = portrait[opening]
    if len(pixels) < 20:
        return None, None
    hsv = cv2.cvtColor(pixels.reshape(-1, 1, 3), cv2.COLOR_RGB2HSV).reshape(-1, 3)
    value, sat = hsv[:, 2].astype(np.float64), hsv[:, 1].astype(np.float64)
    bright = (value >= np.percentile(value, 60)) & (sat < 90) & (value > 120)
    dark = value < 70
    teeth = np.median(pixels[bright], axis=0) if bright.sum() >= 20 else None
    # a few dark pixels are only corner shadows; a real view into the mouth shows many
    cavity = np.median(pixels[dark], axis=0) if dark.sum() >= max(20, 0.1 * len(pixels)) else None
    return teeth, cavity


def _as_tuple(rgb: np.ndarray) -> tuple[float, float, float]:
    r, g, b = (round(float(v), 2) for v in np.clip(rgb, 0.0, 255.0))
    return r, g, b


def mouth_interior(portrait: np.ndarray, landmarks: np.ndarray) -> MouthInterior:
    """Measures the mouth and picks colours to paint its inside when the renderer opens it.

    Colours come from the portrait where it shows them: the lips (between the outer and inner lip
    contours) always; teeth and cavity when the source mouth is open enough (gap above
    :data:`TEETH_GAP` of the eye distance). Otherwise they are derived: the cavity is a dark,
    reddened lip colour; the teeth an off-white scaled by the skin's brightness and tinted by
    its hue; the tongue a lip colour pulled towards pink and darkened like the skin.

    Args:
        portrait: (S, S, 3) uint8 RGB aligned portrait.
        landmarks: (478, 2+) landmarks in portrait pixels.

    Returns:
        The mouth measurements (portrait pixels) and colours (RGB in [0, 255]).
    """
    size = portrait.shape[0]
    eye = float(np.linalg.norm(landmarks[EYE_L_OUTER, :2] - landmarks[EYE_R_OUTER, :2]))
    gap = float(np.linalg.norm(landmarks[LIP_INNER_TOP, :2] - landmarks[LIP_INNER_BOTTOM, :2]))
    opening = _hard(landmarks, LIPS_INNER, size)
    lips = _hard(landmarks, LIPS_OUTER, size) & ~_hard(landmarks, LIPS_INNER, size, 0.01 * size)
    lips = cv2.erode(lips.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    features = _hard(landmarks, FACE_OVAL, size)
    for idx, grow in ((EYE_L, 0.03), (EYE_R, 0.03), (BROW_L, 0.02), (BROW_R, 0.02)):
        features &= ~_hard(landmarks, idx, size, grow * size)
    features &= ~_hard(landmarks, LIPS_OUTER, size, 0.03 * size)
    skin = _median_rgb(portrait, features)
    skin = skin if skin is not None else np.array([200.0, 160.0, 140.0])
    lip = _median_rgb(portrait, lips)
    lip = lip if lip is not None else skin * np.array([0.95, 0.7, 0.7])
    light = float(np.clip(skin.mean() / 170.0, 0.5, 1.15))  # skin brightness vs. a typical 170
    tint = skin / max(float(skin.mean()), 1.0)
    teeth = np.array([240.0, 234.0, 222.0]) * light * (0.9 + 0.1 * tint)
    # a mouth's inside is dark and red (blood-lit mucosa), not a grey shadow
    cavity = 0.32 * lip * np.array([1.0, 0.5, 0.5])
    tongue = (0.5 * lip + 0.5 * np.array([190.0, 88.0, 92.0])) * 0.85 * min(light, 1.0)
    if gap > TEETH_GAP * eye:
        seen_teeth, seen_cavity = _sample_opening(portrait, opening)
        teeth = seen_teeth if seen_teeth is not None else teeth
        cavity = seen_cavity if seen_cavity is not None else cavity
    inner = landmarks[LIPS_INNER, :2].astype(np.float64)
    cx, cy = inner.mean(axis=0)
    return MouthInterior(
        center=(float(cx), float(cy)),
        width=float(np.linalg.norm(landmarks[MOUTH_CORNER_L, :2] - landmarks[MOUTH_CORNER_R, :2])),
        source_gap=gap if gap >= CLOSED_GAP * eye else 0.0,
        lip_color=_as_tuple(lip),
        teeth_color=_as_tuple(teeth),
        cavity_color=_as_tuple(cavity),
        tongue_color=_as_tuple(tongue),
    )
