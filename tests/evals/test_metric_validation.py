"""Validation of the metrics on data whose answer is known (rendered speech, real faces, noise).

- shifting the audio of rendered speech by k frames moves the landmark A/V offset by k;
- shuffled audio drops the sync confidence;
- ID-dlib ranks variants of one face above other people;
- landmark distance and jitter read the Rayleigh mean sigma * sqrt(pi / 2) of Gaussian noise;
- the Frechet distance matches its closed form;
- blinks scheduled in a motion track and rendered are recovered (precision, recall >= 0.9).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from evals.functional.frechet import frechet_distance, gaussian_frechet
from evals.functional.lipsync import speech_envelope
from evals.metrics import (
    FrechetDistance,
    IdentityDistance,
    IdentityRetention,
    LandmarkDistance,
    LandmarkJitter,
    LipSyncOffset,
)

RAYLEIGH = float(np.sqrt(np.pi / 2))
IMAGE_LIMITS = {"max_megapixels": 40.0, "max_side": 4096}  # avatar.companion.load_image


def _envelope(clip, audio: np.ndarray) -> np.ndarray:
    return speech_envelope(audio, clip.sample_rate, clip.fps, len(clip.frames))


def test_audio_shift_moves_the_offset(speech_clip, shift) -> None:
    base = LipSyncOffset(max_offset=12, min_pairs=10)(
        speech_clip.aperture, _envelope(speech_clip, speech_clip.audio)
    )
    assert abs(base["offset"].item()) <= 1 and base["confidence"].item() > 0.2
    for k in range(-8, 9):
        delayed = shift(speech_clip.audio, speech_clip.sample_rate, speech_clip.fps, k)
        out = LipSyncOffset(max_offset=12, min_pairs=10)(
            speech_clip.aperture, _envelope(speech_clip, delayed)
        )
        # audio later by k frames = video earlier by k: the offset (> 0: video lags) falls by k
        assert abs(out["offset"].item() - (base["offset"].item() - k)) <= 1, k


def test_shuffled_audio_drops_confidence(speech_clip) -> None:
    env = _envelope(speech_clip, speech_clip.audio)
    metric = LipSyncOffset(max_offset=8, min_pairs=10)
    aligned = metric(speech_clip.aperture, env)["confidence"].item()
    rng = np.random.default_rng(0)
    block = round(speech_clip.sample_rate / speech_clip.fps)  # one frame of audio
    usable = len(speech_clip.audio) // block * block
    shuffled = []
    for _ in range(8):
        blocks = speech_clip.audio[:usable].reshape(-1, block)
        audio = blocks[rng.permutation(len(blocks))].reshape(-1)
        out = LipSyncOffset(max_offset=8, min_pairs=10)(
            speech_clip.aperture, _envelope(speech_clip, audio)
        )
        shuffled.append(out["confidence"].item())
    assert np.mean(shuffled) < 0.6 * aligned, (aligned, shuffled)
    assert np.median(shuffled) < aligned


def _other_faces() -> list[np.ndarray]:
    """Real faces of other people: insightface's Tom Hanks sample and the people in t1.jpg."""
    import cv2

    from avatar.companion import load_image
    from avatar.identity.search import detect_faces

    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        pytest.skip("insightface sample photos absent (make install)")
    images = Path(spec.origin).parent / "data" / "images"
    faces = [
        cv2.resize(load_image(str(images / "Tom_Hanks_54745.png"), **IMAGE_LIMITS), (256, 256))
    ]
    group = load_image(str(images / "t1.jpg"), **IMAGE_LIMITS)
    for face in detect_faces(group, max_faces=8):
        x0, y0, x1, y1 = face.bbox
        m = 0.6 * max(x1 - x0, y1 - y0)
        crop = group[int(max(y0 - m, 0)) : int(y1 + m), int(max(x0 - m, 0)) : int(x1 + m)]
        if min(crop.shape[:2]) >= 100:
            faces.append(cv2.resize(crop, (256, 256)))
    return faces


def _astronaut_variants() -> list[np.ndarray]:
    import cv2

    from avatar.companion import EMBEDDED_ASTRONAUT, load_image

    img = load_image(EMBEDDED_ASTRONAUT, **IMAGE_LIMITS)
    h, w = img.shape[:2]
    rot = cv2.warpAffine(
        img,
        cv2.getRotationMatrix2D((w / 2, h / 2), 8.0, 1.0),
        (w, h),
        borderMode=cv2.BORDER_REFLECT,
    )
    return [
        np.roll(img, (10, -12), axis=(0, 1)),
        np.clip(img.astype(np.int16) + 30, 0, 255).astype(np.uint8),
        rot,
        cv2.resize(img, (320, 320), interpolation=cv2.INTER_AREA),
    ]


def test_identity_ranks_variants_of_one_face_above_other_faces() -> None:
    from avatar.companion import EMBEDDED_ASTRONAUT, load_image

    ref = [load_image(EMBEDDED_ASTRONAUT, **IMAGE_LIMITS)]
    others = _other_faces()
    assert len(others) >= 4, "need several other people"
    same = [
        IdentityDistance(sample_every=1, threshold=0.6)(v[None, None], ref)["distance"].item()
        for v in _astronaut_variants()
    ]
    other = [
        IdentityDistance(sample_every=1, threshold=0.6)(o[None, None], ref)["distance"].item()
        for o in others
    ]
    assert max(same) < 0.6 <= min(other), (same, other)
    assert max(same) < min(other)
    variants = _astronaut_variants()
    keep = IdentityRetention(sample_every=1)(np.stack(variants[:2])[None], variants[2:])
    lose = IdentityRetention(sample_every=1)(np.stack(others[:2])[None], variants[2:])
    assert keep["ratio"].item() > 2 * lose["ratio"].item()


@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_landmark_distance_is_the_rayleigh_mean(sigma: float) -> None:
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 100, 478, 2, generator=g) * 256
    noisy = target + sigma * torch.randn(target.shape, generator=g)
    lmd = LandmarkDistance()(noisy, target).item()
    assert lmd == pytest.approx(sigma * RAYLEIGH, rel=0.01)


def test_landmark_jitter_is_the_rayleigh_mean_of_the_noise() -> None:
    from avatar.companion import EMBEDDED_ASTRONAUT, load_image
    from avatar.identity.search import detect_faces

    image = load_image(EMBEDDED_ASTRONAUT, **IMAGE_LIMITS)
    face = detect_faces(image, max_faces=1)[0].landmarks[:, :2]
    eye = float(np.linalg.norm(face[33] - face[263]))
    rng = np.random.default_rng(2)
    t = np.arange(300) / 25.0
    angle = np.radians(3 * np.sin(2 * np.pi * 0.3 * t))  # slow head roll and sway: removed
    rot = np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], 1)
    moving = np.einsum("tij,nj->tni", rot.reshape(-1, 2, 2), face - face.mean(0)) + face.mean(0)
    moving += np.stack([20 * np.sin(2 * np.pi * 0.2 * t), 0 * t], 1)[:, None]
    sigma = 1.5
    noisy = moving + rng.normal(scale=sigma, size=moving.shape)
    jitter = LandmarkJitter(points="rigid")(noisy[None]).item()
    assert jitter == pytest.approx(sigma / eye * RAYLEIGH, rel=0.06)
    assert LandmarkJitter(points="rigid")(moving[None]).item() < 0.02 * jitter


def test_frechet_distance_matches_its_closed_form() -> None:
    assert gaussian_frechet([1.0], [[4.0]], [-1.0], [[1.0]]) == pytest.approx(4.0 + 1.0)
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 1.0])
    closed = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert gaussian_frechet(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(closed)
    rng = np.random.default_rng(3)
    a = rng.normal(size=(20000, 3)) * np.sqrt(v1) + mu1
    b = rng.normal(size=(20000, 3)) * np.sqrt(v2) + mu2
    assert frechet_distance(a, b) == pytest.approx(closed, rel=0.03)
    assert frechet_distance(a, a) == 0.0
    metric = FrechetDistance(num_features=3)
    for part in np.array_split(a, 3):
        metric.update(torch.from_numpy(part), reference=True)
    metric.update(torch.from_numpy(b), reference=False)
    assert metric.compute().item() == pytest.approx(frechet_distance(a, b), rel=1e-9)


def test_scheduled_blinks_are_recovered(identity_settings) -> None:
    from avatar.companion import load_companion
    from avatar.identity.derive import derive_identity
    from avatar.motion.track import MotionTrack
    from avatar.renderers.base import channel_values
    from avatar.renderers.meshwarp import MeshWarpRenderer
    from evals.functional.blink import detect_blinks, match_blinks
    from evals.functional.mouth import eye_openness
    from evals.landmarks import track_video

    fps, n = 25.0, 300
    identity = derive_identity(load_companion("default"), size=128, settings=identity_settings)
    track = MotionTrack.zeros(n, fps)
    onsets = [12, 40, 71, 95, 130, 152, 190, 214, 251, 280]
    shape = np.array([0.5, 1.0, 1.0, 0.7, 0.3])  # close 2 frames, hold, reopen 2 frames
    lids = np.zeros(n, np.float32)
    for t in onsets:
        lids[t : t + len(shape)] = shape[: n - t]
    track.set("blink_l", lids)
    track.set("blink_r", lids)
    renderer = MeshWarpRenderer(size=128, mouth_interior=True)
    frames = renderer.render_chunk(renderer.prepare(identity), channel_values(track))
    faces = track_video(frames, fps)
    events = detect_blinks(eye_openness(faces.landmarks), fps)
    precision, recall = match_blinks([e.peak_frame for e in events], onsets, tolerance_frames=3)
    assert precision >= 0.9 and recall >= 0.9, ([e.peak_frame for e in events], onsets)
