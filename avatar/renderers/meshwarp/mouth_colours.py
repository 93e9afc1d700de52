"""Mouth-interior measurements of a portrait for mesh-warp: where the mouth is and the colours
of lips, teeth, cavity and tongue that :mod:`avatar.renderers.meshwarp.mouth` paints.

Colours are RGB floats in [0, 255]; coordinates and lengths are in portrait pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from avatar.identity.masks import CLOSED_GAP, polygon_mask
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

__all__ = ["TEETH_GAP", "MouthInterior", "mouth_interior"]

TEETH_GAP = 0.05
"""Above this gap (fraction of the outer-eye distance) the opening is searched for teeth."""


@dataclass(frozen=True)
class MouthInterior:
    """Measurements and colours used to paint the inside of an opened mouth.

    Coordinates and lengths are in portrait pixels; colours are RGB floats in [0, 255].
    """

    center: tuple[float, float]  # (x, y) midpoint of the inner lip contour
    width: float  # distance between the mouth corners (landmarks 61 and 291)
    source_gap: float  # inner-lip gap in the source portrait (13 to 14), 0 when closed
    lip_color: tuple[float, float, float]
    teeth_color: tuple[float, float, float]
    cavity_color: tuple[float, float, float]
    tongue_color: tuple[float, float, float]
    blur_px: float = 0.0  # the portrait's own blur around the mouth, Gaussian sigma in pixels


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


def texture_blur_px(portrait: np.ndarray, region: np.ndarray) -> float:
    """How blurred the portrait is in ``region``: the sigma (pixels) of a Gaussian blur of a
    sharp texture that would look the same.

    Blurring by 1 px more divides the Laplacian's energy of a texture blurred by s by
    ``((s^2 + 1) / s^2)^3`` (a Gaussian-filtered white texture): that ratio, measured, gives s.
    A sharp photo gives about 0.5 (pixel-level detail), a face upscaled 3x about 1.5.

    Args:
        portrait: (S, S, 3) uint8 RGB.
        region: (S, S) bool, the pixels to measure (the skin around the mouth).

    Returns:
        sigma in [0, 3] pixels; 0 when the region is flat or too small to tell.
    """
    if region.sum() < 50:
        return 0.0
    gray = cv2.cvtColor(portrait, cv2.COLOR_RGB2GRAY).astype(np.float32)
    sharp = cv2.Laplacian(gray, cv2.CV_32F)[region]
    soft = cv2.Laplacian(cv2.GaussianBlur(gray, (0, 0), 1.0), cv2.CV_32F)[region]
    energy = float(np.var(sharp))
    if energy < 1e-3:
        return 0.0
    kept = float(np.clip(np.var(soft) / energy, 1e-6, 0.999)) ** (1.0 / 3.0)
    return round(float(np.clip(np.sqrt(kept / (1.0 - kept)), 0.0, 3.0)), 3)


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
    around = _hard(landmarks, LIPS_OUTER, size, 0.06 * size) & features
    return MouthInterior(
        center=(float(cx), float(cy)),
        width=float(np.linalg.norm(landmarks[MOUTH_CORNER_L, :2] - landmarks[MOUTH_CORNER_R, :2])),
        source_gap=gap if gap >= CLOSED_GAP * eye else 0.0,
        lip_color=_as_tuple(lip),
        teeth_color=_as_tuple(teeth),
        cavity_color=_as_tuple(cavity),
        tongue_color=_as_tuple(tongue),
        blur_px=texture_blur_px(portrait, around),
    )
