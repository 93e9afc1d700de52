"""Metrics over an injected (or lazily loaded) network: shared, not copied, by ``clone()``."""

from __future__ import annotations

import copy
from typing import Any

from evals.metrics.base import EvalMetric

__all__ = ["BackboneMetric"]


class BackboneMetric(EvalMetric):
    """An :class:`EvalMetric` holding a heavy model in ``self.backbone`` outside its states.

    The model is kept out of ``nn.Module`` registration (so it is not in ``state_dict`` and not
    merged) and shared by copies (the suite clones each metric into a worker).
    """

    def __init__(self, backbone: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        object.__setattr__(self, "backbone", backbone)

    def __deepcopy__(self, memo: dict[int, Any]) -> BackboneMetric:
        memo[id(self.backbone)] = self.backbone
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new

    def _load(self) -> Any:
        """The default model (raises ``WeightsMissingError`` when its weights are absent)."""
        raise NotImplementedError

    def _backbone(self) -> Any:
        if self.backbone is None:
            object.__setattr__(self, "backbone", self._load())
        return self.backbone
