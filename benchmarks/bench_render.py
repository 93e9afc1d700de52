"""Benchmark of the on-demand path: per-stage seconds, real-time factor, fps, memory, cold start.

    .venv/bin/python benchmarks/bench_render.py [--runs 5] [--size 512] [--processes N]

Renders a fixed text (about 10 s of speech) with the default companion several times in one
process (identity from the warm cache, as in serving) and reports medians. The real-time
factor is end-to-end wall time (text in, MP4 closed) over audio seconds; rendering and
encoding run in two threads, so their stage seconds overlap. Then it measures the
cold derivation of the identity and the cold start of ``avatar-render`` (process start to the
first rendered frame) in fresh processes.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEXT = (
    "Good morning! I hope you slept well. Today we could go over your plans for the week, "
    "or just talk for a while. Whatever you prefer is fine with me."
)
STAGES = ("tts", "identity", "motion", "render", "encode")
log = logging.getLogger("bench")


def run_in_process(runs: int, size: int, workdir: Path, extra: list[str]) -> dict:
    from avatar.config import compose, pipeline_from_config

    overrides = [f"renderer.size={size}", f"identity.cache_dir={workdir / 'cache'}", *extra]
    pipeline = pipeline_from_config(compose("render", overrides))
    t0 = time.perf_counter()
    pipeline.identity("default")  # cold: derive and cache
    identity_cold = time.perf_counter() - t0
    rows = []
    for i in range(runs + 1):  # the first run warms caches (and starts workers): dropped
        result = pipeline.render_text("default", TEXT, workdir / f"bench{i}.mp4")
        if i:
            rows.append(result)
        else:
            first_run = result
    pipeline.close()
    med = {k: statistics.median(r.timings[k] for r in rows) for k in (*STAGES, "first_frame")}
    total = statistics.median(r.timings["total"] for r in rows)
    audio_s = rows[0].audio_seconds
    frames = rows[0].n_frames
    return {
        "runs": runs,
        "size": size,
        "overrides": extra,
        "first_run_total_seconds": round(first_run.timings["total"], 3),
        "first_run_first_frame_seconds": round(first_run.timings["first_frame"], 3),
        "audio_seconds": round(audio_s, 3),
        "frames": frames,
        "stage_seconds_median": {k: round(v, 4) for k, v in med.items()},
        "identity_cold_seconds": round(identity_cold, 3),
        "total_seconds_median": round(total, 3),
        "real_time_factor_median": round(total / audio_s, 4),
        "real_time_factor_all": [round(r.real_time_factor, 4) for r in rows],
        "render_fps_median": round(frames / med["render"], 1),
        "end_to_end_fps_median": round(frames / total, 1),
        "render_ms_per_frame_median": round(1000 * med["render"] / frames, 2),
        "encode_ms_per_frame_median": round(1000 * med["encode"] / frames, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def cold_start(runs: int, size: int, workdir: Path, extra: list[str]) -> dict:
    exe = Path(sys.executable).with_name("avatar-render")
    ages, torch_flags = [], []
    for i in range(runs):
        cmd = [
            str(exe),
            "text=Hello there.",
            f"out={workdir / f'cold{i}.mp4'}",
            f"renderer.size={size}",
            f"identity.cache_dir={workdir / 'cache'}",
            f"hydra.run.dir={workdir / 'hydra'}",
            *extra,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        m = re.search(
            r"first frame ([\d.]+) s after process start \(torch imported: (\w+)\)",
            out.stdout + out.stderr,
        )
        if not m:
            raise RuntimeError("avatar-render did not report its cold start")
        ages.append(float(m.group(1)))
        torch_flags.append(m.group(2) == "True")
    return {
        "cold_start_first_frame_s_median": round(statistics.median(ages), 3),
        "cold_start_all": ages,
        "torch_imported": any(torch_flags),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument(
        "--processes", type=int, default=None, help="render_processes (default: the config's)"
    )
    parser.add_argument(
        "--min-frames", type=int, default=None, help="render_processes_min_frames override"
    )
    args = parser.parse_args()
    extra = [] if args.processes is None else [f"render_processes={args.processes}"]
    extra += [] if args.min_frames is None else [f"render_processes_min_frames={args.min_frames}"]
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report = run_in_process(args.runs, args.size, work, extra)
        report.update(cold_start(args.cold_runs, args.size, work, extra))
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
