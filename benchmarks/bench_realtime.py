"""Real-time capacity: N concurrent companion streams in one worker process.

    .venv/bin/python benchmarks/bench_realtime.py [--sizes 256 512] [--seconds 10]
                                                  [--streams 1 2 4 6 8] [--deadline-ms 160]
                                                  [--mode process|thread]

Each stream is what the LiveKit worker runs per room: a
:class:`~serve.livekit.generator.CompanionVideoGenerator` over its own streaming session of the
default companion, fed the companion's speech (hibari sentences, back to back) in 20 ms chunks
*as they would arrive in real time* (chunk i at i * 20 ms after the stream's start; streams
start 7 ms apart). Every video frame it yields is converted to I420, the format LiveKit's
encoder takes, by the consumer. Two ways to hold N streams:

- ``--mode process`` (default): one process per stream, each with one torch thread, as a
  livekit-agents worker runs its jobs (``JobExecutorType.PROCESS``, its default);
- ``--mode thread``: all N in one process, sharing one asyncio loop and the thread pool
  (the Python interpreter lock then limits what two cores give).

Per N and size it reports:

- per-frame compute p50 / p95 (ms): session call time over the frames it made (the learned
  mouth, the gate, the mesh-warp render; wall time in the worker thread, so waiting for a core
  counts), plus the I420 conversion;
- frame latency p50 / p95 (ms): from the start of the frame's audio (frame k of an utterance:
  its first chunk's arrival + k / fps) to the frame leaving the generator; it includes the
  frame's own 40 ms, the model's 60 ms look-ahead and the 20 ms chunking (128 ms at best);
- missed deadlines: frames later than ``--deadline-ms`` after their audio's start (they would
  stall the published video or slip out of sync), and idle frames the generator had to insert
  inside an utterance because the speech frame was not ready (counted as missed too);
- first-frame latency (ms, median over utterances): first frame after the first audio chunk;
- fps: speech frames per second of audio, per stream (25 when nothing is dropped);
- CPU per stream: process CPU seconds per stream per second (1.0 = a whole core).

The largest N per size with no missed deadline and 25 fps is printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger("bench_realtime")

TEXTS = [
    "Good morning! I hope you slept well.",
    "Shall we look at your plans for the week?",
    "That sounds like a lovely idea, let's do it.",
    "I'm not sure I follow. Could you say that again?",
]
CHUNK_S = 0.02


@dataclass
class StreamLog:
    """One stream's measurements."""

    latencies: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)
    convert_s: list[float] = field(default_factory=list)
    speech_frames: int = 0
    late: int = 0
    stand_ins: int = 0
    audio_s: float = 0.0
    late_at: list[tuple[int, int]] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def run_stream(gen, utterances, seconds: float, delay: float, deadline: float) -> StreamLog:
    """Feed utterances in real time for ``seconds``; consume and time the frames."""
    from livekit import rtc
    from livekit.agents.voice.avatar import AudioSegmentEnd

    from serve.livekit.frames import audio_frame

    out = StreamLog()
    rate = gen.audio_sample_rate
    step = int(CHUNK_S * rate)
    starts: list[float] = []  # arrival time of each utterance's first chunk
    await asyncio.sleep(delay)

    async def feed() -> None:
        t0 = time.perf_counter()
        clock = 0.0
        while clock < seconds:
            for pcm in utterances:
                starts.append(t0 + clock)
                for i in range(0, len(pcm), step):
                    await asyncio.sleep(max(0.0, t0 + clock + CHUNK_S - time.perf_counter()))
                    clock += CHUNK_S
                    await gen.push_audio(audio_frame(pcm[i : i + step], rate))
                await gen.push_audio(AudioSegmentEnd())
                out.audio_s += len(pcm) / rate
                if clock >= seconds:
                    break
        await asyncio.sleep(0.3)
        await gen.aclose()

    feeder = asyncio.create_task(feed())
    k = 0  # frame index within the utterance
    utterance = 0
    idle_before = 0
    async for item in gen:
        now = time.perf_counter()
        if isinstance(item, AudioSegmentEnd):
            utterance, k = utterance + 1, 0
            continue
        if not isinstance(item, rtc.VideoFrame):
            continue
        t = time.perf_counter()
        item.convert(rtc.VideoBufferType.I420)
        out.convert_s.append(time.perf_counter() - t)
        if gen.stats.idle_frames > idle_before:  # an idle frame
            idle_before = gen.stats.idle_frames
            if k > 0:
                out.stand_ins += 1  # inside an utterance: the speech frame was not ready
            continue
        if utterance >= len(starts):
            continue
        latency = now - (starts[utterance] + k / gen.fps)
        out.latencies.append(latency)
        if k == 0:
            out.firsts.append(now - starts[utterance])
        if latency > deadline:
            out.late += 1
            out.late_at.append((utterance, k, round(latency * 1000)))
        out.speech_frames += 1
        k += 1
    await feeder
    return out


@dataclass
class StreamResult:
    """A stream's log, its generator's per-frame compute and the CPU seconds it took."""

    log: StreamLog
    compute: list[float]
    cpu_s: float
    wall_s: float


async def thread_trial(pipeline, settings, utterances, n, seconds, deadline) -> list[StreamResult]:
    """N streams in this process (one loop, the default thread pool)."""
    from serve.livekit.companion import open_generator

    gens = [open_generator(pipeline, "default", settings, seed=i) for i in range(n)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    logs = await asyncio.gather(
        *(run_stream(g, utterances, seconds, 0.007 * i, deadline) for i, g in enumerate(gens))
    )
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return [
        StreamResult(s, list(g.stats.compute_s), cpu / n, wall)
        for s, g in zip(logs, gens, strict=True)
    ]


def _child(size, seconds, deadline, index, start_at, queue) -> None:
    """One stream in its own process (one torch thread), started at ``start_at``."""
    import torch

    torch.set_num_threads(1)
    pipeline, settings, utterances = setup(size)
    from serve.livekit.companion import open_generator

    gen = open_generator(pipeline, "default", settings, seed=index)
    asyncio.run(_warm_up(gen, utterances[0]))
    time.sleep(max(0.0, start_at - time.time()))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    log_ = asyncio.run(run_stream(gen, utterances, seconds, 0.007 * index, deadline))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    queue.put(StreamResult(log_, list(gen.stats.compute_s), cpu, wall))


async def _warm_up(gen, pcm) -> None:
    """One short utterance through ``gen``, unpaced, and the I420 conversion: the thread pool,
    LiveKit's FFI and the first calls of every stage start before the clock does (a worker's
    job process warms its pipeline the same way before the call)."""
    from livekit import rtc
    from livekit.agents.voice.avatar import AudioSegmentEnd

    from serve.livekit.frames import audio_frame

    await gen.push_audio(audio_frame(pcm[: gen.audio_sample_rate // 2], gen.audio_sample_rate))
    await gen.push_audio(AudioSegmentEnd())
    async for item in gen:
        if isinstance(item, rtc.VideoFrame):
            item.convert(rtc.VideoBufferType.I420)
        if isinstance(item, AudioSegmentEnd):
            break
    gen.stats.compute_s.clear()
    gen.stats.speech_frames = gen.stats.idle_frames = gen.stats.speech_samples = 0


def process_trial(size, n, seconds, deadline) -> list[StreamResult]:
    """N streams in N processes, started together once all are loaded."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 12.0 + 1.5 * n  # time for every child to load and warm up
    procs = [
        ctx.Process(target=_child, args=(size, seconds, deadline, i, start_at, queue))
        for i in range(n)
    ]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join()
    return results


def summary(n: int, results: list[StreamResult]) -> dict:
    logs = [r.log for r in results]
    compute = [c for r in results for c in r.compute]
    convert = [c for s in logs for c in s.convert_s]
    latencies = [x for s in logs for x in s.latencies]
    firsts = [x for s in logs for x in s.firsts]
    fps = min(s.speech_frames / s.audio_s for s in logs)
    late = sum(s.late + s.stand_ins for s in logs)
    return {
        "streams": n,
        "compute_ms_per_frame_p50": round(1000 * pct(compute, 50), 2),
        "compute_ms_per_frame_p95": round(1000 * pct(compute, 95), 2),
        "i420_ms_p50": round(1000 * pct(convert, 50), 2),
        "latency_ms_p50": round(1000 * pct(latencies, 50), 1),
        "latency_ms_p95": round(1000 * pct(latencies, 95), 1),
        "first_frame_ms_median": round(1000 * statistics.median(firsts), 1),
        "missed_deadlines": late,
        "idle_stand_ins": sum(s.stand_ins for s in logs),
        "late_at": [x for s in logs for x in s.late_at][:12],
        "frames": sum(s.speech_frames for s in logs),
        "min_fps": round(fps, 2),
        "cpu_per_stream": round(statistics.mean(r.cpu_s / r.wall_s for r in results), 3),
        "ok": late == 0 and fps >= 24.9,
    }


def setup(size: int):
    """The pipeline at ``size``, the realtime settings and the speech (int16 at their rate)."""
    from avatar.config import compose, pipeline_from_config
    from serve.livekit.companion import RealtimeSettings, warm_up
    from serve.livekit.frames import to_int16

    cfg = compose("simulate", [f"renderer.size={size}"])
    pipeline = pipeline_from_config(cfg)
    settings = RealtimeSettings.from_config(cfg.realtime)
    utterances = []
    for text in TEXTS:
        speech = pipeline.speak(text)
        assert speech.sample_rate == settings.audio_sample_rate, "hibari speaks at 24 kHz"
        utterances.append(to_int16(speech.audio))
    warm_up(pipeline)  # identity, model kernels, behaviour track, as a worker's job process
    return pipeline, settings, utterances


def run(
    size: int,
    counts: list[int],
    seconds: float,
    deadline_ms: float,
    mode: str,
    stop_after_fail: bool = True,
) -> list[dict]:
    deadline = deadline_ms / 1000
    if mode == "thread":
        pipeline, settings, utterances = setup(size)
    rows = []
    for n in counts:
        if mode == "thread":
            results = asyncio.run(
                thread_trial(pipeline, settings, utterances, n, seconds, deadline)
            )
        else:
            results = process_trial(size, n, seconds, deadline)
        row = summary(n, results)
        row.update(size=size, mode=mode)
        log.warning("%s", row)
        rows.append(row)
        if not row["ok"] and stop_after_fail:
            break
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 6, 8, 10])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--deadline-ms", type=float, default=160.0)
    parser.add_argument("--mode", choices=["process", "thread"], default="process")
    parser.add_argument(
        "--keep-going", action="store_true", help="try every N, also after one that failed"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    rows = [
        r
        for size in args.sizes
        for r in run(
            size, args.streams, args.seconds, args.deadline_ms, args.mode, not args.keep_going
        )
    ]
    best = {
        size: max((r["streams"] for r in rows if r["size"] == size and r["ok"]), default=0)
        for size in args.sizes
    }
    sys.stdout.write(json.dumps({"rows": rows, "max_streams_ok": best}, indent=2) + "\n")


if __name__ == "__main__":
    main()
