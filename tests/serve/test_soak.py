"""A bounded soak of the real server on loopback (``slow``): 1,000 generate requests at
concurrency 8, two tenants, a few distinct short texts (most answered from the ETag cache),
some cache-busting texts and some ``?stream=true``.

No 5xx; the server's RSS grows under 10 % from the 100th request to the last; afterwards
``var_dir`` holds exactly the expected cached MP4s (one per distinct text and session) and no
partial or temporary file.

    .venv/bin/python -m pytest -m slow tests/serve/test_soak.py -s
"""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import auth

pytestmark = pytest.mark.slow

REQUESTS = 1000
CONCURRENCY = 8
COMMON = [
    "Hello there.",
    "How was your day?",
    "I am right here.",
    "That sounds lovely.",
    "Tell me more.",
]
BUSTING = (0, 11)  # requests k with k % 20 in BUSTING say something new (50 per tenant)
STREAM_EVERY = 7  # every 7th asks for ?stream=true


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid``, KiB (/proc/<pid>/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def plan() -> list[tuple[str, str, bool]]:
    """(tenant, text, stream) of each request, in order."""
    out = []
    for k in range(REQUESTS):
        tenant = ("alpha", "beta")[k % 2]
        text = f"Here is new thing number {k}." if k % 20 in BUSTING else COMMON[k % 5]
        out.append((tenant, text, k % STREAM_EVERY == 3))
    return out


async def soak(url: str, pid: int) -> tuple[collections.Counter[int], int, int, dict[str, str]]:
    """Run the plan; returns (status counts, RSS after request 100, RSS at the end, sessions)."""
    statuses: collections.Counter[int] = collections.Counter()
    rss_at_100 = 0
    done = 0
    queue: asyncio.Queue[tuple[str, str, bool]] = asyncio.Queue()
    for item in plan():
        queue.put_nowait(item)
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        sessions = {}
        for tenant in ("alpha", "beta"):
            made = await client.post(
                "/v1/sessions", json={"companion_id": "default"}, headers=auth(tenant)
            )
            assert made.status_code == 201, made.text
            sessions[tenant] = made.json()["id"]

        async def worker() -> None:
            nonlocal done, rss_at_100
            while not queue.empty():
                tenant, text, stream = queue.get_nowait()
                reply = await client.post(
                    f"/v1/sessions/{sessions[tenant]}/generate",
                    params={"stream": "true"} if stream else None,
                    json={"text": text},
                    headers=auth(tenant),
                )
                statuses[reply.status_code] += 1
                if reply.status_code == 200:
                    assert reply.headers["content-type"] == "video/mp4" and reply.content
                done += 1
                if done == 100:
                    rss_at_100 = rss_kib(pid)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return statuses, rss_at_100, rss_kib(pid), sessions


def test_a_thousand_generates_at_concurrency_8(serve_process):
    server = serve_process(
        "sizes=[128]",
        "default_size=128",
        "limits.tenant_rate_per_min=100000",  # the soak measures the service, not the limiter
        "limits.tenant_concurrency=16",
    )
    assert server.pid is not None
    statuses, rss_100, rss_end, sessions = asyncio.run(soak(server.url, server.pid))
    growth = rss_end / rss_100 - 1
    print(
        f"soak: {dict(statuses)}; RSS {rss_100 / 1024:.0f} MiB after 100 requests, "
        f"{rss_end / 1024:.0f} MiB after {REQUESTS} ({growth:+.1%})"
    )
    assert sum(statuses.values()) == REQUESTS
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses[200] == REQUESTS, statuses  # nothing refused at this load
    assert growth < 0.10

    files = sorted(p.relative_to(server.var_dir) for p in server.var_dir.rglob("*") if p.is_file())
    mp4s = [f for f in files if f.suffix == ".mp4"]
    per_session = collections.Counter(f.parent.name for f in mp4s)
    texts = {tenant: {text for t, text, _ in plan() if t == tenant} for tenant in sessions}
    assert per_session == {sessions[t]: len(texts[t]) for t in sessions}, per_session
    assert all(f.parts[0] == "outputs" for f in mp4s)
    others = [f for f in files if f.suffix != ".mp4"]
    assert {f.name for f in others} <= {"avatar.db", "avatar.db-wal", "avatar.db-shm"}, others
    assert not [f for f in files if f.name.startswith(".") or f.suffix in (".part", ".tmp")]
