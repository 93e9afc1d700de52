"""Paints the upper eyelids where they close over the eye: skin with a lash line.

The warp moves the lid margin down over the eye by stretching what lies above it, so a
closed lid would be the lashes smeared over the eye. Instead, the band the lid covers (from
where its margin is with the eye open down to where it is now) is drawn as lid skin: the
skin just above the eye, mirrored downwards so its grain stays at its own scale, brought to
the lid's colour and shaded towards the margin, with a lash line along the margin. Sizes
scale with the outer-eye-corner distance E.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from avatar.identity import topology as topo
from avatar.renderers.meshwarp.rig import contour_y

EYES = (
    (topo.EYE_L_UPPER, topo.BROW_L_LOWER, "blink_l"),
    (topo.EYE_R_UPPER, topo.BROW_R_LOWER, "blink_r"),
)
"""(upper lid contour, lower brow contour, channel) of each eye."""
LASH_CLEARANCE = 0.035
"""Skin is taken from this far above the open lid's margin (past the lashes), units of E."""
LASH_WIDTH = 0.012
"""Thickness of the lash line, units of E (at least 1 px)."""
SKIN_TOLERANCE = 45.0
"""Pixels under the brow further than this (RGB distance) from the face's median colour are
not counted as lid skin."""
MIN_DROP_PX = 0.5
"""A lid moved less than this (pixels) is left as the warp made it."""


@dataclass(frozen=True)
class LidLook:
    """What a closed lid looks like, measured on the portrait (RGB floats in [0, 255]).

    Attributes:
        skin: (2, 3) lid skin colour of each eye (the skin between lashes and brow).
        lash: (2, 3) lash colour of each eye (the darkest pixels along the lid margin).
    """

    skin: np.ndarray
    lash: np.ndarray


def _between(portrait: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(N, 3) pixels of the polygon between two contours (K, 2) that run the same way."""
    polygon = np.concatenate([low, high[::-1]])
    mask = np.zeros(portrait.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    return portrait[mask > 0].astype(np.float64)


def lid_look(portrait: np.ndarray, landmarks: np.ndarray) -> LidLook:
    """Measures each eye's lid skin and lash colours.

    The skin is the median of the band under the brow (from a fifth to a half of the way
    from the brow down to the lid), which is skin in photos, paintings and cartoons alike;
    the lashes are the darkest third of the pixels along the upper lid's margin.

    Args:
        portrait: (S, S, 3) uint8 RGB.
        landmarks: (478, 2+) portrait pixels.
    """
    pts = np.asarray(landmarks, np.float64)[:, :2]
    e = float(np.linalg.norm(pts[topo.EYE_L_OUTER] - pts[topo.EYE_R_OUTER]))
    face = _between(portrait, *np.split(pts[topo.FACE_OVAL], 2))
    face_skin = np.median(face, axis=0) if len(face) else np.full(3, 180.0)
    skins, lashes = [], []
    for upper, brow, _ in EYES:
        lid = pts[list(upper)]
        lid = lid[np.argsort(lid[:, 0])]
        brow_y = contour_y(pts[list(brow)], lid[:, 0])
        under_brow = np.stack([lid[:, 0], brow_y + 0.2 * (lid[:, 1] - brow_y)], axis=1)
        mid = np.stack([lid[:, 0], brow_y + 0.5 * (lid[:, 1] - brow_y)], axis=1)
        skin = _between(portrait, mid, under_brow)
        margin = _between(portrait, lid + [0.0, 0.01 * e], lid - [0.0, 0.015 * e])
        # glasses, hair or make-up under the brow are not the lid's skin
        skin = skin[np.linalg.norm(skin - face_skin, axis=1) < SKIN_TOLERANCE]
        skins.append(np.median(skin, axis=0) if len(skin) >= 5 else 0.95 * face_skin)
        if len(margin) >= 5:
            luma = margin @ [0.299, 0.587, 0.114]
            lashes.append(np.median(margin[luma <= np.percentile(luma, 30)], axis=0))
        else:
            lashes.append(0.35 * skins[-1])
    return LidLook(np.asarray(skins, np.float32), np.asarray(lashes, np.float32))


def paint_lids(
    image: np.ndarray,
    open_vertices: np.ndarray,
    vertices: np.ndarray,
    look: LidLook,
    eye_distance: float,
    blur_px: float,
) -> None:
    """Draw each upper lid that has come down over its eye, in place.

    Args:
        image: (S, S, 3) uint8 RGB frame (already warped).
        open_vertices: (478, 2) where the landmarks would be with the eyes open.
        vertices: (478, 2) where they are.
        look: the identity's lid colours.
        eye_distance: E, pixels; blur_px: the portrait's blur (Gaussian sigma, pixels).
    """
    for k, (upper, _, _) in enumerate(EYES):
        lid_open = open_vertices[list(upper)].astype(np.float64)
        lid_now = vertices[list(upper)].astype(np.float64)
        if (lid_now[:, 1] - lid_open[:, 1]).max() < MIN_DROP_PX:
            continue
        _paint_lid(image, lid_open, lid_now, look.skin[k], look.lash[k], eye_distance, blur_px)


def _paint_lid(image, lid_open, lid_now, skin, lash, eye_distance, blur_px) -> None:
    e, size = float(eye_distance), image.shape[0]
    clear = LASH_CLEARANCE * e
    x0 = int(max(np.floor(lid_open[:, 0].min()) - 1, 0))
    x1 = int(min(np.ceil(lid_open[:, 0].max()) + 2, size))
    top = float(lid_open[:, 1].min()) - 2.0 * clear
    y0 = int(max(np.floor(top) - 1, 0))
    y1 = int(min(np.ceil(lid_now[:, 1].max()) + 4, size))
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    xs = np.arange(x0, x1, dtype=np.float64)
    y_open, y_now = contour_y(lid_open, xs), contour_y(lid_now, xs)
    drop = np.clip(y_now - y_open, 0.0, None)
    ys = np.arange(y0, y1, dtype=np.float64)[:, None]
    depth = ys - y_open[None, :]  # pixels below the open margin
    # skin above the lashes, mirrored down over the lid
    src_y = (y_open[None, :] - clear) - np.clip(depth, 0.0, None) * 0.6
    roi = image[y0:y1, x0:x1]
    texture = cv2.remap(
        image,
        np.broadcast_to(xs[None, :], src_y.shape).astype(np.float32),
        src_y.astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    ).astype(np.float32)
    mean = cv2.GaussianBlur(texture, (0, 0), max(2.0, 0.03 * e))
    lid = texture - mean + np.asarray(skin, np.float32)  # the grain, at the lid's colour
    toward_margin = np.clip(depth / np.maximum(drop[None, :], 1.0), 0.0, 1.0)
    lid *= (1.0 - 0.12 * toward_margin**2)[..., None]
    # the lash line along the margin, thinning towards the corners
    width = max(1.0, LASH_WIDTH * e)
    ends = np.clip(np.abs(xs - 0.5 * (xs[0] + xs[-1])) / (0.5 * (xs[-1] - xs[0]) + 1.0), 0, 1)
    strength = 0.9 * (1.0 - ends**4)[None, :]
    lash_w = strength * np.exp(-0.5 * ((ys - y_now[None, :] + 0.3 * width) / width) ** 2)
    lid += lash_w[..., None] * (np.asarray(lash, np.float32) - lid)
    # where the lid is: from a little above the open margin down to its margin now
    inside = np.clip((depth + clear) / clear, 0.0, 1.0) * np.clip(
        y_now[None, :] + width - ys, 0.0, 1.0
    )
    covering = np.clip(drop / 1.5, 0.0, 1.0)[None, :] * np.clip((1.0 - ends) / 0.08, 0, 1)
    alpha = np.maximum(inside * covering, lash_w * covering).astype(np.float32)
    if blur_px > 0.4:
        alpha = cv2.GaussianBlur(alpha, (0, 0), 0.5 * blur_px)
        lid = cv2.GaussianBlur(lid, (0, 0), 0.5 * blur_px)
    out = roi.astype(np.float32)
    roi[:] = np.clip(out + alpha[..., None] * (lid - out) + 0.5, 0, 255).astype(np.uint8)
