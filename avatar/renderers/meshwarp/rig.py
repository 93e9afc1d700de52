"""The face rig: how each motion channel displaces the 478 face-mesh vertices.

For one unit of a channel, :func:`vertex_bases` returns a (478, 2) displacement in portrait
pixels. Displacements scale with the outer-eye-corner distance E, so the rig works at any
render size. The rest basis ``close_source`` brings the inner lips of a source portrait that
shows an open mouth together, so the companion's resting mouth is closed.
"""

from __future__ import annotations

import cv2
import numpy as np

from avatar.identity import topology as topo

RIG_CHANNELS: tuple[str, ...] = (
    "jaw_open",
    "lip_open",
    "mouth_stretch",
    "lip_round",
    "lip_press",
    "lower_lip_tuck",
    "upper_lip_raise",
    "blink_l",
    "blink_r",
    "gaze_x",
    "gaze_y",
    "brow_raise",
    "smile",
    "cheek_raise",
    "eye_squint",
)
"""Channels that deform the mesh (head rotation is handled by dense fields)."""

MOUTH_CORNERS = (
    topo.MOUTH_CORNER_L,
    topo.MOUTH_CORNER_R,
    topo.MOUTH_INNER_CORNER_L,
    topo.MOUTH_INNER_CORNER_R,
)
IRIS_L = (*topo.IRIS_L, topo.IRIS_L_CENTER)
IRIS_R = (*topo.IRIS_R, topo.IRIS_R_CENTER)

# Amplitudes at channel value 1, in units of E (outer eye-corner distance).
JAW_DROP = 0.22
LIP_PART_LOWER, LIP_PART_UPPER = 0.08, 0.03
JAW_AT_CORNER = 0.4
"""Share of the jaw's drop at the mouth corners (the lower lip tapers to it from its middle)."""


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def contour_y(contour: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y of a polyline (K, 2) (any point order: sorted by x here), evaluated at x (pixels)."""
    order = np.argsort(contour[:, 0])
    return np.interp(x, contour[order, 0], contour[order, 1])


class FaceRig:
    """Vertex displacement bases for one face.

    Args:
        landmarks: (478, 3) float32 portrait pixels.
    """

    def __init__(self, landmarks: np.ndarray) -> None:
        self.points = np.asarray(landmarks[:, :2], np.float64)  # (N, 2)
        self.eye_distance = float(np.linalg.norm(self.points[33] - self.points[263]))
        lips = self.points
        self.mouth_center = 0.5 * (lips[13] + lips[14])
        self.mouth_width = float(np.linalg.norm(lips[61] - lips[291]))
        self.lips = self._lip_sets()

    # -- helpers ---------------------------------------------------------------------
    def _zeros(self) -> np.ndarray:
        return np.zeros_like(self.points)

    def _lip_sets(self) -> dict[str, list[int]]:
        """Lip vertices without the corners. The ``*_inner`` sets also hold the vertices
        between the inner and outer contours, so that a lip moves as one piece."""
        corners = set(MOUTH_CORNERS)
        sets = {
            "upper_inner": [i for i in topo.LIPS_INNER_UPPER if i not in corners],
            "lower_inner": [i for i in topo.LIPS_INNER_LOWER if i not in corners],
            "upper_outer": [i for i in topo.LIPS_OUTER_UPPER if i not in corners],
            "lower_outer": [i for i in topo.LIPS_OUTER_LOWER if i not in corners],
        }
        contours = set().union(*sets.values()) | corners
        for side in ("upper", "lower"):
            outer = topo.LIPS_OUTER_UPPER if side == "upper" else topo.LIPS_OUTER_LOWER
            inner = topo.LIPS_INNER_UPPER if side == "upper" else topo.LIPS_INNER_LOWER
            polygon = self.points[list(outer) + list(inner)[::-1]].astype(np.float32)
            for i in range(len(self.points)):
                if i in contours:
                    continue
                p = (float(self.points[i, 0]), float(self.points[i, 1]))
                if cv2.pointPolygonTest(polygon, p, False) >= 0:
                    sets[f"{side}_inner"].append(i)
        return sets

    def _near_mouth(self, sigma: float) -> np.ndarray:
        """(N,) Gaussian weight of distance to the mouth centre, sigma in units of E."""
        d = np.linalg.norm(self.points - self.mouth_center, axis=1) / self.eye_distance
        return np.exp(-0.5 * (d / sigma) ** 2)

    def _lateral(self) -> np.ndarray:
        """(N,) signed horizontal offset from the mouth centre, in mouth half-widths."""
        return (self.points[:, 0] - self.mouth_center[0]) / (0.5 * self.mouth_width)

    def _corner_taper(self, at_corner: float) -> np.ndarray:
        """(N,) 1 over the middle of the mouth, falling smoothly to ``at_corner`` at the
        corners: a lip opens as a lens around the corners' pivot, not as a box."""
        lateral = np.abs(self._lateral())
        return 1.0 - (1.0 - at_corner) * _smoothstep((lateral - 0.25) / 0.75)

    # -- mouth ----------------------------------------------------------------------
    def jaw_open(self) -> np.ndarray:
        e, (mx, my) = self.eye_distance, self.mouth_center
        x, y = self.points[:, 0], self.points[:, 1]
        chin_y = self.points[topo.CHIN, 1]
        below = _smoothstep((y - (my - 0.02 * e)) / (0.08 * e))
        central = 1.0 - _smoothstep((np.abs(x - mx) - 0.35 * e) / (0.5 * e))
        deeper = 1.0 + 0.25 * np.clip((y - my) / max(chin_y - my, 1.0), 0.0, 1.0)
        w = below * central * deeper
        sets = self.lips
        w[sets["upper_inner"] + sets["upper_outer"]] = 0.0
        lower = sets["lower_inner"] + sets["lower_outer"]
        w[lower] = self._corner_taper(JAW_AT_CORNER)[lower]
        w[list(MOUTH_CORNERS)] = JAW_AT_CORNER
        d = self._zeros()
        d[:, 1] = JAW_DROP * e * w
        return d

    def lip_open(self) -> np.ndarray:
        e, s, d = self.eye_distance, self.lips, self._zeros()
        taper = self._corner_taper(0.2)
        d[s["lower_inner"], 1] = LIP_PART_LOWER * e * taper[s["lower_inner"]]
        d[s["lower_outer"], 1] = 0.8 * LIP_PART_LOWER * e * taper[s["lower_outer"]]
        d[s["upper_inner"], 1] = -LIP_PART_UPPER * e * taper[s["upper_inner"]]
        d[s["upper_outer"], 1] = -0.7 * LIP_PART_UPPER * e * taper[s["upper_outer"]]
        return d

    def _horizontal(self, amount: float, sigma: float) -> np.ndarray:
        lat = np.clip(self._lateral(), -1.3, 1.3)
        d = self._zeros()
        d[:, 0] = amount * self.eye_distance * lat * self._near_mouth(sigma)
        return d

    def mouth_stretch(self) -> np.ndarray:
        d = self._horizontal(0.09, 0.35)
        s, e = self.lips, self.eye_distance
        d[s["upper_outer"], 1] += 0.01 * e
        d[s["lower_outer"], 1] -= 0.01 * e
        return d

    def lip_round(self) -> np.ndarray:
        d = self._horizontal(-0.12, 0.3)
        s, e = self.lips, self.eye_distance
        d[s["upper_outer"], 1] -= 0.02 * e
        d[s["lower_outer"], 1] += 0.025 * e
        return d

    def lip_press(self) -> np.ndarray:
        s, e, d = self.lips, self.eye_distance, self._zeros()
        d[s["upper_inner"], 1] = 0.008 * e
        d[s["lower_inner"], 1] = -0.008 * e
        return d

    def lower_lip_tuck(self) -> np.ndarray:
        s, e, d = self.lips, self.eye_distance, self._zeros()
        d[s["lower_inner"], 1] = -0.05 * e
        d[s["lower_outer"], 1] = -0.03 * e
        return d

    def upper_lip_raise(self) -> np.ndarray:
        s, e, d = self.lips, self.eye_distance, self._zeros()
        d[s["upper_inner"], 1] = -0.035 * e
        d[s["upper_outer"], 1] = -0.028 * e
        return d

    def close_source(self) -> np.ndarray:
        """Rest correction: meet the inner lips of an open source mouth halfway."""
        up = self.points[list(topo.LIPS_INNER_UPPER)]
        lo = self.points[list(topo.LIPS_INNER_LOWER)]
        s, d = self.lips, self._zeros()
        gap_at_upper = np.clip(
            contour_y(lo, self.points[s["upper_inner"], 0]) - self.points[s["upper_inner"], 1],
            0.0,
            None,
        )
        gap_at_lower = np.clip(
            self.points[s["lower_inner"], 1] - contour_y(up, self.points[s["lower_inner"], 0]),
            0.0,
            None,
        )
        d[s["upper_inner"], 1] = 0.5 * gap_at_upper
        d[s["lower_inner"], 1] = -0.5 * gap_at_lower
        mid_gap = float(np.median(gap_at_upper)) if len(gap_at_upper) else 0.0
        d[s["upper_outer"], 1] = 0.3 * mid_gap
        d[s["lower_outer"], 1] = -0.3 * mid_gap
        return d

    # -- eyes and brows -------------------------------------------------------------
    def _blink(self, upper: list[int], lower: list[int]) -> np.ndarray:
        e, d = self.eye_distance, self._zeros()
        up, lo = self.points[list(upper)], self.points[list(lower)]
        gap = np.clip(contour_y(lo, up[:, 0]) - up[:, 1], 0.0, None)
        gap_lower = np.clip(lo[:, 1] - contour_y(up, lo[:, 0]), 0.0, None)
        d[list(upper), 1] = 0.97 * gap
        d[list(lower), 1] = -0.03 * gap_lower
        # skin above the lid follows part of the way, fading with height
        x0, x1 = up[:, 0].min(), up[:, 0].max()
        top = contour_y(up, np.clip(self.points[:, 0], x0, x1))
        height = top - self.points[:, 1]  # > 0 above the lid
        inside_x = (self.points[:, 0] > x0) & (self.points[:, 0] < x1)
        follow = np.where(inside_x & (height > 0.5), 1.0 - _smoothstep(height / (0.2 * e)), 0.0)
        lid_move = np.interp(
            self.points[:, 0], up[np.argsort(up[:, 0]), 0], 0.97 * gap[np.argsort(up[:, 0])]
        )
        mask = follow > 0
        d[mask, 1] = np.maximum(d[mask, 1], 0.85 * follow[mask] * lid_move[mask])
        return d

    def blink_l(self) -> np.ndarray:
        return self._blink(topo.EYE_L_UPPER, topo.EYE_L_LOWER)

    def blink_r(self) -> np.ndarray:
        return self._blink(topo.EYE_R_UPPER, topo.EYE_R_LOWER)

    def _iris_shift(self, axis: int) -> np.ndarray:
        d = self._zeros()
        for iris, corners in (
            (IRIS_L, (topo.EYE_L_OUTER, topo.EYE_L_INNER)),
            (IRIS_R, (topo.EYE_R_OUTER, topo.EYE_R_INNER)),
        ):
            half = 0.5 * np.linalg.norm(self.points[corners[0]] - self.points[corners[1]])
            d[list(iris), axis] = (0.9 if axis == 0 else 0.5) * half
        return d

    def gaze_x(self) -> np.ndarray:
        return self._iris_shift(0)

    def gaze_y(self) -> np.ndarray:
        return self._iris_shift(1)

    def brow_raise(self) -> np.ndarray:
        e, d = self.eye_distance, self._zeros()
        brows = list(topo.BROW_L) + list(topo.BROW_R)
        brow_y = self.points[brows, 1].mean()
        eye_y = self.points[[33, 263], 1].mean()
        y = self.points[:, 1]
        # full motion at the brows, fading towards the eyes below and the hairline above
        w = np.where(
            y < brow_y,
            1.0 - _smoothstep((brow_y - y) / (0.35 * e)),
            1.0 - _smoothstep((y - brow_y) / max(eye_y - brow_y, 1.0)),
        )
        w[brows] = 1.0
        d[:, 1] = -0.10 * e * w * (y < eye_y)
        return d

    def smile(self) -> np.ndarray:
        e = self.eye_distance
        lat = np.clip(self._lateral(), -1.4, 1.4)
        near = self._near_mouth(0.4)
        d = self._zeros()
        d[:, 0] = 0.07 * e * lat * near
        d[:, 1] = -0.10 * e * np.abs(lat).clip(0, 1) ** 1.5 * near
        return d

    def cheek_raise(self) -> np.ndarray:
        e, d = self.eye_distance, self._zeros()
        for corner, eye in ((61, 33), (291, 263)):
            centre = 0.5 * (self.points[corner] + self.points[eye])
            dist = np.linalg.norm(self.points - centre, axis=1) / e
            d[:, 1] -= 0.05 * e * np.exp(-0.5 * (dist / 0.22) ** 2)
        return d

    def eye_squint(self) -> np.ndarray:
        e, d = self.eye_distance, self._zeros()
        for upper, lower in (
            (topo.EYE_L_UPPER, topo.EYE_L_LOWER),
            (topo.EYE_R_UPPER, topo.EYE_R_LOWER),
        ):
            up, lo = self.points[list(upper)], self.points[list(lower)]
            gap = np.clip(lo[:, 1] - contour_y(up, lo[:, 0]), 0.0, None)
            d[list(lower), 1] = -0.45 * gap
        return d * (e > 0)


def vertex_bases(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel (478, 2) float32 vertex displacements (pixels per unit), plus
    ``close_source``, for the face with ``landmarks`` (478, 3) portrait pixels."""
    rig = FaceRig(landmarks)
    out = {name: getattr(rig, name)() for name in RIG_CHANNELS}
    out["close_source"] = rig.close_source()
    return {k: v.astype(np.float32) for k, v in out.items()}
