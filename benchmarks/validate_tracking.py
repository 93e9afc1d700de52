"""Validate motion from video: render clips from known motion, fit the channels back, compare.

Each clip is the default companion rendered by the project's pipeline (mesh-warp, MP4 H.264)
from a random smooth track: speech-like jaw and lip opening, head yaw/pitch/roll, blinks, gaze,
brows and smile. :func:`avatar.drive.motion_from_video` then fits the channels to MediaPipe's
landmarks of the MP4 in two ways: ``rig=observed``, against the rig as MediaPipe sees this
identity (identified from 600 probe frames, :func:`avatar.motion.tracking_fit.identify_bases`:
the mode for clips the project rendered), and ``rig=video``, against the geometric rig built on
the video's own most neutral frame (how ``drive=`` reads any video; its head angles are relative
to that frame, so their error includes that frame's pose).

Printed per mode, over the clips (median / max): Pearson correlation of fitted and true values
per channel, and for the head channels the mean absolute error in degrees. ``mouth_gap`` is the
total inner-lip opening the two mouth channels make (0.22 jaw_open + 0.11 lip_open, in eye-corner
distances). Target (issue #15): correlation >= 0.95 for jaw and lip opening, head pose within
1 degree (mean absolute error per clip).

    .venv/bin/python benchmarks/validate_tracking.py --clips 4 --seconds 6 --size 256
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np

from avatar.config import companion_from_config, compose, pipeline_from_config
from avatar.drive import motion_from_video
from avatar.identity.landmarker import run_image_landmarker
from avatar.motion.track import CHANNELS, MotionTrack
from avatar.motion.tracking_fit import identify_bases, probe_values
from avatar.speech.tts import silence_speech

log = logging.getLogger("validate_tracking")

REPORTED = (
    "jaw_open",
    "lip_open",
    "mouth_gap",
    "blink_l",
    "blink_r",
    "gaze_x",
    "gaze_y",
    "brow_raise",
    "smile",
    "head_yaw",
    "head_pitch",
    "head_roll",
)
HEAD = ("head_yaw", "head_pitch", "head_roll")


def _smooth_noise(rng: np.random.Generator, n: int, cutoff_frames: float) -> np.ndarray:
    """(n,) zero-mean unit-std noise low-passed to ~1/cutoff_frames cycles per frame."""
    x = rng.normal(size=n + 64)
    k = np.exp(-0.5 * (np.arange(-32, 33) / cutoff_frames) ** 2)
    y = np.convolve(x, k / k.sum(), mode="same")[32:-32]
    return (y - y.mean()) / (y.std() + 1e-9)


def known_track(seed: int, seconds: float, fps: float = 25.0) -> MotionTrack:
    """A random, smooth, speech-like motion track (the ground truth of one clip)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    t = np.arange(n) / fps
    track = MotionTrack.zeros(n, fps)
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6))  # ~4 Hz
    talking = np.clip(0.6 + 0.6 * _smooth_noise(rng, n, 12), 0, 1)
    jaw = 0.7 * syllables * talking + 0.05 * _smooth_noise(rng, n, 2)
    track.set("jaw_open", np.clip(jaw, 0, 1))
    track.set("lip_open", np.clip(0.25 + 0.3 * _smooth_noise(rng, n, 3), 0, 1) * talking)
    for name, deg, width in (("head_yaw", 5, 15), ("head_pitch", 3, 12), ("head_roll", 3, 18)):
        track.set(name, deg * _smooth_noise(rng, n, width))
    blinks = np.zeros(n)
    for start in rng.choice(max(n - 6, 1), size=max(1, int(seconds / 2.5)), replace=False):
        blinks[start : start + 5] = np.array([0.4, 1.0, 1.0, 0.6, 0.2])[: len(blinks[start:])]
    track.set("blink_l", blinks)
    track.set("blink_r", blinks)
    track.set("gaze_x", 0.3 * _smooth_noise(rng, n, 10))
    track.set("gaze_y", 0.2 * _smooth_noise(rng, n, 10))
    track.set("brow_raise", 0.3 * _smooth_noise(rng, n, 15))
    track.set("smile", np.clip(0.2 + 0.2 * _smooth_noise(rng, n, 20), 0, 1))
    return track


def observed_rig(renderer, prepared, n_frames: int = 300, seed: int = 1):
    """(rest, bases) of the rig as MediaPipe sees this identity: ``n_frames`` probe frames."""
    values = probe_values(n_frames, seed)
    rows = np.zeros((n_frames, len(CHANNELS)), np.float32)
    for name, series in values.items():
        rows[:, CHANNELS.index(name)] = series
    frames = renderer.render_chunk(prepared, rows)
    located = [run_image_landmarker(f, num_faces=1) for f in frames]
    keep = [i for i, faces in enumerate(located) if faces]
    landmarks = np.array([located[i][0].landmarks for i in keep])
    return identify_bases(landmarks, {k: v[keep] for k, v in values.items()})


def _series(track: MotionTrack, name: str) -> np.ndarray:
    if name == "mouth_gap":
        return 0.22 * track["jaw_open"] + 0.11 * track["lip_open"]
    return track[name].astype(np.float64)


def compare(true: MotionTrack, fitted: MotionTrack) -> dict[str, float]:
    """``<channel>/r`` Pearson correlation, and ``<head channel>/mae_deg``, over common frames."""
    n = min(len(true), len(fitted))
    out = {}
    for name in REPORTED:
        a, b = _series(true, name)[:n], _series(fitted, name)[:n]
        out[f"{name}/r"] = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0
        if name in HEAD:
            out[f"{name}/mae_deg"] = float(np.mean(np.abs(a - b)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probes", type=int, default=600, help="probe frames of rig=observed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = compose(
        "render",
        [f"renderer.size={args.size}", "render_processes=0", "identity.super_resolution=off"],
    )
    pipeline = pipeline_from_config(cfg)
    companion = companion_from_config(cfg)
    resolved = pipeline.resolve(companion)
    rig = observed_rig(pipeline.renderer, resolved.prepared, args.probes)
    modes = {"observed": {"observed_rig": rig}, "video": {}}
    rows: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.clips):
            true = known_track(args.seed + k, args.seconds)
            clip = Path(tmp) / f"clip{k}.mp4"
            speech = silence_speech(true.duration, 24000)
            pipeline.render_speech(companion, speech, clip, motion=true)
            for mode, kwargs in modes.items():
                fitted = motion_from_video(clip, **kwargs).track
                rows[mode].append(compare(true, fitted))
            log.warning("clip %d: %s", k, {n: round(v, 3) for n, v in rows["observed"][-1].items()})
    for mode, scores in rows.items():
        print(f"\nrig={mode}: {args.clips} clips x {args.seconds:g} s at {args.size} px")
        print(f"{'metric':<22}{'median':>9}{'worst':>9}")
        for key in scores[0]:
            vals = np.array([s[key] for s in scores])
            worst = vals.max() if key.endswith("mae_deg") else vals.min()
            print(f"{key:<22}{np.median(vals):>9.3f}{worst:>9.3f}")


if __name__ == "__main__":
    main()
