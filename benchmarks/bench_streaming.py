"""Real-time path benchmark: 20 ms audio chunks in, rendered frames out, latency p50/p95.

    .venv/bin/python benchmarks/bench_streaming.py [--size 512] [--utterances 5]

Audio is fed as if it arrived in real time: chunk i (20 ms) is complete at (i + 1) * 20 ms;
each push is timed on the wall clock (learned model + gate + mesh-warp render of the frames it
completes) and queued behind the previous one if that is still busy. A frame's latency is
from the moment its audio starts (frame k: k / fps) to the moment the frame is ready, so it
includes the frame's own 40 ms of audio, the model's look-ahead, chunking and compute.
Reported: that latency over all frames (p50/p95), the first frame of each utterance, the
compute time per push, and the real-time margin (compute seconds per audio second).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys

import numpy as np

TEXTS = [
    "Good morning! I hope you slept well.",
    "Shall we look at your plans for the week?",
    "That sounds like a lovely idea, let's do it.",
    "I'm not sure I follow. Could you say that again?",
    "Of course. Take all the time you need.",
]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run(size: int, n_utterances: int, chunk_s: float) -> dict:
    from avatar.config import compose, pipeline_from_config
    from avatar.stream_lab import stream_recording

    pipeline = pipeline_from_config(compose("render", [f"renderer.size={size}"]))
    session = pipeline.session("default")
    fps = session.fps
    latencies, firsts, compute = [], [], []
    audio_s = 0.0
    speeches = [pipeline.speak(t) for t in TEXTS[:n_utterances]]
    session.push_audio(speeches[0].audio[:2400], speeches[0].sample_rate)  # warm-up
    session.reset()
    for speech in speeches:  # each as a call: 20 ms chunks as if in real time, then a flush
        run = stream_recording(session, speech.audio, speech.sample_rate, chunk_s=chunk_s)
        latencies += run.latency_s
        firsts.append(run.latency_s[0])
        compute += [p.compute_s for p in run.pushes]
        audio_s += run.audio_s
    learned = pipeline.learned
    return {
        "size": size,
        "chunk_ms": round(chunk_s * 1000),
        "utterances": len(speeches),
        "audio_seconds": round(audio_s, 2),
        "frames": len(latencies),
        "model_lookahead_ms": round(1000 * learned.latency_s, 1),
        "frame_duration_ms": round(1000 / fps, 1),
        "latency_ms_p50": round(1000 * percentile(latencies, 50), 1),
        "latency_ms_p95": round(1000 * percentile(latencies, 95), 1),
        "first_frame_latency_ms_median": round(1000 * statistics.median(firsts), 1),
        "compute_ms_per_push_p50": round(1000 * percentile(compute, 50), 2),
        "compute_ms_per_push_p95": round(1000 * percentile(compute, 95), 2),
        "compute_seconds_per_audio_second": round(sum(compute) / audio_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--utterances", type=int, default=5)
    parser.add_argument("--chunk-ms", type=float, default=20.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    report = run(args.size, args.utterances, args.chunk_ms / 1000)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
