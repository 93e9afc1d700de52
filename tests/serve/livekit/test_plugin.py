"""The voice agent's side: :class:`~serve.livekit.plugin.CompanionAvatar` against the real API
on loopback (uvicorn) with a fake LiveKit dispatch API, and the in-process avatar publishing
into a local room.

The agent's ``AgentSession`` is livekit-agents' own; the agent's room is stood in
(:class:`StandInRoom`: a real ``rtc.Room`` needs a LiveKit server), as is the avatar's room in
process (:class:`~serve.livekit.local_room.LocalRoom`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from livekit import rtc
from livekit.agents import AgentSession, JobRequest
from livekit.agents.job import JobAcceptArguments
from livekit.agents.voice.avatar import DataStreamAudioOutput, QueueAudioOutput
from livekit.protocol import agent, models

from serve import worker
from serve.livekit.plugin import CompanionAvatar, CompanionAvatarError, LocalCompanionAvatar
from serve.livekit_tokens import ATTRIBUTE_PUBLISH_ON_BEHALF, avatar_identity
from serve.settings import LiveKitSettings
from tests.serve.conftest import KEYS, auth
from tests.serve.fake_livekit import FakeLiveKit

pytestmark = pytest.mark.anyio

KEY, SECRET = "APItestkey", "test-secret-0123456789-0123456789-0123"
AGENT_IDENTITY = "agent-AJ_voice"


class StandInLocalParticipant:
    """Stands in for the agent's ``rtc.LocalParticipant``: its identity and the RPC methods
    ``DataStreamAudioOutput`` registers (recorded in ``_rpc_handlers``, as the real one)."""

    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.kind = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        self.track_publications: dict = {}
        self._rpc_handlers: dict = {}

    def register_rpc_method(self, name: str, handler: object) -> None:
        self._rpc_handlers[name] = handler


class StandInRoom(rtc.EventEmitter[str]):
    """Stands in for the voice agent's connected ``rtc.Room`` (a real one needs a LiveKit
    server): name, local participant, no one else yet, the event emitter."""

    def __init__(self, name: str, identity: str = AGENT_IDENTITY) -> None:
        super().__init__()
        self.name = name
        self.local_participant = StandInLocalParticipant(identity)
        self.remote_participants: dict = {}

    def isconnected(self) -> bool:
        return True


@pytest.fixture
def fake_livekit():
    with FakeLiveKit(KEY, SECRET) as fake:
        yield fake


@pytest.fixture
def api(live_server, fake_livekit) -> str:
    """The API on loopback, dispatching through the fake LiveKit; its URL."""
    return live_server(livekit=LiveKitSettings(fake_livekit.url, KEY, SECRET)).url


async def _close(avatar: CompanionAvatar, session: AgentSession) -> None:
    """Close the avatar and stop the output's wait for the avatar (no one joins here)."""
    output = session.output.audio
    await avatar.aclose()
    if isinstance(output, DataStreamAudioOutput) and output._start_atask is not None:
        output._start_atask.cancel()
        await asyncio.gather(output._start_atask, return_exceptions=True)


async def test_the_plugin_opens_a_session_dispatches_and_routes_speech_to_the_avatar(
    api, fake_livekit
):
    session = AgentSession()
    room = StandInRoom("call-7f3a")
    avatar = CompanionAvatar(api_url=api + "/", api_key=KEYS["alpha"], size=256)
    with pytest.raises(RuntimeError, match="known once start"):
        _ = avatar.avatar_identity
    await avatar.start(session, room)
    try:
        sid = avatar.session_id
        assert sid is not None and avatar.avatar_identity == avatar_identity(sid)
        async with httpx.AsyncClient(base_url=api) as client:
            opened = (await client.get(f"/v1/sessions/{sid}", headers=auth("alpha"))).json()
        assert (opened["companion_id"], opened["size"]) == ("default", 256)
        assert avatar.dispatch == {
            "dispatch_id": "AD_0001",
            "avatar_identity": avatar.avatar_identity,
            "room": "call-7f3a",
            "audio_sample_rate": 24000,
        }

        # the agent's speech now goes to the avatar over a data stream, once it publishes video
        output = session.output.audio
        assert isinstance(output, DataStreamAudioOutput)
        assert output._destination_identity == avatar.avatar_identity
        assert output.sample_rate == 24000
        assert output._wait_remote_track == rtc.TrackKind.KIND_VIDEO
        await asyncio.sleep(0)  # the room is connected: the output registers its RPC methods
        handlers = room.local_participant._rpc_handlers
        assert {"lk.playback_finished", "lk.playback_started"} <= set(handlers)

        # the dispatch: the agent's room, the worker's name, the metadata the worker reads
        created = [r for r in fake_livekit.requests if r.method == "CreateDispatch"]
        assert len(created) == 1
        assert created[0].body["room"] == "call-7f3a"
        assert created[0].body["agent_name"] == "companion-avatar"
        metadata = created[0].body["metadata"]
        job = worker.parse_metadata(metadata)
        assert (job.session_id, job.agent_identity) == (sid, AGENT_IDENTITY)
        assert json.loads(metadata)["room"] == "call-7f3a"

        # and the worker accepts it as the avatar, publishing on behalf of the agent
        answers: list = []

        async def on_accept(args: JobAcceptArguments) -> None:
            answers.append(args)

        async def on_reject(terminate: bool) -> None:
            answers.append("rejected")

        dispatched = agent.Job(
            id="AJ_avatar",
            room=models.Room(name="call-7f3a"),
            metadata=metadata,
            agent_name=created[0].body["agent_name"],
        )
        await worker.request_fnc(
            JobRequest(job=dispatched, on_reject=on_reject, on_accept=on_accept)
        )
        (accepted,) = answers
        assert accepted.identity == avatar.avatar_identity
        assert accepted.name == "Astra"  # the default companion's name
        assert accepted.attributes == {ATTRIBUTE_PUBLISH_ON_BEHALF: AGENT_IDENTITY}
    finally:
        await _close(avatar, session)


async def test_a_given_session_is_reused(api, fake_livekit):
    async with httpx.AsyncClient(base_url=api) as client:
        made = await client.post(
            "/v1/sessions",
            json={"companion_id": "default", "renderer": {"size": 128}},
            headers=auth("beta"),
        )
    sid = made.json()["id"]
    session = AgentSession()
    avatar = CompanionAvatar(api_url=api, api_key=KEYS["beta"], session_id=sid, size=256)
    await avatar.start(session, StandInRoom("call-beta", "agent-AJ_beta"))
    try:
        assert avatar.session_id == sid and avatar.avatar_identity == avatar_identity(sid)
        (created,) = [r for r in fake_livekit.requests if r.method == "CreateDispatch"]
        job = worker.parse_metadata(created.body["metadata"])
        assert (job.session_id, job.size, job.agent_identity) == (sid, 128, "agent-AJ_beta")
    finally:
        await _close(avatar, session)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_api_errors_name_the_status_and_the_problem(live_server, api):
    plain = live_server().url  # no LiveKit settings
    cases = [
        (dict(api_url=api, api_key=KEYS["alpha"], companion_id="cmp_nope"), 404, "no companion"),
        (dict(api_url=api, api_key="wrong-key-0123456789"), 401, "unknown or revoked API key"),
        (dict(api_url=api, api_key=KEYS["alpha"], size=999), 422, "renderer.size"),
        (dict(api_url=plain, api_key=KEYS["alpha"]), 503, "set LIVEKIT_URL"),
        (
            dict(api_url=f"http://127.0.0.1:{_closed_port()}", api_key="k" * 12),
            None,
            "Cannot connect",
        ),
    ]
    for kwargs, status, needle in cases:
        session = AgentSession()
        avatar = CompanionAvatar(**kwargs)
        with pytest.raises(CompanionAvatarError) as raised:
            await avatar.start(session, StandInRoom("call-1"))
        assert raised.value.status == status, raised.value
        assert needle in raised.value.detail and needle in str(raised.value)
        if status is not None:
            assert f"answered {status}" in str(raised.value)
        assert session.output.audio is None  # nothing installed
        assert kwargs["api_key"] not in str(raised.value)


async def test_the_room_must_be_connected_first():
    class Unconnected(StandInRoom):
        def isconnected(self) -> bool:
            return False

    avatar = CompanionAvatar(api_url="http://127.0.0.1:9", api_key="k" * 12)
    with pytest.raises(RuntimeError, match="connect the room"):
        await avatar.start(AgentSession(), Unconnected("call-1"))


# -- in process ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_pipeline(render_config_overrides):
    """The default pipeline's stages with FakeRenderer (64 px) standing in for the face."""
    pytest.importorskip("torch")
    from avatar.config import compose, pipeline_from_config
    from tests.fakes import FakeRenderer, pipeline_with

    cfg = compose("render", [*render_config_overrides, "renderer.size=128"])
    return pipeline_with(pipeline_from_config(cfg), FakeRenderer(size=64))


def _tone_frames(seconds: float, rate: int = 24000) -> list[rtc.AudioFrame]:
    """10 ms int16 frames of a 220 Hz tone at -10 dBFS."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * 32767 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    n = rate // 100
    return [
        rtc.AudioFrame(samples[i : i + n].tobytes(), rate, 1, n) for i in range(0, len(samples), n)
    ]


async def test_in_process_the_agent_publishes_the_face_with_its_speech(fake_pipeline):
    from serve.livekit.local_room import LocalRoom
    from serve.livekit.settings import RealtimeSettings

    settings = RealtimeSettings(
        audio_sample_rate=24000, idle_lead_s=0.04, listen=False, max_sessions=1
    )
    room = LocalRoom(audio_sample_rate=24000, identity="agent-AJ_local")
    session = AgentSession()
    avatar = CompanionAvatar.in_process(fake_pipeline, "default", settings)
    assert isinstance(avatar, LocalCompanionAvatar)
    await avatar.start(session, room)
    try:
        assert avatar.avatar_identity == "agent-AJ_local"  # the agent publishes the face
        output = session.output.audio
        assert isinstance(output, QueueAudioOutput) and output.sample_rate == 24000
        for frame in _tone_frames(0.6):
            await output.capture_frame(frame)
        output.flush()
        finished = await asyncio.wait_for(output.wait_for_playout(), 10)
        assert not finished.interrupted
        assert finished.playback_position == pytest.approx(0.6, abs=0.05)
        stats = avatar.generator.stats
        assert stats.segments == 1 and stats.speech_frames == 15  # 0.6 s at 25 fps
        await asyncio.sleep(0.1)
        assert len(room.recording.video) >= 15 and room.recording.audio
        loudest = np.abs(room.recording.audio_samples().astype(np.int32)).max()
        assert loudest > 5000  # the tone was published, not only idle silence
    finally:
        await avatar.aclose()
        await room.aclose()
    assert avatar.runner is None and avatar.generator is None


# -- the example voice agent -----------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "voice_agent.py"


def test_the_example_voice_agent_imports_and_answers_help(monkeypatch) -> None:
    spec = importlib.util.spec_from_file_location("voice_agent_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert "CompanionAvatar(" in EXAMPLE.read_text()  # the face, in two lines

    monkeypatch.setenv("AGENT_STT", "deepgram/nova-3")  # a LiveKit Inference model string
    monkeypatch.setenv("AGENT_LLM", "collections:OrderedDict")  # module:factory, called
    monkeypatch.setenv("AGENT_TTS", "cartesia/sonic-2:voice-id")
    monkeypatch.delenv("AGENT_VAD", raising=False)
    chosen = example.session_components()
    assert chosen == {"stt": "deepgram/nova-3", "llm": {}, "tts": "cartesia/sonic-2:voice-id"}
    assert type(chosen["llm"]).__name__ == "OrderedDict"

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "AGENT_"))}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
    )
    assert done.returncode == 0, done.stderr
    assert "start" in done.stdout and "dev" in done.stdout
