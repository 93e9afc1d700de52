"""Dense displacement fields: rig vertex bases and head rotation, rasterised over the portrait.

Every channel's effect is linear in the channel value, so each becomes one precomputed
(h, w, 2) field over its bounding box; a frame's forward displacement is their weighted sum,
and the backward sampling map is found by one fixed-point step, ``s = p - F(p - F(p))``.
Only the region that moves is computed: everything outside it is the portrait itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from avatar.identity import topology as topo
from avatar.renderers.meshwarp.raster import Rasteriser

HEAD_CHANNELS = ("head_yaw", "head_pitch", "head_roll")
COARSE = 2
"""The smooth displacement (head rotation, the rig's horizontal parts) is summed and inverted
on a grid this many times coarser than the frame, then interpolated up: it varies over tens
of pixels, and this is where most of a frame's arithmetic was (4x fewer cells at 2)."""
Box = tuple[int, int, int, int]
"""(y0, x0, y1, x1): rows y0..y1-1 and columns x0..x1-1."""


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

    @property
    def box(self) -> Box:
        """Where the field is, in the pixels of its grid."""
        h, w = self.data.shape[:2]
        return self.y0, self.x0, self.y0 + h, self.x0 + w

    def add_to(self, total: np.ndarray, weight: float, origin: tuple[int, int] = (0, 0)) -> None:
        """``total[box] += weight * data`` in place; ``total`` is (H, W, C) whose pixel (0, 0)
        sits at portrait pixel ``origin`` (y, x) and which contains the box."""
        h, w = self.data.shape[:2]
        y, x = self.y0 - origin[0], self.x0 - origin[1]
        view = total[y : y + h, x : x + w]
        cv2.scaleAdd(self.data, float(weight), view, dst=view)  # no temporary, unlike numpy


def _crop(dense: np.ndarray, eps: float = 0.02) -> Field | None:
    """Shrink an (S, S, C) field to the box where |d| > eps (None where there is none)."""
    active = np.abs(dense).max(axis=2) > eps
    if not active.any():
        return None
    ys, xs = np.nonzero(active)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return Field(int(y0), int(x0), np.ascontiguousarray(dense[y0:y1, x0:x1], np.float32))


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
    running maximum: the upper layer stays in front, the squashed one disappears. Linear in
    the pixels: the forward positions are bucketed by row and counted (no sort, no search).

    Args:
        shift: (h, w) float32 forward vertical displacement in pixels.

    Returns:
        (h, w) float32 backward displacement ``back``.

    >>> back = invert_columns(np.tile(np.r_[np.zeros(4), np.full(4, 2.0)], (1, 1)).T)
    >>> np.round(back[:, 0].astype(float), 1).tolist()
    [0.0, 0.0, 0.0, 0.0, -0.7, -1.3, -2.0, -2.0]
    """
    h, w = shift.shape
    rows = np.arange(h, dtype=np.float32)[:, None]
    forward = np.maximum.accumulate(rows + shift.astype(np.float32), axis=0)  # non-decreasing
    cols = np.arange(w, dtype=np.int32)
    # forward < y  <=>  floor(forward) + 1 <= y for integer y: count sources below each row
    bucket = np.floor(forward).astype(np.int32)
    np.clip(bucket, -1, h - 1, out=bucket)
    bucket += 1
    bucket *= w
    bucket += cols
    below = np.bincount(bucket.ravel(), minlength=(h + 1) * w)[: h * w].reshape(h, w)
    upper = np.cumsum(below, axis=0, dtype=np.int32)  # first source row at or past y
    np.clip(upper, 1, h - 1, out=upper)
    flat = upper * w + cols
    k1 = forward.ravel().take(flat)
    k0 = forward.ravel().take(flat - w)
    t = (rows - k0) / np.maximum(k1 - k0, np.float32(1e-9))
    np.clip(t, 0.0, 1.0, out=t)
    t += upper
    t -= rows + 1  # source row (upper - 1 + t) minus the output row
    return t


def _coarse(dense: np.ndarray) -> np.ndarray:
    """(S, S, C) float32 -> (S / COARSE, S / COARSE, C), each cell the mean of its pixels."""
    size = dense.shape[0] // COARSE
    out = cv2.resize(dense, (size, size), interpolation=cv2.INTER_AREA)
    return out.reshape(size, size, dense.shape[2])


def _union(boxes: list[Box], grow: int, limit: int) -> Box:
    """The box around ``boxes``, grown by ``grow`` on every side and clipped to [0, limit)."""
    return (
        max(min(b[0] for b in boxes) - grow, 0),
        max(min(b[1] for b in boxes) - grow, 0),
        min(max(b[2] for b in boxes) + grow, limit),
        min(max(b[3] for b in boxes) + grow, limit),
    )


class WarpFields:
    """All of one identity's fields, and the per-frame backward sampling map built from them.

    The forward motion of a source pixel is modelled as a vertical rig displacement V (lids,
    lips, jaw, brows: strongly compressive, inverted exactly per column, at full resolution)
    followed by a smooth displacement H (head rotation and the rig's horizontal parts, inverted
    by a fixed-point step on the coarse grid). The sampling map of output pixel p is
    ``T_V^-1(T_H^-1(p))``; outside the boxes of the fields in use it is p itself.

    Args:
        landmarks: (478, 3) portrait pixels.
        size: portrait size S (a multiple of COARSE).
        vertex_bases: channel -> (478, 2) vertex displacement per unit (from the rig).
    """

    def __init__(self, landmarks: np.ndarray, size: int, vertex_bases: dict[str, np.ndarray]):
        raster = Rasteriser(landmarks, size)
        vertical: dict[str, Field] = {}  # full-resolution pixels
        smooth: dict[str, Field] = {}  # coarse cells
        for name, v in vertex_bases.items():
            dense = raster.interpolate(v)
            across = np.concatenate([dense[..., :1], np.zeros_like(dense[..., :1])], -1)
            self._keep(vertical, name, _crop(dense[..., 1:2]))
            self._keep(smooth, name, _crop(_coarse(across)))
        dense_head = head_fields(landmarks, size, raster)
        for name, f in dense_head.items():
            self._keep(smooth, name, _crop(_coarse(f)))
        pts = np.clip(np.round(landmarks[:, :2]).astype(int), 0, size - 1)
        vertex_head = {k: f[pts[:, 1], pts[:, 0]] for k, f in dense_head.items()}
        self._set(landmarks, size, vertex_bases, vertical, smooth, vertex_head)

    def _set(self, landmarks, size, vertex_bases, vertical, smooth, vertex_head) -> None:
        self.size, self.coarse_size = size, size // COARSE
        self.vertex_bases, self.vertex_head = vertex_bases, vertex_head
        self.vertical, self.smooth = vertical, smooth
        self.landmarks = np.asarray(landmarks[:, :2], np.float32)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self.grid = np.stack([xx, yy], axis=-1)  # (S, S, 2) (x, y) of every pixel
        centre = 0.5 * (COARSE - 1)  # a coarse cell's centre, in the pixels it averages
        self.coarse_grid = self.grid[::COARSE, ::COARSE] + np.float32(centre)  # (S/C, S/C, 2)
        self._centre = np.float32(centre)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything :meth:`from_arrays` needs, as named arrays (about 2 MB at 512 px)."""
        out: dict[str, np.ndarray] = {}
        for kind, fields in (("vertical", self.vertical), ("smooth", self.smooth)):
            for name, f in fields.items():
                out[f"{kind}.{name}"] = f.data
                out[f"{kind}.{name}.at"] = np.array([f.y0, f.x0], np.int64)
        out.update({f"bases.{k}": v for k, v in self.vertex_bases.items()})
        out.update({f"head.{k}": v for k, v in self.vertex_head.items()})
        return out

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], landmarks: np.ndarray, size: int
    ) -> WarpFields:
        """The fields :meth:`to_arrays` stored; ValueError when they do not fit ``size``."""
        fields: dict[str, dict[str, Field]] = {"vertical": {}, "smooth": {}}
        for key, data in arrays.items():
            kind, _, name = key.partition(".")
            if kind in fields and not name.endswith(".at"):
                y0, x0 = (int(v) for v in arrays[f"{key}.at"])
                limit = size if kind == "vertical" else size // COARSE
                if data.ndim != 3 or y0 < 0 or x0 < 0 or max(y0, x0) + 1 > limit:
                    raise ValueError(f"{key}: a field outside a {limit}-cell grid")
                if y0 + data.shape[0] > limit or x0 + data.shape[1] > limit:
                    raise ValueError(f"{key}: a field outside a {limit}-cell grid")
                fields[kind][name] = Field(y0, x0, data.astype(np.float32, copy=False))
        bases = {k[6:]: v for k, v in arrays.items() if k.startswith("bases.")}
        head = {k[5:]: v for k, v in arrays.items() if k.startswith("head.")}
        if set(head) != set(HEAD_CHANNELS) or not bases:
            raise ValueError("vertex displacements are missing")
        out = cls.__new__(cls)
        out._set(landmarks, size, bases, fields["vertical"], fields["smooth"], head)
        return out

    @staticmethod
    def _keep(fields: dict[str, Field], name: str, field: Field | None) -> None:
        if field is not None:  # a channel that moves nothing of this kind has no field
            fields[name] = field

    def _active(
        self, fields: dict[str, Field], coeffs: dict[str, float]
    ) -> list[tuple[Field, float]]:
        return [(fields[k], v) for k, v in coeffs.items() if abs(v) > 1e-4 and k in fields]

    def _smooth_inverse(self, active: list[tuple[Field, float]]) -> tuple[Box, np.ndarray, int]:
        """``H(T_H^-1(p))`` over the pixels the smooth fields cover.

        Returns:
            ``(box, offset, reach)``: the box in pixels, (h, w, 2) float32 (dx, dy) to subtract
            from p there, and the largest displacement in whole pixels (+2).
        """
        y0, x0, y1, x1 = _union([f.box for f, _ in active], 1, self.coarse_size)
        total = np.zeros((y1 - y0, x1 - x0, 2), np.float32)
        for f, value in active:
            f.add_to(total, value, origin=(y0, x0))
        first = self.coarse_grid[y0:y1, x0:x1] - total  # T_H^-1(p) ~ p - H(p), in pixels
        scale = np.float32(1.0 / COARSE)  # pixels -> cells of this box
        refined = cv2.remap(
            total,
            (first[..., 0] - self._centre) * scale - np.float32(x0),
            (first[..., 1] - self._centre) * scale - np.float32(y0),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        h, w = COARSE * (y1 - y0), COARSE * (x1 - x0)
        offset = cv2.resize(refined, (w, h), interpolation=cv2.INTER_LINEAR)
        box = (COARSE * y0, COARSE * x0, COARSE * y1, COARSE * x1)
        return box, offset, int(np.ceil(np.abs(total).max())) + 2

    def backward_map(self, coeffs: dict[str, float]) -> tuple[Box, np.ndarray] | None:
        """The source (x, y) to sample for every output pixel that moves.

        Returns:
            ``(box, sample)``: the region that moves (y0, x0, y1, x1) and its (h, w, 2)
            float32 source positions in portrait pixels; None when nothing moves (every
            output pixel shows its own source pixel).
        """
        smooth = self._active(self.smooth, coeffs)
        vertical = self._active(self.vertical, coeffs)
        if not smooth and not vertical:
            return None
        boxes, reach = [], 2
        if smooth:
            smooth_box, offset, reach = self._smooth_inverse(smooth)
            boxes.append(smooth_box)
        if vertical:
            v_box = _union([f.box for f, _ in vertical], 2, self.size)
            # the output pixels whose smooth-warped source can land in the vertical box
            reach_box = _union([v_box], reach, self.size)
            boxes.append(reach_box)
        y0, x0, y1, x1 = box = _union(boxes, 0, self.size)
        if smooth and smooth_box == box:  # one pass instead of a copy and a subtraction
            sample = cv2.subtract(self.grid[y0:y1, x0:x1], offset)
        else:
            sample = self.grid[y0:y1, x0:x1].copy()
            if smooth:
                sy0, sx0, sy1, sx1 = smooth_box
                sample[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] -= offset
        if vertical:
            vy0, vx0, vy1, vx1 = v_box
            shift = np.zeros((vy1 - vy0, vx1 - vx0, 1), np.float32)
            for f, value in vertical:
                f.add_to(shift, value, origin=(vy0, vx0))
            back = invert_columns(shift[..., 0])  # (h, w) over the box, box coordinates
            ry0, rx0, ry1, rx1 = reach_box
            roi = sample[ry0 - y0 : ry1 - y0, rx0 - x0 : rx1 - x0]
            where = cv2.subtract(roi, (float(vx0), float(vy0), 0.0, 0.0))  # box coordinates
            roi[..., 1] += cv2.remap(
                back, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
            )
        return box, sample

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
