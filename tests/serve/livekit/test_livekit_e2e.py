"""End to end on a real LiveKit server: the API, the avatar worker and a voice agent.

How to run (``make test`` deselects ``network``; without the three variables it is skipped)::

    livekit-server --dev
    LIVEKIT_URL=ws://127.0.0.1:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret \\
        .venv/bin/pytest -m network tests/serve/livekit/test_livekit_e2e.py

It starts the API (``python -m serve``) and the worker (``python -m serve.worker dev``) as
subprocesses over one ``var_dir`` at 128 px, under an agent name of their own; joins a room
as the "voice agent" (a participant of kind agent); starts
:class:`~serve.livekit.plugin.CompanionAvatar`, which opens a session and has the API
dispatch the worker; pushes three seconds of tone bursts (speech-like on/off) through the
``DataStreamAudioOutput`` the plugin installed; and checks that the avatar participant is of
kind agent with ``lk.publish_on_behalf`` naming the voice agent, publishes a video track
whose frames arrive at 128 x 128 and an audio track carrying the speech, and reports the
playback finished at the speech's length.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from livekit import api, rtc
from livekit.agents import AgentSession
from livekit.agents.voice.avatar import DataStreamAudioOutput

from serve.livekit.plugin import CompanionAvatar
from serve.livekit_tokens import ATTRIBUTE_PUBLISH_ON_BEHALF
from tests.serve.conftest import KEYS, LiveServer, stop_processes
from tests.serve.livekit.helpers import tone_bursts

REAL = {k: os.environ.get(k, "") for k in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")}
"""The server's settings, read at import (the app fixtures clear LIVEKIT_* afterwards)."""

pytestmark = [
    pytest.mark.network,
    pytest.mark.anyio,
    pytest.mark.skipif(
        not all(REAL.values()),
        reason="set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET (livekit-server --dev)",
    ),
]

RATE = 24000
SPEECH_S = 3.0
VOICE_AGENT = "agent-e2e-voice"
AGENT_NAME = f"companion-avatar-e2e-{uuid.uuid4().hex[:8]}"  # no other worker takes our jobs
OVERRIDES = ("sizes=[128]", "default_size=128", f"tokens.agent_name={AGENT_NAME}")


def _wait_for_text(log: Path, text: str, deadline_s: float, proc: subprocess.Popen) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    pytest.fail(f"the worker did not log {text!r} within {deadline_s:g} s:\n{tail}")


@pytest.fixture
def worker_process(tmp_path: Path, identity_cache: Path) -> Iterator[Callable[[Path], Path]]:
    """``start(var_dir) -> log``: ``python -m serve.worker dev`` over the API's ``var_dir``,
    registered with LiveKit; stopped (SIGTERM, then kill) after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(var_dir: Path) -> Path:
        log = tmp_path / "worker.log"
        environ = {k: v for k, v in os.environ.items() if k != "AVATAR_DATABASE_URL"}
        environ.update(REAL)
        command = [
            sys.executable,
            "-m",
            "serve.worker",
            "dev",
            f"var_dir={var_dir}",
            f"render_overrides=['identity.cache_dir={identity_cache}']",
            *OVERRIDES,
        ]
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environ)
        started.append(proc)
        _wait_for_text(log, "registered worker", 90.0, proc)
        return log

    yield start
    stop_processes(started, timeout_s=60)


def _speech_frames() -> list[rtc.AudioFrame]:
    """10 ms int16 frames at RATE of SPEECH_S seconds of tone bursts (speech-like on/off)."""
    bursts = [(0.1, 0.7), (0.9, 1.6), (1.8, 2.4), (2.5, 2.9)]
    samples = (tone_bursts(bursts, SPEECH_S, RATE) * 32767).astype(np.int16)
    n = RATE // 100
    return [
        rtc.AudioFrame(samples[i : i + n].tobytes(), RATE, 1, n) for i in range(0, len(samples), n)
    ]


async def _read_video(track: rtc.Track, sizes: list[tuple[int, int]]) -> None:
    async for event in rtc.VideoStream(track):
        sizes.append((event.frame.width, event.frame.height))


async def _read_audio(track: rtc.Track, peaks: list[int]) -> None:
    async for event in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
        peaks.append(int(np.abs(np.frombuffer(event.frame.data, np.int16)).max(initial=0)))


async def test_the_avatar_joins_publishes_for_the_agent_and_speaks(
    serve_process: Callable[..., LiveServer], worker_process: Callable[[Path], Path]
) -> None:
    server = serve_process(*OVERRIDES, env=REAL)
    worker_log = worker_process(server.var_dir)
    room_name = f"e2e-{uuid.uuid4().hex[:10]}"
    token = (
        api.AccessToken(REAL["LIVEKIT_API_KEY"], REAL["LIVEKIT_API_SECRET"])
        .with_identity(VOICE_AGENT)
        .with_kind("agent")
        .with_grants(
            api.VideoGrants(
                room_join=True,
                room=room_name,
                can_publish=True,
                can_subscribe=True,
                can_publish_data=True,
                agent=True,
            )
        )
        .to_jwt()
    )
    room = rtc.Room()
    tracks: dict[str, asyncio.Future[rtc.Track]] = {
        "video": asyncio.get_running_loop().create_future(),
        "audio": asyncio.get_running_loop().create_future(),
    }

    @room.on("track_subscribed")
    def _on_track(track: rtc.Track, _pub: object, participant: rtc.RemoteParticipant) -> None:
        kind = "video" if track.kind == rtc.TrackKind.KIND_VIDEO else "audio"
        if participant.identity.startswith("avatar-worker-") and not tracks[kind].done():
            tracks[kind].set_result(track)

    await room.connect(REAL["LIVEKIT_URL"], token, options=rtc.RoomOptions(auto_subscribe=True))
    session = AgentSession()
    avatar = CompanionAvatar(api_url=server.url, api_key=KEYS["alpha"], size=128)
    readers: list[asyncio.Task[None]] = []
    try:
        await avatar.start(session, room)
        try:
            await avatar.wait_for_join(timeout=120)
        except TimeoutError:
            pytest.fail("the avatar did not publish video:\n" + worker_log.read_text()[-3000:])

        avatar_participant = room.remote_participants[avatar.avatar_identity]
        assert avatar_participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        assert avatar_participant.attributes.get(ATTRIBUTE_PUBLISH_ON_BEHALF) == VOICE_AGENT
        kinds = {pub.kind for pub in avatar_participant.track_publications.values()}
        assert kinds == {rtc.TrackKind.KIND_VIDEO, rtc.TrackKind.KIND_AUDIO}

        sizes: list[tuple[int, int]] = []
        peaks: list[int] = []
        video = await asyncio.wait_for(tracks["video"], 30)
        audio = await asyncio.wait_for(tracks["audio"], 30)
        readers = [
            asyncio.create_task(_read_video(video, sizes)),
            asyncio.create_task(_read_audio(audio, peaks)),
        ]

        output = session.output.audio
        assert isinstance(output, DataStreamAudioOutput)
        for frame in _speech_frames():
            await output.capture_frame(frame)
        output.flush()
        finished = await asyncio.wait_for(output.wait_for_playout(), 60)
        await asyncio.sleep(0.5)  # the last frames on their way

        assert not finished.interrupted
        assert finished.playback_position == pytest.approx(SPEECH_S, abs=0.1)
        assert len(sizes) >= 25 * SPEECH_S * 0.8, f"{len(sizes)} video frames"
        assert set(sizes) == {(128, 128)}
        assert max(peaks) > 5000, "the speech was not in the avatar's audio"
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await avatar.aclose()
        await room.disconnect()
        async with api.LiveKitAPI(
            REAL["LIVEKIT_URL"], REAL["LIVEKIT_API_KEY"], REAL["LIVEKIT_API_SECRET"]
        ) as lk:
            await lk.room.delete_room(api.DeleteRoomRequest(room=room_name))
