"""Rasteriser: per-vertex values interpolated over every portrait pixel (a sparse weighted sum
of at most five vertices per pixel), with special rules across the mouth and eye openings."""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from avatar.identity import topology as topo


def _column_weights(
    contour: list[int], points: np.ndarray, xs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation along a contour by x.

    Returns:
        ``(idx, w, y)``: (n, 2) vertex indices, (n, 2) weights and (n,) contour y at ``xs``.
    """
    c = np.asarray(contour)
    order = np.argsort(points[c, 0])
    c = c[order]
    cx, cy = points[c, 0], points[c, 1]
    j = np.clip(np.searchsorted(cx, xs) - 1, 0, len(c) - 2)
    span = np.maximum(cx[j + 1] - cx[j], 1e-6)
    f = np.clip((xs - cx[j]) / span, 0.0, 1.0)
    idx = np.stack([c[j], c[j + 1]], axis=1)
    w = np.stack([1.0 - f, f], axis=1)
    return idx, w, (1.0 - f) * cy[j] + f * cy[j + 1]


def _polygon_pixels(points: np.ndarray, polygon: list[int], size: int) -> np.ndarray:
    """Flat indices of the pixels inside ``polygon`` (dilated by one pixel)."""
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(points[polygon]).astype(np.int32)], 1)
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    return np.flatnonzero(mask)


class Rasteriser:
    """Interpolation of per-vertex values over every portrait pixel.

    Each pixel is a sparse weighted sum of at most :attr:`TERMS` vertices. Most pixels use
    the barycentric weights of a Delaunay triangulation of the 478 landmarks plus fixed anchors
    (a ring around the face and points along the border, so displacements fade to zero away
    from the face). Two kinds of openings get their own rule instead, because triangles that
    span them would smear one side into the other:

    * the mouth (between the inner lip contours) and the eyes (between the lids): a vertical
      blend of the two contours at the pixel's x, so when the contours meet the opening is
      squashed to a line (closed lips over the teeth of an open source mouth, a shut lid);
      the eyes add a bump around the iris centre that carries gaze.
    """

    TERMS = 5

    def __init__(self, landmarks: np.ndarray, size: int) -> None:
        pts = np.asarray(landmarks[:, :2], np.float64)
        oval = pts[topo.FACE_OVAL]
        centre = oval.mean(axis=0)
        ring = centre + 1.35 * (oval - centre)
        border = np.linspace(0, size - 1, 9)
        edge = np.array(
            [(x, 0) for x in border]
            + [(x, size - 1) for x in border]
            + [(0, y) for y in border[1:-1]]
            + [(size - 1, y) for y in border[1:-1]],
            np.float64,
        )
        self.n_landmarks = len(pts)
        self.vertices = np.concatenate([pts, ring, edge])  # (N + A, 2)
        self.size = size
        tri = Delaunay(self.vertices)
        yy, xx = np.mgrid[0:size, 0:size]
        pix = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float64)
        simplex = tri.find_simplex(pix)
        simplex = np.where(simplex < 0, 0, simplex)  # outside the hull (cannot happen): tri 0
        trans = tri.transform[simplex]  # (P, 3, 2)
        b01 = np.einsum("pij,pj->pi", trans[:, :2], pix - trans[:, 2])
        bary = np.concatenate([b01, 1.0 - b01.sum(axis=1, keepdims=True)], axis=1)
        self.idx = np.zeros((len(pix), self.TERMS), np.int32)  # (P, TERMS) vertex indices
        self.w = np.zeros((len(pix), self.TERMS), np.float32)  # (P, TERMS) weights
        self.idx[:, :3] = tri.simplices[simplex]
        self.w[:, :3] = np.clip(bary, 0.0, 1.0)
        self._mouth_rule(pts, pix)
        for upper, lower, iris in (
            (topo.EYE_L_UPPER, topo.EYE_L_LOWER, (topo.IRIS_L_CENTER, topo.IRIS_L)),
            (topo.EYE_R_UPPER, topo.EYE_R_LOWER, (topo.IRIS_R_CENTER, topo.IRIS_R)),
        ):
            self._eye_rule(pts, pix, upper, lower, iris)

    def _set(self, sel: np.ndarray, idx: np.ndarray, w: np.ndarray) -> None:
        self.idx[sel] = 0
        self.w[sel] = 0.0
        self.idx[sel, : idx.shape[1]] = idx
        self.w[sel, : w.shape[1]] = w

    def _mouth_rule(self, pts: np.ndarray, pix: np.ndarray) -> None:
        sel = _polygon_pixels(pts, topo.LIPS_INNER, self.size)
        xs, ys = pix[sel, 0], pix[sel, 1]
        up_i, up_w, up_y = _column_weights(topo.LIPS_INNER_UPPER, pts, xs)
        lo_i, lo_w, lo_y = _column_weights(topo.LIPS_INNER_LOWER, pts, xs)
        t = np.clip((ys - up_y) / np.maximum(lo_y - up_y, 1e-3), 0.0, 1.0)[:, None]
        self._set(
            sel,
            np.concatenate([up_i, lo_i], axis=1),
            np.concatenate([(1 - t) * up_w, t * lo_w], axis=1),
        )

    def _eye_rule(self, pts, pix, upper, lower, iris) -> None:
        sel = _polygon_pixels(pts, upper + lower[::-1][1:-1], self.size)
        xs, ys = pix[sel, 0], pix[sel, 1]
        up_i, up_w, up_y = _column_weights(upper, pts, xs)
        lo_i, lo_w, lo_y = _column_weights(lower, pts, xs)
        t = np.clip((ys - up_y) / np.maximum(lo_y - up_y, 1e-3), 0.0, 1.0)[:, None]
        centre, ring = iris
        radius = max(float(np.mean(np.linalg.norm(pts[list(ring)] - pts[centre], axis=1))), 1.0)
        bump = np.exp(-0.5 * (np.hypot(xs - pts[centre, 0], ys - pts[centre, 1]) / radius) ** 2)
        idx = np.concatenate([up_i, lo_i, np.full((len(sel), 1), centre)], axis=1)
        w = np.concatenate([(1 - t) * up_w, t * lo_w, bump[:, None]], axis=1)
        self._set(sel, idx, w)

    def interpolate(self, values: np.ndarray) -> np.ndarray:
        """Per-landmark values (478, K) -> (S, S, K) float32 (anchors are 0)."""
        full = np.zeros((len(self.vertices), values.shape[1]), np.float32)
        full[: self.n_landmarks] = values
        out = np.einsum("pt,ptk->pk", self.w, full[self.idx])
        return out.reshape(self.size, self.size, values.shape[1])
