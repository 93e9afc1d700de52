"""Eval metrics as torchmetrics ``Metric`` classes (functional forms in :mod:`evals.functional`)."""

from evals.metrics.arcface import ArcFaceCSIM
from evals.metrics.base import EvalMetric, MetricNotApplicable
from evals.metrics.blink import BlinkRate
from evals.metrics.frechet import FrechetDistance
from evals.metrics.identity import IdentityDistance, IdentityDrift, IdentityRetention
from evals.metrics.lipsync import LipSyncOffset, MouthClosure, MouthMotion, VisemeAgreement
from evals.metrics.look import EdgeHardness, LidRealism, SeamBrightness, SharpnessMatch
from evals.metrics.reconstruction import LPIPS, PSNR, SSIM, STLPIPS
from evals.metrics.speed import FirstFrameLatency, RealTimeFactor
from evals.metrics.stability import Flicker, HeadMotionStats, LandmarkDistance, LandmarkJitter
from evals.metrics.sync_expert import SyncExpertScore
from evals.metrics.syncnet import SyncNetLSE

__all__ = [
    "ArcFaceCSIM",
    "BlinkRate",
    "EdgeHardness",
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
    "LidRealism",
    "LPIPS",
    "LipSyncOffset",
    "MetricNotApplicable",
    "MouthClosure",
    "MouthMotion",
    "PSNR",
    "RealTimeFactor",
    "SeamBrightness",
    "SharpnessMatch",
    "SSIM",
    "STLPIPS",
    "SyncExpertScore",
    "SyncNetLSE",
    "VisemeAgreement",
]
