"""The mesh-warp frame before the speed work (#12), kept as the oracle the fast renderer is
measured against: every field at full resolution over the whole frame, the column inversion by
a global sort and search, and the whole portrait resampled with float maps.

It reproduces the recorded frames of ``tests/data/golden_meshwarp_256.npz`` bit for bit, so
``test_contract.py`` can show both that the oracle is the old renderer and how far the fast one
is from it (PSNR).
"""

from __future__ import annotations

import cv2
import numpy as np

from avatar.renderers.meshwarp.fields import head_fields
from avatar.renderers.meshwarp.raster import Rasteriser
from avatar.renderers.meshwarp.renderer import (
    WARPED,
    MeshWarpPrepared,
    effective_channels,
    paint_features,
)
from avatar.renderers.meshwarp.rig import vertex_bases


def _invert_columns_by_search(shift: np.ndarray) -> np.ndarray:
    """(h, w) forward vertical shift -> (h, w) backward shift (float64 sort and search)."""
    h, w = shift.shape
    rows = np.arange(h, dtype=np.float64)
    forward = np.maximum.accumulate(rows[:, None] + shift, axis=0)
    spacing = 2.0 * (h + float(np.abs(shift).max()) + 2.0)
    offset = np.arange(w, dtype=np.float64)[:, None] * spacing
    keys = (forward.T + offset).ravel()
    queries = (rows[None, :] + offset).ravel()
    start = np.repeat(np.arange(w) * h, h)
    i = np.clip(np.searchsorted(keys, queries, side="left"), start + 1, start + h - 1)
    k0, k1 = keys[i - 1], keys[i]
    t = np.clip((queries - k0) / np.maximum(k1 - k0, 1e-9), 0.0, 1.0)
    source = (i - 1 - start) + t
    return (source.reshape(w, h).T - rows[:, None]).astype(np.float32)


def _box_cropped(dense: np.ndarray, eps: float = 0.02) -> tuple[np.ndarray, tuple] | None:
    """``dense`` zeroed outside the bounding box of |d| > eps, and that box (y0, x0, y1, x1)."""
    active = np.abs(dense).max(axis=2) > eps
    if not active.any():
        return None
    ys, xs = np.nonzero(active)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    out = np.zeros_like(dense, dtype=np.float32)
    out[y0:y1, x0:x1] = dense[y0:y1, x0:x1]
    return out, (int(y0), int(x0), int(y1), int(x1))


class ExactWarp:
    """Full-resolution displacement fields of one identity (about a second at 256 px)."""

    def __init__(self, identity) -> None:
        size, landmarks = identity.size, identity.landmarks
        raster = Rasteriser(landmarks, size)
        self.size = size
        self.vertical, self.smooth = {}, {}
        for name, v in vertex_bases(landmarks).items():
            dense = raster.interpolate(v)
            self.vertical[name] = _box_cropped(dense[..., 1:2])
            across = np.concatenate([dense[..., :1], 0 * dense[..., :1]], -1)
            self.smooth[name] = _box_cropped(across)
        for name, field in head_fields(landmarks, size, raster).items():
            self.smooth[name] = _box_cropped(field)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self.grid = np.stack([xx, yy], axis=-1)

    @staticmethod
    def _active(fields: dict, coeffs: dict[str, float]) -> list:
        return [(fields[k], v) for k, v in coeffs.items() if abs(v) > 1e-4 and fields.get(k)]

    def sample(self, coeffs: dict[str, float]) -> np.ndarray:
        """(S, S, 2) float32 source (x, y) of every output pixel."""
        smooth = np.zeros((self.size, self.size, 2), np.float32)
        for (field, _), value in self._active(self.smooth, coeffs):
            smooth += np.float32(value) * field
        first = self.grid - smooth
        refined = cv2.remap(
            smooth, first[..., 0], first[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        sample = self.grid - refined
        active = self._active(self.vertical, coeffs)
        if not active:
            return sample
        pad = 2
        y0 = max(min(box[0] for (_, box), _ in active) - pad, 0)
        x0 = max(min(box[1] for (_, box), _ in active) - pad, 0)
        y1 = min(max(box[2] for (_, box), _ in active) + pad, self.size)
        x1 = min(max(box[3] for (_, box), _ in active) + pad, self.size)
        shift = np.zeros((self.size, self.size, 1), np.float32)
        for (field, _), value in active:
            shift += np.float32(value) * field
        back = _invert_columns_by_search(shift[y0:y1, x0:x1, 0])
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

    def frame(self, prepared: MeshWarpPrepared, row: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 frame of one row of ``WARPED`` channel values."""
        coeffs = effective_channels(dict(zip(WARPED, row.tolist(), strict=True)))
        sample = self.sample(coeffs)
        frame = cv2.remap(
            prepared.portrait,
            sample[..., 0],
            sample[..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        paint_features(frame, prepared, coeffs)
        return frame
