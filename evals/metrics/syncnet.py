"""SyncNet LSE-D / LSE-C / offset with the public ``syncnet_v2`` weights (skipped when absent)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from avatar.audio import resample
from evals.functional.syncnet import (
    SAMPLE_RATE,
    SyncNetModel,
    iter_face_crops,
    load_syncnet,
    lse,
)
from evals.metrics._backbone import ClipBackboneMetric
from evals.weights import WeightsRegistry

__all__ = ["SyncNetLSE"]


class SyncNetLSE(ClipBackboneMetric):
    """LSE-D, LSE-C and A/V offset of SyncNet (``syncnet_python`` conventions), per clip, mean.

    Inputs to ``update``: ``video`` (B, T, 3, H, W) uint8 or float in [0, 1] at 25 fps,
    ``landmarks`` (B, T, 478, 3) pixels (face crops), ``audio`` (B, S) mono in [-1, 1] from
    frame 0, ``sample_rate`` (Hz; resampled to 16 kHz), ``fps`` (must be 25). Outputs (suite keys
    ``<group>/lse_d`` etc. when named ``lse``): ``d`` LSE-D (lower is better), ``c`` LSE-C
    (higher is better), ``offset`` (frames),
    ``offset_abs``, ``dist_at_0`` (distance at offset 0: a constant shift cannot hide there).
    The default model needs ``syncnet_v2.model`` in the weights directory; absent, ``update``
    raises :class:`~avatar.errors.WeightsMissingError` (suites: skipped with the reason).

    Args:
        model: a :class:`~evals.functional.syncnet.SyncNetModel`; None loads the weights.
        vshift: offsets searched, -vshift..vshift frames (syncnet_python: 15).
        registry: weights registry (None: the run's, else ``configs/weights/registry.yaml``).

    Example:
        >>> SyncNetLSE(vshift=15).directions["c"]
        True
    """

    higher_is_better = False
    directions: ClassVar[dict[str, bool | None]] = {
        "d": False,
        "c": True,
        "offset": None,
        "offset_abs": False,
        "dist_at_0": False,
    }
    label = "SyncNet"
    min_frames = 6
    outputs = ("d", "c", "offset", "offset_abs", "dist_at_0")
    _sum_states = ("s_d", "s_c", "s_off", "s_abs", "s_d0", "clips")

    def __init__(
        self,
        model: SyncNetModel | None = None,
        *,
        vshift: int,
        registry: WeightsRegistry | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(vshift, int) or vshift < 0:
            raise ValueError(f"vshift must be an int >= 0, got {vshift!r}")
        super().__init__(model, **kwargs)
        self.vshift, self.registry = vshift, registry

    def _load(self) -> SyncNetModel:
        return load_syncnet(registry=self.registry)

    def _score_clip(
        self,
        frames: Iterable[np.ndarray],
        landmarks: np.ndarray,
        audio: np.ndarray,
        sample_rate: int,
        model: Any,
    ) -> dict[str, float] | None:
        crops = iter_face_crops(frames, landmarks)
        if crops is None:
            return None
        wav = resample(np.asarray(audio, np.float64), sample_rate, SAMPLE_RATE)
        out = lse(crops, wav, model, vshift=self.vshift, n_frames=len(landmarks))
        return {
            "d": out["lse_d"],
            "c": out["lse_c"],
            "offset": out["offset"],
            "offset_abs": abs(out["offset"]),
            "dist_at_0": out["dist_at_0"],
        }
