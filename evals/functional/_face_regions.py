"""Face regions for the look metrics: a frame cropped round landmarks, masks drawn in it, luma
sampled across a curve (:mod:`evals.functional.look`)."""

from __future__ import annotations

import cv2
import numpy as np

from avatar.identity.topology import EYE_L_OUTER, EYE_R_OUTER, NUM_LANDMARKS
from evals.functional._clips import to_rgb8

__all__ = ["Crop", "dilate", "eye_scale", "face_xy", "luma", "straighten"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # Rec. 601


def face_xy(landmarks: np.ndarray) -> np.ndarray | None:
    """(478, 2) float64 pixel coordinates, or None when the frame has no face (NaN)."""
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 2 or lm.shape[0] != NUM_LANDMARKS or lm.shape[1] < 2:
        raise ValueError(f"landmarks must be ({NUM_LANDMARKS}, 2 or 3), got {lm.shape}")
    xy = lm[:, :2]
    return xy if np.isfinite(xy).all() else None


def eye_scale(xy: np.ndarray) -> float:
    """d: the outer-eye-corner distance in pixels."""
    return float(np.linalg.norm(xy[EYE_L_OUTER] - xy[EYE_R_OUTER]))


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 luma in [0, 1]."""
    return (rgb.astype(np.float32) @ _LUMA) / 255.0


class Crop:
    """The part of a frame around some points (with a margin), and drawing in its coordinates."""

    def __init__(self, frame: np.ndarray, pts: np.ndarray, margin: float) -> None:
        rgb = to_rgb8(frame)
        h, w = rgb.shape[:2]
        x0, y0 = np.floor(pts.min(axis=0) - margin).astype(int)
        x1, y1 = np.ceil(pts.max(axis=0) + margin).astype(int) + 1
        self.x0, self.y0 = max(x0, 0), max(y0, 0)
        self.rgb = rgb[self.y0 : min(y1, h), self.x0 : min(x1, w)]
        self.shape = self.rgb.shape[:2]
        self.ok = min(self.shape) >= 4  # False: (nearly) off the frame

    def _pts(self, pts: np.ndarray) -> np.ndarray:
        return np.round((pts - [self.x0, self.y0]) * 16).astype(np.int32)  # 4 fractional bits

    def poly(self, pts: np.ndarray) -> np.ndarray:
        """(h, w) bool: the filled polygon."""
        mask = np.zeros(self.shape, np.uint8)
        cv2.fillPoly(mask, [self._pts(pts)], 1, cv2.LINE_8, shift=4)
        return mask.astype(bool)

    def disc(self, centre: np.ndarray, radius: float) -> np.ndarray:
        """(h, w) bool: the filled disc of ``radius`` px round ``centre`` (frame pixels)."""
        mask = np.zeros(self.shape, np.uint8)
        c = self._pts(centre[None])[0]
        cv2.circle(mask, (int(c[0]), int(c[1])), round(radius * 16), 1, -1, cv2.LINE_8, shift=4)
        return mask.astype(bool)


def dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    r = max(round(radius), 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def straighten(y: np.ndarray, pts: np.ndarray, steps: int) -> np.ndarray:
    """Luma sampled across a polyline: (S, 2 * steps + 1) for S positions 1 px apart along
    ``pts`` and offsets -steps/2 .. +steps/2 px (0.5 px apart) along its normal (bilinear)."""
    cum = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    s = np.arange(0.0, cum[-1], 1.0)
    p = np.stack([np.interp(s, cum, pts[:, k]) for k in (0, 1)], axis=1)
    t = np.gradient(p, axis=0) if len(p) > 1 else np.array([[1.0, 0.0]])
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-9)
    n = np.stack([-t[:, 1], t[:, 0]], axis=1)
    o = np.arange(-steps, steps + 1) * 0.5
    mx = (p[:, None, 0] + o[None] * n[:, None, 0]).astype(np.float32)
    my = (p[:, None, 1] + o[None] * n[:, None, 1]).astype(np.float32)
    return cv2.remap(y, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
