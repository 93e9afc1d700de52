"""The workbench sync expert's A/V offset, distance and confidence (its own trained weights)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from evals.functional.sync_expert import expert_scores, load_sync_expert
from evals.metrics._backbone import ClipBackboneMetric

__all__ = ["SyncExpertScore"]


class SyncExpertScore(ClipBackboneMetric):
    """Offset, |offset|, distance, confidence and distance at offset 0 of the sync expert.

    Inputs to ``update``: ``video`` (B, T, 3, H, W) uint8 or float in [0, 1] at 25 fps,
    ``landmarks`` (B, T, 478, 3) pixels, ``audio`` (B, S) mono in [-1, 1] from frame 0,
    ``sample_rate`` (Hz), ``fps`` (must be 25). Per-clip values are averaged over clips. See
    :mod:`evals.functional.sync_expert` for the definitions.

    Args:
        model: a :class:`~avatar.modules.sync_expert.SyncExpert`; None loads ``ckpt_path``.
        ckpt_path: checkpoint (None: the committed ``checkpoints/sync_expert.ckpt``).
        max_offset: frames searched each way.

    Example:
        >>> SyncExpertScore(ckpt_path=None, max_offset=15).directions["confidence"]
        True
    """

    higher_is_better = None
    directions: ClassVar[dict[str, bool | None]] = {
        "offset": None,
        "offset_abs": False,
        "distance": False,
        "confidence": True,
        "dist_at_0": False,
    }
    label = "the sync expert"
    min_frames = 7  # 5-frame windows, 3 of them for an offset search
    outputs = ("offset", "offset_abs", "distance", "confidence", "dist_at_0")
    _sum_states = ("s_off", "s_abs", "s_d", "s_c", "s_d0", "clips")

    def __init__(
        self,
        model: Any = None,
        *,
        ckpt_path: str | Path | None,
        max_offset: int,
        **kwargs: Any,
    ) -> None:
        if not isinstance(max_offset, int) or max_offset < 1:
            raise ValueError(f"max_offset must be an int >= 1, got {max_offset!r}")
        super().__init__(model, **kwargs)
        self.ckpt_path, self.max_offset = ckpt_path, max_offset

    def _load(self) -> Any:
        return load_sync_expert(self.ckpt_path)

    def _score_clip(
        self,
        frames: Iterable[np.ndarray],
        landmarks: np.ndarray,
        audio: np.ndarray,
        sample_rate: int,
        model: Any,
    ) -> dict[str, float] | None:
        out = expert_scores(
            frames, landmarks, audio, sample_rate, model, max_offset=self.max_offset
        )
        return None if out is None else out | {"offset_abs": abs(out["offset"])}
