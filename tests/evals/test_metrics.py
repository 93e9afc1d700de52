"""Each metric class against its functional form and a naive reference (torchmetrics MetricTester
style): over several random batches, batch-invariant, and best on identical inputs."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from evals.functional import (
    blink_rate,
    flicker,
    head_motion,
    identity_consistency,
    landmark_distance,
    landmark_jitter,
    lipsync_offset,
    mouth_closure,
    mouth_motion,
    perceptual,
    reconstruction,
    speed,
    viseme_agreement,
)
from evals.metrics import (
    ArcFaceCSIM,
    BlinkRate,
    FirstFrameLatency,
    Flicker,
    HeadMotionStats,
    IdentityDistance,
    IdentityDrift,
    IdentityRetention,
    LandmarkDistance,
    LandmarkJitter,
    LipSyncOffset,
    MetricNotApplicable,
    MouthClosure,
    MouthMotion,
    RealTimeFactor,
    SyncNetLSE,
    VisemeAgreement,
)
from evals.metrics.identity import _to_rgb8
from evals.metrics.reconstruction import LPIPS, PSNR, SSIM

NUM_BATCHES, B, T, FPS = 3, 2, 60, 25.0


def _env(rng: np.random.Generator) -> torch.Tensor:
    on = (rng.random((B, T)) > 0.4).astype(float)
    return torch.from_numpy(np.clip(on * rng.uniform(0.5, 1.0, (B, T)), 0, 1))


def _sync(rng: np.random.Generator) -> dict[str, Any]:
    env = _env(rng)
    return {
        "aperture": 0.3 * torch.roll(env, int(rng.integers(-2, 3)), 1)
        + 0.02 * torch.from_numpy(rng.random((B, T))),
        "envelope": env,
    }


def _closure(rng: np.random.Generator) -> dict[str, Any]:
    level = np.where(np.arange(T) % 30 < 12, -60.0, 0.0)[None].repeat(B, 0)
    ap = np.where(level < -35, rng.uniform(0, 0.09, (B, T)), rng.uniform(0.1, 0.4, (B, T)))
    return {"aperture": torch.from_numpy(ap), "level_db": torch.from_numpy(level), "fps": FPS}


def _eyes(rng: np.random.Generator) -> dict[str, Any]:
    x = 0.3 + 0.005 * rng.standard_normal((B, 200, 2))
    for b in range(B):
        for t in rng.choice(195, size=int(rng.integers(1, 4)), replace=False):
            x[b, t : t + 3] = 0.05
    return {"eye_openness": torch.from_numpy(x), "fps": FPS}


def _landmarks(rng: np.random.Generator) -> torch.Tensor:
    face = rng.normal(size=(478, 2)) * 30 + 100
    face[263] = face[33] + [60.0, 0.0]
    return torch.from_numpy(face + rng.normal(scale=0.5, size=(B, 30, 478, 2)))


def _video(rng: np.random.Generator) -> torch.Tensor:
    return torch.from_numpy(rng.random((B, 12, 3, 8, 8)).astype(np.float32))


def _mask(rng: np.random.Generator) -> torch.Tensor:
    return torch.from_numpy(rng.random((B, 8, 8)) > 0.5)


def _refs(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.integers(0, 256, (8, 8, 3)).astype(np.uint8) for _ in range(3)]


def _embed(video: torch.Tensor, refs: list[np.ndarray], k: int) -> tuple[list, np.ndarray]:
    """Naive embedding with the mean-colour stand-in: frames 0, k, 2k ... and references."""
    mean = lambda img: img.reshape(-1, 3).mean(0) / 255.0  # noqa: E731
    clips = [np.stack([mean(_to_rgb8(f)) for f in clip[::k].numpy()]) for clip in video]
    return clips, np.stack([mean(r) for r in refs])


def _visemes(rng: np.random.Generator) -> torch.Tensor:
    """(B, T, 14) weights whose arg-max is sil a third of the time."""
    w = rng.random((B, T, 14))
    w[..., 0] += (rng.random((B, T)) < 0.33) * 2
    return torch.from_numpy(w)


def _frames16(rng: np.random.Generator) -> dict[str, Any]:
    ref = rng.random((B, 4, 3, 16, 16))
    return {
        "video": torch.from_numpy(np.clip(ref + rng.normal(0, 0.1, ref.shape), 0, 1)),
        "target_video": torch.from_numpy(ref),
    }


class TinyPerceptual(torch.nn.Module):
    """A stand-in LPIPS network: mean |conv(x) - conv(y)| of a fixed random 3x3 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        torch.nn.init.normal_(self.conv.weight, generator=torch.Generator().manual_seed(0))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.conv(x) - self.conv(y)).abs().mean((1, 2, 3), keepdim=True)


TINY_PERCEPTUAL = TinyPerceptual()


@dataclass
class Case:
    name: str
    make: Callable[..., Any]  # embedder -> metric
    functional: Callable[[dict[str, Any]], Any]  # all inputs (clips concatenated) -> value
    inputs: Callable[[np.random.Generator], dict[str, Any]]


def _id_fn(fn: Callable[..., Any], with_times: bool = False) -> Callable[[dict[str, Any]], Any]:
    def run(kw: dict[str, Any]) -> Any:
        clips, refs = _embed(kw["video"], kw["references"], 3)
        if with_times:
            times = [np.arange(0, kw["video"].shape[1], 3) / FPS for _ in clips]
            return fn(clips, refs, times)
        return fn(clips, refs)

    return run


CASES = [
    Case(
        "LipSyncOffset",
        lambda e: LipSyncOffset(max_offset=4, min_pairs=10),
        lambda kw: lipsync_offset.lipsync_offset(**kw, max_offset=4),
        _sync,
    ),
    Case(
        "MouthClosure",
        lambda e: MouthClosure(min_pause_s=0.3, threshold=0.06, silence_db=-35.0, margin_s=0.08),
        lambda kw: mouth_closure.mouth_closure(**kw),
        _closure,
    ),
    Case(
        "MouthMotion",
        lambda e: MouthMotion(silence_db=-35.0, floor_db=-60.0),
        lambda kw: mouth_motion.mouth_motion(**kw),
        _sync,
    ),
    Case(
        "BlinkRate",
        lambda e: BlinkRate(ratio=0.6, noise_k=4.0, max_duration_s=1.0),
        lambda kw: blink_rate.blink_rate(**kw),
        _eyes,
    ),
    Case(
        "LandmarkJitter",
        lambda e: LandmarkJitter(points="rigid"),
        lambda kw: landmark_jitter.landmark_jitter(**kw),
        lambda r: {"landmarks": _landmarks(r)},
    ),
    Case(
        "LandmarkDistance",
        lambda e: LandmarkDistance(normalize=True),
        lambda kw: landmark_distance.landmark_distance(
            kw["landmarks"], kw["target_landmarks"], normalize=True
        ),
        lambda r: {"landmarks": _landmarks(r), "target_landmarks": _landmarks(r)},
    ),
    Case(
        "Flicker",
        lambda e: Flicker(),
        lambda kw: flicker.flicker(**kw),
        lambda r: {"video": _video(r), "static_mask": _mask(r)},
    ),
    Case(
        "HeadMotionStats",
        lambda e: HeadMotionStats(),
        lambda kw: head_motion.head_motion_stats(**kw),
        lambda r: {"pose": torch.from_numpy(r.normal(size=(B, T, 3))), "fps": FPS},
    ),
    Case(
        "RealTimeFactor",
        lambda e: RealTimeFactor(),
        lambda kw: speed.real_time_factor(**kw),
        lambda r: {
            "total_s": torch.from_numpy(r.uniform(0.5, 2, B)),
            "audio_s": torch.from_numpy(r.uniform(2, 5, B)),
            "n_frames": torch.from_numpy(r.integers(50, 125, B).astype(float)),
        },
    ),
    Case(
        "FirstFrameLatency",
        lambda e: FirstFrameLatency(),
        lambda kw: speed.first_frame_latency(**kw),
        lambda r: {"first_frame_s": torch.from_numpy(r.uniform(0.1, 1.0, B))},
    ),
    Case(
        "IdentityDistance",
        lambda e: IdentityDistance(embedder=e, sample_every=3, threshold=0.6),
        _id_fn(identity_consistency.identity_distance_stats),
        lambda r: {"video": _video(r), "references": _refs(r)},
    ),
    Case(
        "IdentityRetention",
        lambda e: IdentityRetention(embedder=e, sample_every=3),
        _id_fn(identity_consistency.identity_retention),
        lambda r: {"video": _video(r), "references": _refs(r)},
    ),
    Case(
        "IdentityDrift",
        lambda e: IdentityDrift(embedder=e, sample_every=3, min_faces=3),
        _id_fn(identity_consistency.identity_drift, with_times=True),
        lambda r: {"video": _video(r), "references": _refs(r), "fps": FPS},
    ),
    Case(
        "VisemeAgreement",
        lambda e: VisemeAgreement(),
        lambda kw: viseme_agreement.viseme_agreement(**kw),
        lambda r: {"visemes": _visemes(r), "target_visemes": _visemes(r)},
    ),
    Case("PSNR", lambda e: PSNR(), lambda kw: reconstruction.psnr(**kw), _frames16),
    Case("SSIM", lambda e: SSIM(), lambda kw: reconstruction.ssim(**kw), _frames16),
    Case(
        "LPIPS",
        lambda e: LPIPS(model=TINY_PERCEPTUAL, net="alex"),
        lambda kw: perceptual.perceptual_distance(**kw, model=TINY_PERCEPTUAL),
        _frames16,
    ),
]

_SHARED = {"fps", "references"}  # not batched: the same for every clip


def _concat(batches: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        k: batches[0][k] if k in _SHARED else torch.cat([b[k] for b in batches]) for k in batches[0]
    }


def _split(batch: dict[str, Any]) -> list[dict[str, Any]]:
    n = next(len(v) for k, v in batch.items() if k not in _SHARED)
    return [{k: v if k in _SHARED else v[i : i + 1] for k, v in batch.items()} for i in range(n)]


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    x, y = float(a), float(b)
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def _batches(case: Case, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    if case.name.startswith("Identity"):
        refs = _refs(rng)  # one companion for every batch
        return [case.inputs(rng) | {"references": refs} for _ in range(NUM_BATCHES)]
    return [case.inputs(rng) for _ in range(NUM_BATCHES)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_class_equals_functional_over_batches(case: Case, fake_embedder) -> None:
    batches = _batches(case)
    metric = case.make(fake_embedder)
    for batch in batches:
        step = metric(**batch)  # forward: this batch's value, accumulated as well
        assert _close(step, case.functional(batch)), "forward value differs from the functional"
    assert _close(metric.compute(), case.functional(_concat(batches)))
    metric.reset()
    metric.update(**batches[0])
    assert _close(metric.compute(), case.functional(batches[0]))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_batch_invariance(case: Case, fake_embedder) -> None:
    batch = _concat(_batches(case, seed=1))
    whole, single = case.make(fake_embedder), case.make(fake_embedder)
    whole.update(**batch)
    for one in _split(batch):
        single.update(**one)
    assert _close(whole.compute(), single.compute())
    clone = copy.deepcopy(whole)  # states copied, a shared embedder kept
    assert _close(clone.compute(), whole.compute())
    assert getattr(clone, "embedder", None) is getattr(whole, "embedder", None)


def test_naive_references() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.random((2, 10, 478, 2)), rng.random((2, 10, 478, 2))
    assert LandmarkDistance()(a, b).item() == pytest.approx(np.linalg.norm(a - b, axis=-1).mean())
    v = rng.random((2, 5, 3, 6, 6))
    y = np.tensordot([0.299, 0.587, 0.114], v, axes=(0, 2))  # (2, 5, 6, 6)
    got = Flicker()(torch.from_numpy(v))["overall"].item()
    assert got == pytest.approx(np.abs(np.diff(y, axis=1)).mean(), rel=1e-6)
    ap, env = rng.random((1, 50)), (rng.random((1, 50)) > 0.5).astype(float)
    out = MouthMotion(silence_db=-35.0, floor_db=-60.0)(ap, env)
    assert out["speech"].item() == pytest.approx(ap[env > 0.5].mean())
    rtf = RealTimeFactor()([1.0, 2.0], [4.0, 2.0], [100, 50])
    assert rtf["rtf"].item() == pytest.approx(0.5) and rtf["fps"].item() == pytest.approx(50.0)


def test_best_scores_on_identical_inputs(fake_embedder) -> None:
    rng = np.random.default_rng(7)
    env = _env(rng)
    av = LipSyncOffset(max_offset=8, min_pairs=10)(env, env)
    assert av["offset_abs"].item() == 0.0 and av["corr_at_0"].item() == pytest.approx(1.0)
    lm = _landmarks(rng)
    assert LandmarkDistance()(lm, lm).item() == 0.0
    still = lm[:, :1].expand(-1, 30, -1, -1)
    assert LandmarkJitter(points="rigid")(still).item() == pytest.approx(0.0, abs=1e-9)
    video = _video(rng)
    assert Flicker()(video[:, :1].expand(-1, 5, -1, -1, -1))["overall"].item() == 0.0
    frame = _to_rgb8(video[0, 0].numpy())
    ident = IdentityDistance(embedder=fake_embedder, sample_every=10, threshold=0.6)(
        video[:1, :1], [frame]
    )
    assert ident["distance"].item() == 0.0 and ident["same_person"].item() == 1.0
    vis = _visemes(rng)
    assert VisemeAgreement()(vis, vis)["agreement"].item() == 1.0
    frames = _frames16(rng)["target_video"]
    assert PSNR()(frames, frames).item() == reconstruction.MAX_PSNR_DB
    assert SSIM()(frames, frames).item() == pytest.approx(1.0)
    assert LPIPS(model=TINY_PERCEPTUAL, net="alex")(frames, frames).item() == 0.0
    level = torch.tensor([0.0] * 10 + [-60.0] * 10 + [0.0] * 10)
    closed = MouthClosure(min_pause_s=0.3, threshold=0.06, silence_db=-35.0, margin_s=0.08)(
        torch.where(level < 0, 0.0, 0.3), level, FPS
    )
    assert closed["closed_fraction"].item() == 1.0 and closed["pauses_closed"].item() == 1.0


def test_argument_validation(fake_embedder) -> None:
    with pytest.raises(ValueError, match="max_offset"):
        LipSyncOffset(max_offset=-1, min_pairs=10)
    with pytest.raises(ValueError, match="differ in length"):
        LipSyncOffset(max_offset=8, min_pairs=10)(torch.zeros(1, 20), torch.zeros(1, 21))
    with pytest.raises(ValueError, match="dims"):
        MouthMotion(silence_db=-35.0, floor_db=-60.0)(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="sample_every"):
        IdentityDistance(sample_every=0, threshold=0.6)
    with pytest.raises(ValueError, match="points"):
        LandmarkJitter(points="lips")
    with pytest.raises(ValueError, match="finite and >= 0"):
        RealTimeFactor()([-1.0], [1.0], [1])
    with pytest.raises(ValueError, match="must both be"):
        VisemeAgreement()(torch.zeros(1, 5, 14), torch.zeros(1, 5, 13))
    with pytest.raises(ValueError, match="differ in shape"):
        PSNR()(torch.zeros(1, 2, 3, 8, 8), torch.zeros(1, 3, 3, 8, 8))
    with pytest.raises(ValueError, match="net must be"):
        LPIPS(net="squeeze")
    with pytest.raises(ValueError, match="sample_every"):
        ArcFaceCSIM(sample_every=0)
    with pytest.raises(ValueError, match="vshift"):
        SyncNetLSE(vshift=-1)
    black = np.zeros((8, 8, 3), np.uint8)  # the stand-in finds no face in black images
    with pytest.raises(MetricNotApplicable, match="no face"):
        IdentityDistance(embedder=fake_embedder, sample_every=10, threshold=0.6)(
            torch.rand(1, 2, 3, 8, 8), [black]
        )
    with pytest.raises(MetricNotApplicable, match=">= 2 reference"):
        IdentityRetention(embedder=fake_embedder, sample_every=10)(
            torch.rand(1, 2, 3, 8, 8), [black + 9]
        )


def test_frames_without_faces_are_counted(fake_embedder) -> None:
    video = torch.rand(1, 4, 3, 8, 8)
    video[0, 2] = 0.0  # no face in frame 2
    out = IdentityDistance(embedder=fake_embedder, sample_every=1, threshold=0.6)(
        video, [np.full((8, 8, 3), 9, np.uint8)]
    )
    assert out["no_face"].item() == pytest.approx(0.25)
