"""One shared pipeline under concurrent requests: throughput, latency and cancellation.

Renders the same N text requests (two companions, both voices) one after another and then on
K threads through one shared :class:`avatar.pipeline.Pipeline`, and cancels renders in flight.
Prints medians and ratios as JSON; nothing here is asserted (speed is measured, not tested).

    .venv/bin/python benchmarks/bench_concurrency.py --requests 8 --threads 4 --size 512
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2

TEXTS = [
    "Good morning! Did you sleep well?",
    "I was thinking about what you said yesterday.",
    "That sounds like a wonderful plan.",
    "Let me know when you are ready to start.",
    "We could take a short walk after lunch.",
    "I am here whenever you want to talk.",
    "Tell me more about your trip.",
    "See you tomorrow, then. Sleep well!",
]


def _companions(workdir: Path) -> list:
    from avatar.companion import CompanionSpec, load_image

    mirrored = workdir / "mirrored.png"
    cv2.imwrite(
        str(mirrored),
        load_image("embedded:astronaut", max_megapixels=1, max_side=512)[:, ::-1, ::-1],
    )
    return [
        CompanionSpec(id="astra", name="Astra", images=["embedded:astronaut"]),
        CompanionSpec(id="mirror", name="Mirror", images=[str(mirrored)], voice="flite-slt"),
    ]


def _timed(pipeline, companion, text: str, out: Path) -> tuple[float, float]:
    t0 = time.perf_counter()
    result = pipeline.render_text(companion, text, out)
    return time.perf_counter() - t0, result.audio_seconds


def throughput(pipeline, companions, n: int, threads: int, workdir: Path) -> dict:
    """Serial and threaded wall time of the same ``n`` requests (identities already warm)."""
    jobs = [(companions[k % 2], TEXTS[k % len(TEXTS)], workdir / f"r{k}.mp4") for k in range(n)]
    for c in companions:
        pipeline.resolve(c)
    t0 = time.perf_counter()
    serial = [_timed(pipeline, *job) for job in jobs]
    serial_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        threaded = list(pool.map(lambda job: _timed(pipeline, *job), jobs))
    threaded_wall = time.perf_counter() - t0
    audio_s = sum(a for _, a in serial)
    return {
        "requests": n,
        "threads": threads,
        "audio_seconds": round(audio_s, 2),
        "serial_wall_s": round(serial_wall, 2),
        "threaded_wall_s": round(threaded_wall, 2),
        "throughput_ratio_threaded_over_serial": round(serial_wall / threaded_wall, 2),
        "audio_seconds_per_wall_second_threaded": round(audio_s / threaded_wall, 2),
        "request_latency_s_median_serial": round(statistics.median(t for t, _ in serial), 3),
        "request_latency_s_median_threaded": round(statistics.median(t for t, _ in threaded), 3),
    }


def cancellation(pipeline, companion, runs: int, workdir: Path) -> dict:
    """Seconds from ``cancel()`` to the render raising, for renders cancelled mid-way."""
    from avatar.cancel import CancelToken
    from avatar.errors import Cancelled

    delays = []
    for k in range(runs):
        token, raised = CancelToken(), threading.Event()
        stamp: dict[str, float] = {}

        def render(token=token, raised=raised, stamp=stamp, k=k) -> None:
            try:
                pipeline.render_text(
                    companion, " ".join(TEXTS), workdir / f"c{k}.mp4", cancel=token
                )
            except Cancelled:
                stamp["raised"] = time.perf_counter()
                raised.set()

        worker = threading.Thread(target=render)
        worker.start()
        time.sleep(0.5)  # speech, identity and some frames are done
        stamp["cancel"] = time.perf_counter()
        token.cancel("benchmark")
        worker.join()
        if raised.is_set():
            delays.append(stamp["raised"] - stamp["cancel"])
    return {
        "cancel_runs": runs,
        "cancelled": len(delays),
        "cancel_to_raise_ms_median": round(1000 * statistics.median(delays), 1) if delays else None,
        "cancel_to_raise_ms_max": round(1000 * max(delays), 1) if delays else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--cancel-runs", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from avatar.config import compose, pipeline_from_config

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        overrides = [f"renderer.size={args.size}", f"identity.cache_dir={work / 'cache'}"]
        pipeline = pipeline_from_config(compose("render", overrides))
        companions = _companions(work)
        report = {"size": args.size}
        report |= throughput(pipeline, companions, args.requests, args.threads, work)
        report |= cancellation(pipeline, companions[0], args.cancel_runs, work)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
