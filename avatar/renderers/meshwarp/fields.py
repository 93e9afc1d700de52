"""Dense displacement fields: rig vertex bases and head rotation, rasterised over the portrait.

Every channel's effect is linear in the channel value, so each becomes one precomputed
(h, w, 2) field over its bounding box; a frame's forward displacement is their weighted sum,
and the backward sampling map is found by one fixed-point step, ``s = p - F(p - F(p))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from avatar.identity import topology as topo

HEAD_CHANNELS = ("head_yaw", "head_pitch", "head_roll")


@dataclass(frozen=True)
class Field:
    """A displacement field restricted to its bounding box.

    Attributes:
        y0, x0: top-left corner of the box in portrait pixels.
        data: (h, w, C) float32 displacement per unit channel value, pixels: C = 2 for
            (dx, dy), C = 1 for dy only.
    """

    y0: int
    x0: int
    data: np.ndarray

    def add_to(self, total: np.ndarray, weight: float, origin: tuple[int, int] = (0, 0)) -> None:
        """``total[box] += weight * data`` in place; ``total`` is (H, W, C) whose pixel (0, 0)
        sits at portrait pixel ``origin`` (y, x) and which contains the box."""
        h, w = self.data.shape[:2]
        y, x = self.y0 - origin[0], self.x0 - origin[1]
        view = total[y : y + h, x : x + w]
        view += np.float32(weight) * self.data


def _crop(dense: np.ndarray, eps: float = 0.02) -> Field:
    """Shrink an (S, S, C) field to the box where |d| > eps (empty box -> 1x1 zeros)."""
    active = np.abs(dense).max(axis=2) > eps
    if not active.any():
        return Field(0, 0, np.zeros((1, 1, dense.shape[2]), np.float32))
    ys, xs = np.nonzero(active)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return Field(int(y0), int(x0), np.ascontiguousarray(dense[y0:y1, x0:x1], np.float32))


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


def head_fields(landmarks: np.ndarray, size: int, raster: Rasteriser) -> dict[str, np.ndarray]:
    """Dense (S, S, 2) fields for one degree of head yaw, pitch and roll.

    The head is modelled as an ellipsoid (face plus hair) carrying the face mesh's relief:
    yaw/pitch shift each point by its depth in front of the rotation axis, so the nose moves
    more than the cheeks and the outline hardly at all; roll rotates about the neck. A soft
    mask confines the motion to the head and fades it across the neck.
    """
    pts = np.asarray(landmarks, np.float64)
    oval = pts[topo.FACE_OVAL, :2]
    cx, cy = oval.mean(axis=0)
    half_w = 0.5 * (oval[:, 0].max() - oval[:, 0].min())
    half_h = 0.5 * (oval[:, 1].max() - oval[:, 1].min())
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    # soft head mask: an ellipse around face and hair, fading over the neck
    r = np.hypot((xx - cx) / (1.45 * half_w), (yy - (cy - 0.1 * half_h)) / (1.3 * half_h))
    fade = np.clip((r - 1.0) / 0.4, 0.0, 1.0)
    mask = 1.0 - fade * fade * (3.0 - 2.0 * fade)
    # depth in front of the rotation axes: ellipsoid + the mesh's relief (MediaPipe z < 0 is near)
    z = pts[:, 2] - np.median(pts[topo.FACE_OVAL, 2])
    relief = raster.interpolate(-z[:, None].astype(np.float32))[..., 0].astype(np.float64)
    radius_x, radius_y = 1.3 * half_w, 1.2 * half_h
    depth_x = np.sqrt(np.clip(radius_x**2 - (xx - cx) ** 2, 0.0, None)) + relief
    depth_y = np.sqrt(np.clip(radius_y**2 - (yy - cy) ** 2, 0.0, None)) * 0.6 + relief
    rad = np.pi / 180.0
    zeros = np.zeros_like(xx)
    pivot_x, pivot_y = cx, pts[topo.CHIN, 1] + 0.4 * half_h
    fields = {
        "head_yaw": np.stack([rad * depth_x * mask, zeros], axis=-1),
        "head_pitch": np.stack([zeros, rad * depth_y * mask], axis=-1),
        "head_roll": np.stack([-rad * (yy - pivot_y) * mask, rad * (xx - pivot_x) * mask], axis=-1),
    }
    return {k: v.astype(np.float32) for k, v in fields.items()}


def invert_columns(shift: np.ndarray) -> np.ndarray:
    """Exact inverse of a vertical displacement, column by column.

    Output row ``y`` shows source row ``y + back[y]`` where the source row ``r`` moved to
    ``r + shift[r]``. Folds (a lid or a lip moving over what lies below it) are resolved by a
    running maximum: the upper layer stays in front, the squashed one disappears.

    Args:
        shift: (h, w) float32 forward vertical displacement in pixels.

    Returns:
        (h, w) float32 backward displacement ``back``.

    >>> back = invert_columns(np.tile(np.r_[np.zeros(4), np.full(4, 2.0)], (1, 1)).T)
    >>> np.round(back[:, 0].astype(float), 1).tolist()
    [0.0, 0.0, 0.0, 0.0, -0.7, -1.3, -2.0, -2.0]
    """
    h, w = shift.shape
    rows = np.arange(h, dtype=np.float64)
    forward = np.maximum.accumulate(rows[:, None] + shift, axis=0)  # (h, w), non-decreasing
    spacing = 2.0 * (h + float(np.abs(shift).max()) + 2.0)
    offset = np.arange(w, dtype=np.float64)[:, None] * spacing
    keys = (forward.T + offset).ravel()  # column-major, globally sorted
    queries = (rows[None, :] + offset).ravel()
    start = np.repeat(np.arange(w) * h, h)
    i = np.clip(np.searchsorted(keys, queries, side="left"), start + 1, start + h - 1)
    k0, k1 = keys[i - 1], keys[i]
    t = np.clip((queries - k0) / np.maximum(k1 - k0, 1e-9), 0.0, 1.0)
    source = (i - 1 - start) + t
    return (source.reshape(w, h).T - rows[:, None]).astype(np.float32)


class WarpFields:
    """All of one identity's fields, and the per-frame backward sampling map built from them.

    The forward motion of a source pixel is modelled as a vertical rig displacement V (lids,
    lips, jaw, brows: strongly compressive, inverted exactly per column) followed by a smooth
    displacement H (head rotation and the rig's horizontal parts, inverted by a fixed-point
    step). The sampling map of output pixel p is ``T_V^-1(T_H^-1(p))``.

    Args:
        landmarks: (478, 3) portrait pixels.
        size: portrait size S.
        vertex_bases: channel -> (478, 2) vertex displacement per unit (from the rig).
    """

    def __init__(self, landmarks: np.ndarray, size: int, vertex_bases: dict[str, np.ndarray]):
        self.size = size
        raster = Rasteriser(landmarks, size)
        self.vertex_bases = vertex_bases
        self.vertical: dict[str, Field] = {}
        self.smooth: dict[str, Field] = {}
        for name, v in vertex_bases.items():
            dense = raster.interpolate(v)
            self.vertical[name] = _crop(dense[..., 1:2])
            self.smooth[name] = _crop(np.concatenate([dense[..., :1], 0 * dense[..., :1]], -1))
        dense_head = head_fields(landmarks, size, raster)
        self.smooth.update({name: _crop(f) for name, f in dense_head.items()})
        pts = np.clip(np.round(landmarks[:, :2]).astype(int), 0, size - 1)
        self.vertex_head = {k: f[pts[:, 1], pts[:, 0]] for k, f in dense_head.items()}
        self.landmarks = np.asarray(landmarks[:, :2], np.float32)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self.grid = np.stack([xx, yy], axis=-1)  # (S, S, 2)

    def _active(
        self, fields: dict[str, Field], coeffs: dict[str, float]
    ) -> list[tuple[Field, float]]:
        return [(fields[k], v) for k, v in coeffs.items() if abs(v) > 1e-4 and k in fields]

    def backward_map(self, coeffs: dict[str, float]) -> np.ndarray:
        """(S, S, 2) float32 source (x, y) to sample for every output pixel."""
        smooth = np.zeros((self.size, self.size, 2), np.float32)
        for f, value in self._active(self.smooth, coeffs):
            f.add_to(smooth, value)
        first = self.grid - smooth
        refined = cv2.remap(
            smooth, first[..., 0], first[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        sample = self.grid - refined  # T_H^-1(p)
        active = self._active(self.vertical, coeffs)
        if not active:
            return sample
        y0 = min(f.y0 for f, _ in active)
        x0 = min(f.x0 for f, _ in active)
        y1 = max(f.y0 + f.data.shape[0] for f, _ in active)
        x1 = max(f.x0 + f.data.shape[1] for f, _ in active)
        pad = 2
        y0, x0 = max(y0 - pad, 0), max(x0 - pad, 0)
        y1, x1 = min(y1 + pad, self.size), min(x1 + pad, self.size)
        shift = np.zeros((y1 - y0, x1 - x0, 1), np.float32)
        for f, value in active:
            f.add_to(shift, value, origin=(y0, x0))
        back = invert_columns(shift[..., 0])  # (h, w) over the box, box coordinates
        # only output pixels whose smooth-warped source can land in the box need the lookup
        reach = int(np.ceil(np.abs(smooth).max())) + 2
        oy0, ox0 = max(y0 - reach, 0), max(x0 - reach, 0)
        oy1, ox1 = min(y1 + reach, self.size), min(x1 + reach, self.size)
        roi = sample[oy0:oy1, ox0:ox1]
        roi[..., 1] += cv2.remap(
            back,
            roi[..., 0] - np.float32(x0),
            roi[..., 1] - np.float32(y0),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        return sample

    def vertices(self, coeffs: dict[str, float]) -> np.ndarray:
        """(478, 2) float32 deformed landmark positions in output pixels."""
        out = self.landmarks.copy()
        for name, value in coeffs.items():
            if abs(value) <= 1e-4:
                continue
            if name in self.vertex_bases:
                out += np.float32(value) * self.vertex_bases[name]
            elif name in self.vertex_head:
                out += np.float32(value) * self.vertex_head[name]
        return out
