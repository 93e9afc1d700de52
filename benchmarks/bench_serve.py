"""The HTTP API on loopback: generate latency, throughput, streamed first byte and memory.

Starts ``python -m serve`` (``make serve``'s command) at 512 px in a temporary ``var_dir``,
warms it (the default companion's identity derived, one render done, one streamed), then
sends a short sentence (about 2 s of speech) with a new text on every request, so nothing
comes from the cache, at concurrency 1, 2, 4 and 8. Prints JSON: p50/p95 latency (request
sent to last byte received), requests/s and seconds of speech rendered per second at each
level, with the server's own mean render time (``avatar_render_seconds`` from ``/metrics``,
admitted to written, so with the wait for a worker; the latency beyond it is HTTP, the
database and the route); time to first byte (and to the first media
fragment) of ``?stream=true``; the server's RSS. Per-tenant limits are lifted so that the
render pool, not the limiter, is measured. Nothing is asserted (speed is measured, not
tested).

    .venv/bin/python benchmarks/bench_serve.py            # make bench-serve
    .venv/bin/python benchmarks/bench_serve.py --size 256 --requests 8 --levels 1 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

log = logging.getLogger("bench_serve")

KEY = "bench-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
# about 2 s of speech each (1.98 s with 'garden', voice heart); one noun per request keeps
# every request distinct (no cache hits)
SENTENCE = "I love the {} too."
NOUNS = (
    "garden river window letter concert picture market kitchen island mountain pocket "
    "blanket lantern harbor meadow village ticket jacket basket rocket canyon castle "
    "planet forest bridge candle circus desert engine falcon guitar helmet jungle kettle "
    "ladder magnet napkin orchard parrot puzzle quilt saddle tunnel velvet wagon "
    "anchor bottle carpet dragon feather glacier hammer igloo jigsaw kayak lemon mirror "
    "needle oyster pepper rabbit salmon teapot violin walnut yogurt zebra bucket cactus "
    "button cabin carrot cookie cotton curtain dinner doctor donkey elbow fabric finger "
    "flower goblet hallway honey insect jelly kitten lizard meadows mitten monkey muffin "
    "orange pencil pillow pirate poem ribbon robin sandal seashell shadow spider sugar "
    "sweater tiger tractor turtle valley wallet winter wizard"
).split()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of ``pid``, MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mib": fields["VmRSS"], "peak_rss_mib": fields["VmHWM"]}


def _quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (q in [0, 1])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def _seconds_of_speech(mp4: bytes, workdir: Path) -> float:
    from avatar.media import probe_mp4

    path = workdir / "probe.mp4"
    path.write_bytes(mp4)
    return float(probe_mp4(path)["audio_duration"])


class Texts:
    """A new sentence on every call."""

    def __init__(self) -> None:
        self.k = 0

    def __call__(self) -> str:
        noun = NOUNS[self.k % len(NOUNS)]
        round_ = self.k // len(NOUNS)
        self.k += 1
        return SENTENCE.format(noun if round_ == 0 else f"{noun} number {round_}")


_RENDER = re.compile(r'^avatar_render_seconds_(sum|count)\{kind="text"\} (\S+)$', re.M)


async def _render_totals(client: httpx.AsyncClient) -> dict[str, float]:
    """The server's text-render histogram: {"sum": seconds, "count": renders} (GET /metrics)."""
    text = (await client.get("/metrics")).text
    return {name: float(value) for name, value in _RENDER.findall(text)}


async def _generate(client: httpx.AsyncClient, sid: str, text: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    reply = await client.post(f"/v1/sessions/{sid}/generate", json={"text": text}, headers=AUTH)
    elapsed = time.perf_counter() - t0
    if reply.status_code != 200:
        raise RuntimeError(f"generate answered {reply.status_code}: {reply.text[:300]}")
    return elapsed, reply.content


async def level(
    client: httpx.AsyncClient, sid: str, texts: Texts, concurrency: int, n: int, workdir: Path
) -> dict[str, float]:
    """``n`` distinct requests, ``concurrency`` at a time."""
    queue = [texts() for _ in range(n)]
    latencies: list[float] = []
    videos: list[bytes] = []

    async def worker() -> None:
        while queue:
            elapsed, mp4 = await _generate(client, sid, queue.pop())
            latencies.append(elapsed)
            videos.append(mp4)

    before = await _render_totals(client)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    after = await _render_totals(client)
    speech = [_seconds_of_speech(mp4, workdir) for mp4 in videos]  # off the clock
    renders = after.get("count", 0) - before.get("count", 0)
    render_s = (after.get("sum", 0) - before.get("sum", 0)) / max(renders, 1)
    return {
        "concurrency": concurrency,
        "requests": n,
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(_quantile(latencies, 0.95), 3),
        "server_render_mean_s": round(
            render_s, 3
        ),  # admitted to MP4 written (avatar_render_seconds)
        "requests_per_s": round(n / wall, 2),
        "speech_s_per_s": round(sum(speech) / wall, 2),
        "mean_speech_s": round(statistics.fmean(speech), 2),
    }


async def first_bytes(client: httpx.AsyncClient, sid: str, texts: Texts, n: int) -> dict:
    """Time to the first byte and to the first media fragment (``moof``) of ?stream=true."""
    to_byte: list[float] = []
    to_fragment: list[float] = []
    totals: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        body = b""
        first = fragment = None
        async with client.stream(
            "POST",
            f"/v1/sessions/{sid}/generate",
            params={"stream": "true"},
            json={"text": texts()},
            headers=AUTH,
        ) as reply:
            if reply.status_code != 200:
                raise RuntimeError(f"?stream=true answered {reply.status_code}")
            async for chunk in reply.aiter_raw():
                now = time.perf_counter() - t0
                first = now if first is None else first
                body += chunk
                if fragment is None and b"moof" in body:
                    fragment = now
        totals.append(time.perf_counter() - t0)
        to_byte.append(first if first is not None else totals[-1])
        to_fragment.append(fragment if fragment is not None else totals[-1])
    return {
        "requests": n,
        "first_byte_p50_s": round(statistics.median(to_byte), 3),
        "first_byte_p95_s": round(_quantile(to_byte, 0.95), 3),
        "first_fragment_p50_s": round(statistics.median(to_fragment), 3),
        "whole_response_p50_s": round(statistics.median(totals), 3),
    }


async def run(url: str, pid: int, args: argparse.Namespace, workdir: Path) -> dict:
    texts = Texts()
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        made = await client.post("/v1/sessions", json={"companion_id": "default"}, headers=AUTH)
        made.raise_for_status()
        sid = made.json()["id"]
        t0 = time.perf_counter()
        await _generate(client, sid, texts())  # derives the identity, builds the pipeline
        cold = time.perf_counter() - t0
        await _generate(client, sid, texts())
        schema = (await client.get("/openapi.json")).json()
        params = schema["paths"]["/v1/sessions/{session_id}/generate"]["post"].get("parameters", [])
        streams = any(p["name"] == "stream" for p in params)
        if streams:  # warm the streaming path too
            await first_bytes(client, sid, texts, 1)
        levels = []
        for concurrency in args.levels:
            log.info("concurrency %d: %d requests", concurrency, args.requests)
            levels.append(await level(client, sid, texts, concurrency, args.requests, workdir))
        stream = (
            await first_bytes(client, sid, texts, args.stream_requests)
            if streams
            else "not available"
        )
    return {
        "size": args.size,
        "sentence": SENTENCE.format("<noun>"),
        "first_render_with_identity_s": round(cold, 3),
        "levels": levels,
        "stream": stream,
        "server": _memory(pid),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="frame side, px")
    parser.add_argument("--requests", type=int, default=16, help="requests per level")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--stream-requests", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        workdir = Path(tmp)
        port = _free_port()
        env = {**os.environ, "AVATAR_API_KEYS": f"bench:{KEY}"}
        for name in ("AVATAR_DATABASE_URL", "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
            env.pop(name, None)
        command = [
            sys.executable,
            "-m",
            "serve",
            f"port={port}",
            f"var_dir={workdir / 'var'}",
            f"sizes=[{args.size}]",
            f"default_size={args.size}",
            "limits.tenant_concurrency=64",
            "limits.tenant_rate_per_min=100000",
        ]
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        with (workdir / "server.log").open("wb") as server_log:
            server = subprocess.Popen(command, stdout=server_log, stderr=subprocess.STDOUT, env=env)
        try:
            while True:
                if server.poll() is not None:
                    tail = (workdir / "server.log").read_text()[-2000:]
                    raise SystemExit(f"the server exited:\n{tail}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            started = time.perf_counter() - t0
            report = asyncio.run(run(url, server.pid, args, workdir))
        finally:
            server.terminate()
            server.wait(timeout=60)
    report = {"server_start_s": round(started, 2), **report, "cores": os.cpu_count()}
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
