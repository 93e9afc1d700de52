"""Paints the inside of an opened mouth: dark cavity, teeth and a tongue hint.

The mouth opening is the polygon of the deformed inner-lip contour. Everything is drawn in
that polygon's bounding box and blended with a feathered, anti-aliased mask, so there is no
visible seam or box; the shading follows the lip contour, so it cannot flicker on its own.

When the source portrait itself shows teeth (an open-mouthed smile), its real teeth are used:
the upper half of the source opening hangs from the upper lip and the lower half rides on the
lower lip, as upper and lower teeth follow the skull and the jaw, with the cavity between.
Otherwise the teeth are synthesised from the identity's colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from avatar.identity import topology as topo
from avatar.renderers.meshwarp.mouth_colours import MouthInterior

_SHIFT = 3  # fixed-point bits for sub-pixel polygon filling
MIN_OPENING_PX = 0.6
SOURCE_TEETH_MIN_GAP = 0.04
"""Source openings wider than this (fraction of the eye distance) provide real teeth."""


@dataclass(frozen=True)
class SourceMouth:
    """The source portrait's own mouth opening.

    Attributes:
        portrait: (S, S, 3) uint8 RGB source portrait.
        upper: (K, 2) inner upper-lip contour in portrait pixels, ordered corner to corner.
        lower: (K, 2) inner lower-lip contour.
    """

    portrait: np.ndarray
    upper: np.ndarray
    lower: np.ndarray

    @staticmethod
    def from_landmarks(portrait: np.ndarray, landmarks: np.ndarray, eye_distance: float):
        """The source opening, or None when it is too narrow to show teeth."""
        upper = landmarks[topo.LIPS_INNER_UPPER, :2].astype(np.float64)
        lower = landmarks[topo.LIPS_INNER_LOWER, :2].astype(np.float64)
        gap = lower[len(lower) // 2, 1] - upper[len(upper) // 2, 1]
        if gap < SOURCE_TEETH_MIN_GAP * eye_distance:
            return None
        return SourceMouth(portrait, upper, lower)


def _contour_y(contour: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(contour[:, 0])
    return np.interp(xs, contour[order, 0], contour[order, 1])


def paint_mouth(
    image: np.ndarray,
    vertices: np.ndarray,
    mouth: MouthInterior,
    eye_distance: float,
    source: SourceMouth | None = None,
) -> None:
    """Draw the mouth interior into ``image`` in place.

    Args:
        image: (S, S, 3) uint8 RGB output frame (already warped).
        vertices: (478, 2) deformed landmark positions in output pixels.
        mouth: the identity's mouth-interior colours.
        eye_distance: outer eye-corner distance E in pixels (sets teeth size).
        source: the source's own open mouth, whose teeth are reused when given.
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
    ys = np.arange(y0, y1, dtype=np.float64)
    interior = _interior(xs, ys, y_up, y_lo, upper, mouth, eye_distance)
    if source is not None:
        teeth, weight = _source_teeth(xs, ys, y_up, y_lo, upper, source)
        interior += weight[..., None] * (teeth - interior)
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
    out += (tongue * corner_shade)[..., None] * (
        np.asarray(mouth.tongue_color, np.float32) * 0.8 - out
    )
    # upper teeth: a band hanging from the upper lip, clipped by the opening
    teeth_h = np.minimum(0.075 * eye_distance, 0.8 * gap)
    in_teeth = np.clip((y_up[None, :] + teeth_h - y) / 1.2, 0.0, 1.0)
    in_teeth *= np.clip((0.88 - np.abs(lateral)) / 0.15, 0.0, 1.0)
    lip_shadow = 0.75 + 0.25 * np.clip((y - y_up[None, :]) / 2.0, 0.0, 1.0)
    teeth = np.asarray(mouth.teeth_color, np.float32) * (corner_shade * lip_shadow)[..., None]
    out += in_teeth[..., None] * (teeth - out)
    # lower teeth: a dim hint just above the lower lip when wide open
    lower_h = np.minimum(0.025 * eye_distance, 0.2 * gap)
    in_lower = np.clip((y - (y_lo[None, :] - lower_h)) / 1.0, 0.0, 1.0) * (
        gap > 0.12 * eye_distance
    )
    in_lower *= np.clip((0.6 - np.abs(lateral)) / 0.2, 0.0, 1.0)
    out += (0.6 * in_lower)[..., None] * (teeth * 0.8 - out)
    return out.astype(np.float32)


def _source_teeth(
    xs: np.ndarray,
    ys: np.ndarray,
    y_up: np.ndarray,
    y_lo: np.ndarray,
    upper: np.ndarray,
    source: SourceMouth,
) -> tuple[np.ndarray, np.ndarray]:
    """The source opening resampled into the output opening.

    Returns:
        ``(rgb, weight)``: (h, w, 3) float32 source texture and (h, w) float32 in [0, 1], 1
        where the source teeth cover the pixel (the rest is cavity).
    """
    left, right = upper[0, 0], upper[-1, 0]
    src_left, src_right = source.upper[0, 0], source.upper[-1, 0]
    u = (xs - left) / max(right - left, 1.0)  # 0..1 across the output mouth
    src_x = src_left + np.clip(u, 0.0, 1.0) * (src_right - src_left)
    src_up = _contour_y(source.upper, src_x)
    src_gap = np.clip(_contour_y(source.lower, src_x) - src_up, 0.0, None)[None, :]
    gap = np.clip(y_lo - y_up, 1e-3, None)[None, :]
    d = ys[:, None] - y_up[None, :]  # depth below the output upper lip, pixels
    from_bottom = y_lo[None, :] - ys[:, None]
    squash = src_gap / gap  # > 1 while the mouth is opened less than the source
    squashed = src_up[None, :] + d * squash
    in_upper = d < 0.5 * src_gap
    split = np.where(in_upper, src_up[None, :] + d, src_up[None, :] + src_gap - from_bottom)
    src_y = np.where(squash >= 1.0, squashed, split)
    half = 0.5 * src_gap
    cover = np.clip(np.maximum(half - d, half - from_bottom) + 0.5, 0.0, 1.0)
    weight = np.where(squash >= 1.0, 1.0, cover)
    map_x = np.broadcast_to(src_x[None, :], src_y.shape).astype(np.float32)
    rgb = cv2.remap(
        source.portrait,
        map_x,
        src_y.astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    ).astype(np.float32)
    return rgb, weight.astype(np.float32)
