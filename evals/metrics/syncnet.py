"""SyncNet LSE-D / LSE-C / offset with the public ``syncnet_v2`` weights (skipped when absent)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from evals.functional._clips import as_numpy
from evals.functional.syncnet import FPS, SAMPLE_RATE, SyncNetModel, face_crops, load_syncnet, lse
from evals.metrics._backbone import BackboneMetric
from evals.metrics.base import MetricNotApplicable
from evals.weights import WeightsRegistry

__all__ = ["SyncNetLSE"]


def _resample(audio: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return audio
    from scipy.signal import resample_poly

    g = np.gcd(int(rate), SAMPLE_RATE)
    return resample_poly(audio, SAMPLE_RATE // g, int(rate) // g)


class SyncNetLSE(BackboneMetric):
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
        "d": False, "c": True, "offset": None, "offset_abs": False, "dist_at_0": False,
    }  # fmt: skip
    _sum_states = ("s_d", "s_c", "s_off", "s_abs", "s_d0", "clips")

    def __init__(self, model: SyncNetModel | None = None, *, vshift: int = 15,
                 registry: WeightsRegistry | None = None, **kwargs: Any) -> None:  # fmt: skip
        if not isinstance(vshift, int) or vshift < 0:
            raise ValueError(f"vshift must be an int >= 0, got {vshift!r}")
        super().__init__(model, **kwargs)
        self.vshift, self.registry = vshift, registry

    def _load(self) -> SyncNetModel:
        return load_syncnet(registry=self.registry)

    def update(self, video: Any, landmarks: Any, audio: Any, sample_rate: int,
               fps: float) -> None:  # fmt: skip
        """Adds clips: (B, T, 3, H, W) video, (B, T, P, 3) landmarks, (B, S) audio."""
        if abs(float(fps) - FPS) > 1e-3:
            raise MetricNotApplicable(f"SyncNet needs {FPS:g} fps video, got {fps}")
        if len(video) != len(landmarks) or len(video) != len(audio):
            raise ValueError("video, landmarks and audio must hold the same number of clips")
        model = self._backbone()
        for clip, lm, wav in zip(video, landmarks, audio, strict=True):
            frames = as_numpy(clip, None)
            if frames.dtype != np.uint8:
                frames = np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)
            crops = face_crops(np.moveaxis(frames, 1, -1), as_numpy(lm))
            if crops is None:
                raise MetricNotApplicable("no face in the clip")
            out = lse(crops, _resample(as_numpy(wav), int(sample_rate)), model,
                      vshift=self.vshift)  # fmt: skip
            self._add((out["lse_d"], out["lse_c"], out["offset"], abs(out["offset"]),
                       out["dist_at_0"], 1.0))  # fmt: skip

    def compute(self) -> dict[str, torch.Tensor]:
        s_d, s_c, s_off, s_abs, s_d0, n = self._sums()
        keys = ("d", "c", "offset", "offset_abs", "dist_at_0")
        vals = (s_d, s_c, s_off, s_abs, s_d0)
        return self._tensors(
            {k: v / n if n else float("nan") for k, v in zip(keys, vals, strict=True)}
        )
