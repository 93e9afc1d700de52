"""Eval metrics as torchmetrics ``Metric`` classes (functional forms in :mod:`evals.functional`)."""

from evals.metrics.base import EvalMetric, MetricNotApplicable
from evals.metrics.blink import BlinkRate
from evals.metrics.frechet import FrechetDistance
from evals.metrics.identity import IdentityDistance, IdentityDrift, IdentityRetention
from evals.metrics.lipsync import LipSyncOffset, MouthClosure, MouthMotion
from evals.metrics.speed import FirstFrameLatency, RealTimeFactor
from evals.metrics.stability import Flicker, HeadMotionStats, LandmarkDistance, LandmarkJitter

__all__ = [
    "BlinkRate",
    "EvalMetric",
    "FirstFrameLatency",
    "Flicker",
    "FrechetDistance",
    "HeadMotionStats",
    "IdentityDistance",
    "IdentityDrift",
    "IdentityRetention",
    "LandmarkDistance",
    "LandmarkJitter",
    "LipSyncOffset",
    "MetricNotApplicable",
    "MouthClosure",
    "MouthMotion",
    "RealTimeFactor",
]
