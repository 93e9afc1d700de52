"""Inverse of the face rig: motion channels from observed face landmarks, per frame.

The mesh-warp renderer moves the 478 face-mesh vertices linearly in its channels (``avatar.
renderers.meshwarp.rig`` for the face, ``head_fields`` for head rotation, in degrees). Given
that linear map for a face at rest (``bases``, injected: this stage may not import renderers),
:class:`RigFit` solves, for each frame's landmarks, the bounded least-squares problem

    observed_xy - rest_xy  ~=  sum_c  v_c * B_c  +  (tx, ty)  +  s * (rest_xy - centre)

for the channel values ``v_c`` (within each channel's range) plus a translation and a scale of
the whole face (the camera or the person moving; not rig channels).

A landmarker does not see a rendered face's motion one to one: MediaPipe follows the mesh-warp
jaw drop at the chin by about half, and reads head pitch at ~0.6 of the rig's degrees. For clips
rendered from a known identity, :func:`identify_bases` measures the rig *as the landmarker sees
it* from probe frames (random channel values, :func:`probe_values`), which removes those gains.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
from scipy.optimize import lsq_linear

log = logging.getLogger(__name__)

__all__ = [
    "FIT_BOUNDS",
    "FIT_CHANNELS",
    "NUM_LANDMARKS",
    "PROBE_RANGES",
    "RigFit",
    "identify_bases",
    "probe_values",
]

NUM_LANDMARKS = 478
"""MediaPipe face-mesh vertices (with the irises)."""

FIT_BOUNDS: dict[str, tuple[float, float]] = {
    "jaw_open": (0.0, 1.2),
    "lip_open": (0.0, 1.2),
    "mouth_stretch": (-1.0, 1.0),
    "lip_round": (0.0, 1.0),
    "upper_lip_raise": (0.0, 1.0),
    "blink_l": (0.0, 1.0),
    "blink_r": (0.0, 1.0),
    "gaze_x": (-1.0, 1.0),
    "gaze_y": (-1.0, 1.0),
    "brow_raise": (-1.0, 1.0),
    "smile": (0.0, 1.0),
    "cheek_raise": (0.0, 1.0),
    "eye_squint": (0.0, 1.0),
    "head_yaw": (-45.0, 45.0),
    "head_pitch": (-45.0, 45.0),
    "head_roll": (-45.0, 45.0),
}
"""The channels fitted and their ranges. ``lip_press`` and ``lower_lip_tuck`` are left out: the
rig moves the lips by 1-5 % of the eye distance for them, within landmark noise, and the opening
channels already read their effect (a pressed mouth fits as closed)."""

FIT_CHANNELS: tuple[str, ...] = tuple(FIT_BOUNDS)

PROBE_RANGES: dict[str, tuple[float, float]] = {
    "jaw_open": (0.0, 1.0),
    "lip_open": (0.0, 0.8),
    "mouth_stretch": (-0.2, 0.2),
    "lip_round": (0.0, 0.25),
    "upper_lip_raise": (0.0, 0.2),
    "blink_l": (0.0, 1.0),
    "blink_r": (0.0, 1.0),
    "gaze_x": (-0.25, 0.25),
    "gaze_y": (-0.25, 0.25),
    "brow_raise": (-0.25, 0.25),
    "smile": (0.0, 0.3),
    "cheek_raise": (0.0, 0.25),
    "eye_squint": (0.0, 0.25),
    "head_yaw": (-4.0, 4.0),
    "head_pitch": (-4.0, 4.0),
    "head_roll": (-4.0, 4.0),
}
"""Uniform ranges each probe frame of :func:`probe_values` draws each channel from, independently
(half the frames keep each eye open). Mouth and lids over their whole range, the rest over what
speech uses: the landmarker's response is not linear, and wider probes (head +-8 degrees, the
expression channels +-0.6) fitted speech clips worse (jaw correlation 0.95 vs 0.97, head pitch
error 0.9 vs 0.5 degrees; benchmarks/validate_tracking.py)."""

_RIDGE = 1e-3
"""Ridge weight, as a share of the normal matrix's (unit) diagonal: keeps nearly collinear
channels (smile / stretch / cheek) at 0 unless the landmarks ask for them."""


class RigFit:
    """Bounded least-squares fit of :data:`FIT_CHANNELS` to one face's landmarks.

    Args:
        bases: channel -> (478, 2) vertex displacement in the frames' pixels per unit (per
            degree for the head channels), for every name in :data:`FIT_CHANNELS`.
        rest: (478, 2 or 3) where the vertices are when every channel is 0.
        similarity: also fit a translation and scale of the face (a camera or person moving).
    """

    def __init__(
        self, bases: Mapping[str, np.ndarray], rest: np.ndarray, *, similarity: bool = True
    ) -> None:
        missing = [c for c in FIT_CHANNELS if c not in bases]
        if missing:
            raise ValueError(f"RigFit: no basis for {', '.join(missing)}")
        self.rest = np.asarray(rest, np.float64)[:, :2]
        if self.rest.shape != (NUM_LANDMARKS, 2):
            raise ValueError(f"RigFit: rest must be ({NUM_LANDMARKS}, 2|3), got {self.rest.shape}")
        cols = [np.asarray(bases[c], np.float64).reshape(-1) for c in FIT_CHANNELS]
        lower = [FIT_BOUNDS[c][0] for c in FIT_CHANNELS]
        upper = [FIT_BOUNDS[c][1] for c in FIT_CHANNELS]
        if similarity:
            ones, zeros = np.ones(NUM_LANDMARKS), np.zeros(NUM_LANDMARKS)
            cols += [
                np.stack([ones, zeros], 1).reshape(-1),
                np.stack([zeros, ones], 1).reshape(-1),
                (self.rest - self.rest.mean(axis=0)).reshape(-1),
            ]
            lower += [-np.inf, -np.inf, -0.5]
            upper += [np.inf, np.inf, 0.5]
        a = np.stack(cols, axis=1)  # (956, K) pixels per unit
        self.n_channels = len(FIT_CHANNELS)
        # columns scaled to unit norm: the solver and the ridge see comparable units
        self._norm = np.linalg.norm(a, axis=0)
        self._norm[self._norm == 0] = 1.0
        penalty = np.zeros((a.shape[1], a.shape[1]))
        penalty[: self.n_channels, : self.n_channels] = np.sqrt(_RIDGE) * np.eye(self.n_channels)
        self._a = np.concatenate([a / self._norm, penalty])
        self._bounds = (np.array(lower) * self._norm, np.array(upper) * self._norm)

    def fit(self, landmarks: np.ndarray) -> tuple[np.ndarray, float]:
        """Channel values of one frame.

        Args:
            landmarks: (478, 2 or 3) observed pixels of the frame (z is not used).

        Returns:
            (len(FIT_CHANNELS),) float64 values in :data:`FIT_BOUNDS` (head in degrees), and the
            root-mean-square distance in pixels between the observed and the fitted vertices.
        """
        obs = np.asarray(landmarks, np.float64)[:, :2]
        n = obs.size
        b = np.concatenate([(obs - self.rest).reshape(-1), np.zeros(self._a.shape[1])])
        sol = lsq_linear(self._a, b, bounds=self._bounds, method="bvls")
        residual = float(np.sqrt(2.0 * np.mean((self._a[:n] @ sol.x - b[:n]) ** 2)))
        return (sol.x / self._norm)[: self.n_channels], residual


def probe_values(n_frames: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random, independent channel values for ``n_frames`` probe frames (see PROBE_RANGES).

    >>> probe_values(4)["head_yaw"].shape
    (4,)
    """
    rng = np.random.default_rng(seed)
    out = {c: rng.uniform(lo, hi, n_frames) for c, (lo, hi) in PROBE_RANGES.items()}
    for eye in ("blink_l", "blink_r"):
        out[eye][rng.random(n_frames) < 0.5] = 0.0
    return out


def identify_bases(
    frames: np.ndarray, values: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The rig as a landmarker sees it, identified from probe frames by least squares.

    Fits rest and bases (an affine map from channel values to landmarks) to frames rendered
    from random, independent channel values (:func:`probe_values`) and located by the same
    landmarker as the clip: the landmarker's average response to the rig, gains and couplings
    included.

    Args:
        frames: (N, 478, 2|3) landmark pixels of the N probe frames (N > 2 * channels).
        values: channel -> (N,) the values each probe frame was rendered with, for every
            channel in :data:`FIT_CHANNELS`.

    Returns:
        (478, 2) rest landmarks and channel -> (478, 2) pixels per unit (per degree for head).
    """
    pts = np.asarray(frames, np.float64)[..., :2]
    n = len(pts)
    if pts.shape[1:] != (NUM_LANDMARKS, 2) or n <= 2 * len(FIT_CHANNELS):
        raise ValueError(
            f"identify_bases: need (N > {2 * len(FIT_CHANNELS)}, {NUM_LANDMARKS}, 2|3) "
            f"landmarks, got {pts.shape}"
        )
    x = np.stack([np.asarray(values[c], np.float64) for c in FIT_CHANNELS] + [np.ones(n)], 1)
    w = np.linalg.lstsq(x, pts.reshape(n, -1), rcond=None)[0]  # (K + 1, 956)
    bases = {c: w[k].reshape(NUM_LANDMARKS, 2) for k, c in enumerate(FIT_CHANNELS)}
    return w[-1].reshape(NUM_LANDMARKS, 2), bases
