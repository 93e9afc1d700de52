"""Paints the inside of an opened mouth: dark cavity, upper teeth, lower-teeth and tongue hints.

The mouth opening is the polygon of the deformed inner-lip contour. Everything is drawn in
that polygon's bounding box and blended with a feathered, anti-aliased mask, so there is no
visible seam or box; the shading follows the lip contour, so it cannot flicker on its own.
"""

from __future__ import annotations

import cv2
import numpy as np

from avatar.identity import topology as topo
from avatar.identity.types import MouthInterior

_SHIFT = 3  # fixed-point bits for sub-pixel polygon filling
MIN_OPENING_PX = 0.6


def _contour_y(contour: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(contour[:, 0])
    return np.interp(xs, contour[order, 0], contour[order, 1])


def paint_mouth(
    image: np.ndarray, vertices: np.ndarray, mouth: MouthInterior, eye_distance: float
) -> None:
    """Draw the mouth interior into ``image`` in place.

    Args:
        image: (S, S, 3) uint8 RGB output frame (already warped).
        vertices: (478, 2) deformed landmark positions in output pixels.
        mouth: the identity's mouth-interior colours.
        eye_distance: outer eye-corner distance E in pixels (sets teeth size).
    """
    upper = vertices[topo.LIPS_INNER_UPPER].astype(np.float64)
    lower = vertices[topo.LIPS_INNER_LOWER].astype(np.float64)
    polygon = np.concatenate([upper, lower[::-1][1:-1]])
    size = image.shape[0]
    x0 = int(max(np.floor(polygon[:, 0].min()) - 3, 0))
    x1 = int(min(np.ceil(polygon[:, 0].max()) + 4, size))
    y0 = int(max(np.floor(polygon[:, 1].min()) - 3, 0))
    y1 = int(min(np.ceil(polygon[:, 1].max()) + 4, size))
    if x1 <= x0 or y1 <= y0:
        return
    xs = np.arange(x0, x1, dtype=np.float64)
    y_up = _contour_y(upper, xs)  # (w,)
    y_lo = _contour_y(lower, xs)
    gap = np.clip(y_lo - y_up, 0.0, None)
    if gap.max() < MIN_OPENING_PX:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    pts = np.round((polygon - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.7)[..., None]
    interior = _interior(xs, np.arange(y0, y1, dtype=np.float64), y_up, y_lo, upper, mouth,
                         eye_distance)
    roi = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = np.clip(roi + alpha * (interior - roi) + 0.5, 0, 255).astype(np.uint8)


def _interior(
    xs: np.ndarray,
    ys: np.ndarray,
    y_up: np.ndarray,
    y_lo: np.ndarray,
    upper: np.ndarray,
    mouth: MouthInterior,
    eye_distance: float,
) -> np.ndarray:
    """(h, w, 3) float32 RGB mouth interior over the box ``ys x xs``."""
    left, right = upper[0, 0], upper[-1, 0]
    centre = 0.5 * (left + right)
    half = max(0.5 * (right - left), 1.0)
    lateral = np.clip((xs - centre) / half, -1.0, 1.0)[None, :]  # (1, w)
    gap = np.clip(y_lo - y_up, 1e-3, None)[None, :]
    y = ys[:, None]
    depth = np.clip((y - y_up[None, :]) / gap, 0.0, 1.0)  # 0 at the upper lip, 1 at the lower
    corner_shade = 1.0 - 0.55 * lateral**2  # darker towards the corners
    cavity = np.asarray(mouth.cavity_color, np.float32)
    out = cavity * (corner_shade * (0.75 + 0.25 * np.sin(np.pi * depth)))[..., None]
    # tongue: a soft lower hump, visible once the jaw is well open
    tongue_top = y_lo[None, :] - 0.35 * gap * np.sqrt(np.clip(1.0 - lateral**2 / 0.5, 0.0, 1.0))
    tongue = np.clip((y - tongue_top) / np.maximum(0.12 * gap, 1.0), 0.0, 1.0)
    tongue *= np.clip((gap - 0.08 * eye_distance) / (0.06 * eye_distance), 0.0, 1.0)
    out += (tongue * corner_shade)[..., None] * (np.asarray(mouth.tongue_color, np.float32) * 0.8 - out)
    # upper teeth: a band hanging from the upper lip, clipped by the opening
    teeth_h = np.minimum(0.075 * eye_distance, 0.8 * gap)
    in_teeth = np.clip((y_up[None, :] + teeth_h - y) / 1.2, 0.0, 1.0)
    in_teeth *= np.clip((0.88 - np.abs(lateral)) / 0.15, 0.0, 1.0)
    lip_shadow = 0.75 + 0.25 * np.clip((y - y_up[None, :]) / 2.0, 0.0, 1.0)
    teeth = np.asarray(mouth.teeth_color, np.float32) * (corner_shade * lip_shadow)[..., None]
    out += in_teeth[..., None] * (teeth - out)
    # lower teeth: a dim hint just above the lower lip when wide open
    lower_h = np.minimum(0.025 * eye_distance, 0.2 * gap)
    in_lower = np.clip((y - (y_lo[None, :] - lower_h)) / 1.0, 0.0, 1.0) * (gap > 0.12 * eye_distance)
    in_lower *= np.clip((0.6 - np.abs(lateral)) / 0.2, 0.0, 1.0)
    out += (0.6 * in_lower)[..., None] * (teeth * 0.8 - out)
    return out.astype(np.float32)
