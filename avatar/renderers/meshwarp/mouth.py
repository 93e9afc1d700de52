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
from avatar.renderers.meshwarp.mouth_shading import (
    interior_rgb,
    shaded,
    teeth_shade,
    teeth_shown,
)
from avatar.renderers.meshwarp.rig import contour_y

_SHIFT = 3  # fixed-point bits for sub-pixel polygon filling
MIN_OPENING_PX = 0.6
INTERIOR_BLUR = 0.65
"""The painted interior is blurred by this share of the portrait's measured blur: the
measurement is made on skin texture, and the full amount left the mouth softer than the
cheeks (look metrics on the demo, a photo and a cartoon: 0.5 made the cavity's edges too hard
in 18 % of open frames, 1.0 the mouth too soft in 9 %; 0.65 passes both on all three)."""
CLOSED_BELOW_PX = 2.5
CLOSED_BELOW = 0.02
"""Lips nearer than this (units of E, at least :data:`CLOSED_BELOW_PX` pixels) meet: the line
between them is drawn instead of an interior."""
LIP_LINE_BAND = 0.014
"""Half height of the band redrawn where the lips meet, in units of E (at least 1.5 px)."""
LIP_LINE_SHADOW = 0.15
"""How much darker the line where the lips meet is than the lips (green and blue; red
darkens a little less: the shadow between lips is warm)."""
_WARM_SHADOW = np.array([0.8, 1.0, 1.0], np.float32)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
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


def paint_mouth(
    image: np.ndarray,
    vertices: np.ndarray,
    mouth: MouthInterior,
    eye_distance: float,
    source: SourceMouth | None = None,
) -> None:
    """Draw the lip line and the mouth interior into ``image`` in place.

    Where the lips meet, the line between them is drawn (:func:`close_lip_line`); where they
    are apart, the interior (:func:`interior_rgb`, or the source's own teeth) is blended in
    with a mask whose softness matches the portrait's own blur (``mouth.blur_px``).

    Args:
        image: (S, S, 3) uint8 RGB output frame (already warped).
        vertices: (478, 2) deformed landmark positions in output pixels.
        mouth: the identity's mouth-interior colours.
        eye_distance: outer eye-corner distance E in pixels (sets teeth size).
        source: the source's own open mouth, whose teeth are reused when given.
    """
    upper, lower = opening_contours(vertices)
    polygon = np.concatenate([upper, lower[::-1][1:-1]])
    size = image.shape[0]
    margin = 3 + int(np.ceil(2.0 * mouth.blur_px))
    x0 = int(max(np.floor(polygon[:, 0].min()) - margin, 0))
    x1 = int(min(np.ceil(polygon[:, 0].max()) + margin + 1, size))
    y0 = int(max(np.floor(polygon[:, 1].min()) - margin, 0))
    y1 = int(min(np.ceil(polygon[:, 1].max()) + margin + 1, size))
    if x1 <= x0 or y1 <= y0:
        return
    xs = np.arange(x0, x1, dtype=np.float64)
    y_up = contour_y(upper, xs)  # (w,)
    y_lo = contour_y(lower, xs)
    corners = (float(upper[0, 0]), float(upper[-1, 0]))
    roi = image[y0:y1, x0:x1]
    closed = lips_closed(xs, y_up, y_lo, corners, eye_distance)
    if closed[len(closed) // 2] > 0.0:  # closed in the middle (the corners always nearly meet)
        close_lip_line(roi, y_up - y0, y_lo - y0, closed, eye_distance, mouth.blur_px)
    gap = np.clip(y_lo - y_up, 0.0, None)
    if (gap * (1.0 - closed)).max() < MIN_OPENING_PX:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    pts = np.round((polygon - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    soft = max(0.7, mouth.blur_px)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), soft)
    alpha = (alpha * (1.0 - closed).astype(np.float32)[None, :])[..., None]
    ys = np.arange(y0, y1, dtype=np.float64)
    interior = interior_rgb(xs, ys, y_up, y_lo, corners, mouth, eye_distance, teeth=source is None)
    if source is not None:
        teeth, weight = _source_teeth(xs, ys, y_up, y_lo, upper, source)
        weight *= teeth_shown(y_lo - y_up, eye_distance)[None, :]
        teeth *= shaded(np.ones(3, np.float32), teeth_shade(y_lo - y_up, eye_distance))[None]
        interior += weight[..., None] * (teeth - interior)
    if mouth.blur_px > 0.4:  # about as blurred as the portrait around it
        interior = cv2.GaussianBlur(interior, (0, 0), INTERIOR_BLUR * mouth.blur_px)
    out = roi.astype(np.float32)
    roi[:] = np.clip(out + alpha * (interior - out) + 0.5, 0, 255).astype(np.uint8)


def opening_contours(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, 2) upper and lower edges of the mouth opening, corner to corner, output pixels.

    The inner-lip contours, ending at the outer mouth corners rather than the inner ones: a
    jaw that opens stretches the corners' pixels between the two, and the opening must
    cover them.
    """
    upper = vertices[topo.LIPS_INNER_UPPER].astype(np.float64)
    lower = vertices[topo.LIPS_INNER_LOWER].astype(np.float64)
    for contour in (upper, lower):
        contour[0] = vertices[topo.MOUTH_CORNER_L]
        contour[-1] = vertices[topo.MOUTH_CORNER_R]
    return upper, lower


def lips_closed(
    xs: np.ndarray,
    y_up: np.ndarray,
    y_lo: np.ndarray,
    corners: tuple[float, float],
    eye_distance: float,
) -> np.ndarray:
    """(w,) how closed the lips are at each column, in [0, 1]: 1 where they meet (nearer than
    0.5 px), 0 from :data:`CLOSED_BELOW` apart, fading out towards the corners."""
    gap = np.clip(y_lo - y_up, 0.0, None)
    below = max(CLOSED_BELOW_PX, CLOSED_BELOW * eye_distance)
    closed = np.clip((below - gap) / (below - 0.5), 0.0, 1.0)
    half_width = max(0.5 * (corners[1] - corners[0]), 1.0)
    lateral = np.abs(xs - 0.5 * (corners[0] + corners[1])) / half_width
    return closed * np.clip((1.0 - lateral) / 0.1, 0.0, 1.0)


def close_lip_line(
    roi: np.ndarray,
    y_up: np.ndarray,
    y_lo: np.ndarray,
    closed: np.ndarray,
    eye_distance: float,
    blur_px: float,
) -> None:
    """Where the lips meet, draw the line between them in place: lip colour and a soft shadow.

    A warp that closes a mouth over teeth leaves a sliver of tooth white between the lips
    (the fold's last pixels). Over a band around the meeting line, pixels brighter than the
    lips' own colours just above and below the band (interpolated across it) take those
    colours; the rest keep the warp's texture. All are darkened by a soft shadow line where
    the lips meet.

    Args:
        roi: (h, w, 3) uint8 RGB box of the frame, changed in place.
        y_up, y_lo: (w,) inner-lip edges in box pixels.
        closed: (w,) :func:`lips_closed` of each column.
        eye_distance: E, pixels; blur_px: the portrait's blur (Gaussian sigma, pixels).
    """
    cols = np.flatnonzero(closed > 0)
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    gap = np.clip(y_lo[c0:c1] - y_up[c0:c1], 0.0, None)
    mid = 0.5 * (y_up[c0:c1] + y_lo[c0:c1])
    half = max(1.5, LIP_LINE_BAND * eye_distance) + 0.5 * gap  # (w,) pixels
    h = roi.shape[0]
    r0 = int(max(np.floor((mid - half).min()) - 1, 0))
    r1 = int(min(np.ceil((mid + half).max()) + 2, h))
    if r1 - r0 < 2:
        return
    band = roi[:, c0:c1]
    index = np.arange(c1 - c0)

    def row(y: np.ndarray) -> np.ndarray:  # (w, 3) colours at fractional rows, per column
        y = np.clip(y, 0.0, h - 1.001)
        top = np.floor(y).astype(np.int64)
        t = (y - top).astype(np.float32)[:, None]
        return (1.0 - t) * band[top, index] + t * band[top + 1, index]

    above, below = row(mid - half - 1.0), row(mid + half + 1.0)
    y = np.arange(r0, r1, dtype=np.float32)[:, None]
    mid, half = mid.astype(np.float32), half.astype(np.float32)
    t = np.clip((y - (mid - half)) / (2.0 * half), 0.0, 1.0)[..., None]
    fill = above[None] + t * (below - above)[None]
    spread = max(0.9, 0.006 * eye_distance, 0.6 * blur_px)
    shadow = np.float32(LIP_LINE_SHADOW) * np.exp(-0.5 * ((y - mid) / np.float32(spread)) ** 2)
    weight = np.clip(half + 0.5 - np.abs(y - mid), 0.0, 1.0) * closed[c0:c1].astype(np.float32)
    out = band[r0:r1].astype(np.float32)
    # pixels brighter than the lips' own colours (tooth white) take them; the warp's darker
    # junction and texture stay, and all is shaded along the line
    lips = np.where(((out - fill) @ _LUMA > 0.0)[..., None], fill, out)
    line = lips * (1.0 - shadow[..., None] * _WARM_SHADOW)
    band[r0:r1] = np.clip(out + weight[..., None] * (line - out) + 0.5, 0, 255).astype(np.uint8)


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
    src_up = contour_y(source.upper, src_x)
    src_gap = np.clip(contour_y(source.lower, src_x) - src_up, 0.0, None)[None, :]
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
