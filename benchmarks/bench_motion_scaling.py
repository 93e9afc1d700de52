"""Benchmark of the motion stage's scaling: seconds and peak memory of ``MotionGenerator.generate``
against the length of the speech.

    .venv/bin/python benchmarks/bench_motion_scaling.py [--runs 3] [--lengths 115 222 462 1800]

The generator is the configured one (``configs/render.yaml``'s ``motion`` node, composed with
``avatar.config.compose`` and built with ``hydra.utils.instantiate``). The inputs are
realistic and cheap: three sentences are synthesized once with the default voice, and their
phone timeline, word spans and audio are repeated end to end (with the pauses the voice puts
between and inside sentences) and cut at the requested length. For every length the report
gives the median of ``--runs`` timed calls, the peak of the memory allocated during one more
call (``tracemalloc``, numpy buffers included; the inputs are allocated before and not
counted), and the seconds of computation per second of speech: a constant ratio across
lengths means linear time.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import sys
import time
import tracemalloc

import numpy as np

SENTENCES = (
    "Good morning! I hope you slept well.",
    "Today we could go over your plans for the week, or just talk for a while.",
    "Whatever you prefer is fine with me, so take your time and tell me what you think.",
)
log = logging.getLogger("bench")


def unit_speech():
    """The three sentences' audio (S,) float32, sample rate and joined PhonemeTimeline."""
    from hydra.utils import instantiate

    from avatar.config import compose
    from avatar.speech.timeline import PhonemeTimeline

    voice = instantiate(compose("render").voices).get(None)
    parts = [voice.synthesize(s) for s in SENTENCES]
    rates = {p.sample_rate for p in parts}
    if len(rates) != 1:
        raise RuntimeError(f"sentences came at different rates: {rates}")
    timelines = []
    for p in parts:  # each timeline's duration made exactly its audio's length
        n = len(p.audio)
        timelines.append(
            PhonemeTimeline(
                p.timeline.phones, p.timeline.words, n / p.sample_rate, p.timeline.alphabet
            )
        )
    audio = np.concatenate([p.audio for p in parts]).astype(np.float32)
    return audio, parts[0].sample_rate, PhonemeTimeline.concatenate(timelines)


def repeated(audio: np.ndarray, sample_rate: int, unit, seconds: float):
    """``unit`` (and its audio) repeated end to end and cut at ``seconds``."""
    from avatar.speech.timeline import Phone, PhonemeTimeline, WordSpan

    reps = int(np.ceil(seconds / unit.duration))
    long = PhonemeTimeline.concatenate([unit] * reps)
    phones = [
        Phone(p.phoneme, p.start, min(p.end, seconds)) for p in long.phones if p.start < seconds
    ]
    words = [
        WordSpan(w.word, w.start, min(w.end, seconds)) for w in long.words if w.start < seconds
    ]
    n = int(round(seconds * sample_rate))
    samples = np.tile(audio, reps)[:n]
    return PhonemeTimeline(phones, words, seconds, unit.alphabet), samples


def measure(generator, timeline, audio: np.ndarray, sample_rate: int, runs: int) -> dict:
    n_frames = int(round(timeline.duration * generator.fps))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        track = generator.generate(timeline, audio, sample_rate, n_frames)
        times.append(time.perf_counter() - t0)
    del track
    tracemalloc.start()
    generator.generate(timeline, audio, sample_rate, n_frames)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    median = statistics.median(times)
    return {
        "speech_seconds": round(timeline.duration, 2),
        "phones": len(timeline.phones),
        "frames": n_frames,
        "seconds_median": round(median, 4),
        "seconds_all": [round(t, 4) for t in times],
        "ms_per_speech_second": round(1000 * median / timeline.duration, 3),
        "peak_traced_mb": round(peak / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lengths", type=float, nargs="+", default=[115, 222, 462, 1800])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from hydra.utils import instantiate

    from avatar.config import compose

    generator = instantiate(compose("render").motion)
    audio, sample_rate, unit = unit_speech()
    report = {
        "unit": {
            "sentences": len(SENTENCES),
            "seconds": round(unit.duration, 3),
            "phones": len(unit.phones),
            "pauses_min_pause_s": len(unit.pauses(min_duration=generator.min_pause_s)),
        },
        "runs": args.runs,
        "lengths": [],
    }
    for seconds in args.lengths:
        timeline, samples = repeated(audio, sample_rate, unit, seconds)
        row = measure(generator, timeline, samples, sample_rate, args.runs)
        log.warning("%s", row)
        report["lengths"].append(row)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
