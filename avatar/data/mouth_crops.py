"""Lower-face crops for the sync expert, placed by the eyes so that the jaw moves inside them.

The crop is a similarity transform of each frame: its centre sits ``CENTRE_BELOW`` eye
distances below the midpoint of the eye centres, along the face's vertical axis (perpendicular
to the line through the eyes), and it spans ``WIDTH_D`` eye distances across and half that
down. The mouth landmarks are not used to place it, so opening the jaw moves the lips and chin
inside a fixed window instead of recentring it. The eye positions are smoothed over ``smooth``
frames (tracker jitter); frames without a face take the nearest face's placement. Large faces
are shrunk by pixel area before the warp, so crops of a 128 px and a 1024 px render match.

Training data (:mod:`avatar.data.sync_clips`) and the metric (:mod:`evals.functional.sync_expert`)
both crop with :func:`mouth_crops`, so the expert sees the same framing in both.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import uniform_filter1d

__all__ = ["CROP_SHAPE", "STORED_SHAPE", "center_crop", "mouth_crops"]

RIGHT_EYE = (33, 133)  # MediaPipe face mesh: outer and inner corner (the subject's right eye)
LEFT_EYE = (263, 362)
CENTRE_BELOW = 1.35  # eye distances from the eyes' midpoint down to the crop centre
WIDTH_D = 2.2  # crop width in eye distances (height: half of it, like the network input)
CROP_SHAPE = (48, 96)  # (H, W) pixels the network sees
STORED_SHAPE = (56, 112)  # (H, W) stored crops: a margin for shift/scale augmentation
STORED_SCALE = STORED_SHAPE[1] / CROP_SHAPE[1]  # the stored crop covers this much more face


def nearest_true(ok: np.ndarray) -> np.ndarray:
    """(T,) index of the nearest True entry of a (T,) bool array (ties: the earlier one).

    The same as ``good[np.abs(good[None] - np.arange(T)[:, None]).argmin(1)]`` with ``good =
    np.flatnonzero(ok)``, without its (T, T) matrix.

    Example:
        >>> nearest_true(np.array([False, True, False, True, False, False])).tolist()
        [1, 1, 1, 3, 3, 3]
    """
    good = np.flatnonzero(ok)
    if not len(good):
        raise ValueError("no True entry")
    idx = np.arange(len(ok))
    j = np.searchsorted(good, idx)  # good[j - 1] < idx <= good[j]
    left, right = good[np.maximum(j - 1, 0)], good[np.minimum(j, len(good) - 1)]
    d_left = np.where(j > 0, idx - left, np.iinfo(np.int64).max)
    d_right = np.where(j < len(good), right - idx, np.iinfo(np.int64).max)
    return np.where(d_left <= d_right, left, right)


def _fill_missing(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Rows where ``ok`` is False take the nearest row where it is True."""
    return values[nearest_true(ok)]


def mouth_crops(
    frames: np.ndarray,
    landmarks: np.ndarray,
    *,
    shape: tuple[int, int] = STORED_SHAPE,
    scale: float = STORED_SCALE,
    smooth: int = 3,
) -> np.ndarray | None:
    """Grey lower-face crops of every frame.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        landmarks: (T, 478, 2|3) MediaPipe face-mesh landmarks in pixels (NaN rows: no face).
        shape: (h, w) output pixels.
        scale: the crop spans ``scale * WIDTH_D`` eye distances across (``w / h`` sets the height).
        smooth: frames of the moving average over eye positions (1: none).

    Returns:
        (T, h, w) uint8 crops, or None when no frame has a face.

    Example:
        >>> mouth_crops(np.zeros((2, 64, 64, 3), np.uint8), np.full((2, 478, 3), np.nan)) is None
        True
    """
    lm = np.asarray(landmarks, np.float64)[..., :2]
    if len(frames) != len(lm):
        raise ValueError(f"{len(frames)} frames but {len(lm)} landmark rows")
    ok = np.isfinite(lm[:, list(RIGHT_EYE) + list(LEFT_EYE)]).all(axis=(1, 2))
    if not ok.any():
        return None
    eyes = np.stack([lm[:, list(RIGHT_EYE)].mean(1), lm[:, list(LEFT_EYE)].mean(1)], 1)  # (T,2,2)
    eyes = _fill_missing(eyes, ok)
    if smooth > 1:
        eyes = uniform_filter1d(eyes, size=smooth, axis=0, mode="nearest")
    h, w = shape
    out = np.empty((len(frames), h, w), np.uint8)
    for i, (frame, (r_eye, l_eye)) in enumerate(zip(frames, eyes, strict=True)):
        across = l_eye - r_eye  # image x grows towards the subject's left eye
        d = float(np.hypot(*across))
        ux = across / max(d, 1e-6)
        uy = np.array([-ux[1], ux[0]])  # down the face
        centre = (r_eye + l_eye) / 2 + CENTRE_BELOW * d * uy
        px = scale * WIDTH_D * d / w  # source pixels per output pixel
        # output (x, y) -> source: centre + (x - w/2) * px * ux + (y - h/2) * px * uy
        m = np.column_stack([px * ux, px * uy, centre - px * (w / 2 * ux + h / 2 * uy)])
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if px >= 2.0:  # shrink by area first: bilinear sampling alone would alias
            f = int(px)
            grey = cv2.resize(
                grey, (grey.shape[1] // f, grey.shape[0] // f), interpolation=cv2.INTER_AREA
            )
            m = m / f
        out[i] = cv2.warpAffine(
            grey,
            m,
            (w, h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return out


def center_crop(crops: np.ndarray, shape: tuple[int, int] = CROP_SHAPE) -> np.ndarray:
    """The centred ``shape`` window of (..., H, W) crops (stored size -> network input).

    Example:
        >>> center_crop(np.zeros((3, 56, 112), np.uint8)).shape
        (3, 48, 96)
    """
    h, w = crops.shape[-2:]
    y, x = (h - shape[0]) // 2, (w - shape[1]) // 2
    if y < 0 or x < 0:
        raise ValueError(f"crops of {h}x{w} are smaller than {shape}")
    return crops[..., y : y + shape[0], x : x + shape[1]]
