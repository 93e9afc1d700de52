"""Where one mesh-warp frame's time goes: warp map, resampling, mouth interior, H.264 encoding.

    .venv/bin/python benchmarks/bench_frame_stages.py [--size 512] [--repeats 3]

Renders the motion of ``bench_render.py``'s text with the default companion (identity from the
cache) on one thread, timing each stage of ``MeshWarpRenderer._frame`` separately, then encodes
the frames with the configured encoder settings (RGB -> I420 -> libx264). Prints the median
milliseconds per frame of each stage (median over frames, then over ``--repeats``). One
thread and one stage at a time: these are CPU costs, not the wall time of a two-thread render
(``bench_render.py``).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger("bench")


def stage_times(size: int) -> tuple[dict[str, float], list[np.ndarray], object]:
    """Median ms per frame of each render stage, the frames, and the pipeline."""
    from bench_render import TEXT  # this folder is on sys.path when run as a script

    from avatar.config import compose, pipeline_from_config
    from avatar.renderers.base import channel_values
    from avatar.renderers.meshwarp.renderer import (
        _COLUMNS,
        WARPED,
        effective_channels,
        paint_features,
        resample,
    )

    pipeline = pipeline_from_config(compose("render", [f"renderer.size={size}"]))
    prepared = pipeline.resolve("default").prepared
    motion = pipeline.motion_for(pipeline.speak(TEXT))
    fields = prepared.fields
    times: dict[str, list[float]] = {"warp map": [], "resample": [], "lids, mouth": [], "frame": []}
    frames = []
    for row in channel_values(motion)[:, _COLUMNS]:
        t0 = time.perf_counter()
        coeffs = effective_channels(dict(zip(WARPED, row.tolist(), strict=True)))
        moved = fields.backward_map(coeffs)
        t1 = time.perf_counter()
        frame = resample(prepared.portrait, moved)
        t2 = time.perf_counter()
        paint_features(frame, prepared, coeffs)
        t3 = time.perf_counter()
        for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
            times[key].append(value)
        frames.append(frame)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}, frames, pipeline


def encode_ms(frames: list[np.ndarray], pipeline) -> tuple[float, float]:
    """(wall, CPU) ms per frame of writing ``frames`` (and silence) to an MP4 file with the
    pipeline's encoder settings, as an on-demand render does."""
    from avatar.media import Mp4Writer

    size = frames[0].shape[0]
    with tempfile.TemporaryDirectory() as tmp:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        with Mp4Writer(
            Path(tmp) / "frames.mp4",
            fps=25.0,
            size=(size, size),
            sample_rate=24000,
            encoder=pipeline.encoder,
        ) as writer:
            writer.write_audio(np.zeros(24000 * len(frames) // 25, np.float32))
            writer.write_frames(frames)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return 1000 * wall / len(frames), 1000 * cpu / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cv2.setNumThreads(1)
    runs, encodes = [], []
    for _ in range(args.repeats):
        stages, frames, pipeline = stage_times(args.size)
        runs.append(stages)
        encodes.append(encode_ms(frames, pipeline))
    out = sys.stdout
    out.write(f"{len(frames)} frames at {args.size} px, one thread, median ms per frame\n")
    for key in runs[0]:
        out.write(f"  {key:10s} {statistics.median(r[key] for r in runs):7.2f}\n")
    out.write(
        f"  {'encode':10s} {statistics.median(e[1] for e in encodes):7.2f} CPU "
        f"({statistics.median(e[0] for e in encodes):.2f} wall)\n"
    )


if __name__ == "__main__":
    main()
