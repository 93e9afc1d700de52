"""The avatar worker's pure pieces and its job handling without a LiveKit server: the dispatch
metadata, how a job is accepted (identity, name, ``lk.publish_on_behalf``), the load reported
to LiveKit, which participant's microphone is the user's, and a job whose session is gone.

Jobs are livekit's own ``JobRequest`` over a ``livekit.protocol.agent.Job``; only
``JobContext`` (which needs a server's job) and participants (which need a room) are stood in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import JobExecutorType, JobProcess, JobRequest
from livekit.agents.job import JobAcceptArguments
from livekit.protocol import agent, models

from serve import worker
from serve.livekit_tokens import ATTRIBUTE_PUBLISH_ON_BEHALF, avatar_identity
from serve.settings import ServeSettings
from serve.state import ServeState
from tests.serve.conftest import auth

ROUTE_METADATA = {
    "session_id": "ses_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
    "tenant_id": "ten_1",
    "companion_id": "cmp_9",
    "companion_name": "Astra",
    "voice": "heart",
    "emotion": None,
    "size": 256,
    "room": "call-7f3a",
    "agent_identity": "agent-AJ_voice",
    "avatar_identity": "avatar-worker-8d9e0f1a2b3c4d5e",
}
"""What ``POST /v1/sessions/{id}/avatar`` writes (tests/serve/test_avatar_dispatch.py)."""


# -- metadata and acceptance ------------------------------------------------------------------


def test_the_routes_metadata_is_accepted_as_the_avatar_of_the_agent() -> None:
    job = worker.parse_metadata(json.dumps(ROUTE_METADATA))
    assert job == worker.AvatarJob(
        session_id=ROUTE_METADATA["session_id"],
        tenant_id="ten_1",
        companion_id="cmp_9",
        size=256,
        avatar_identity="avatar-worker-8d9e0f1a2b3c4d5e",
        agent_identity="agent-AJ_voice",
        companion_name="Astra",
    )
    assert worker.accept_arguments(job) == {
        "identity": "avatar-worker-8d9e0f1a2b3c4d5e",
        "name": "Astra",
        "attributes": {ATTRIBUTE_PUBLISH_ON_BEHALF: "agent-AJ_voice"},
    }


def test_the_token_routes_metadata_is_accepted_without_an_agent() -> None:
    """``/token`` dispatches with the session only: the avatar's identity is derived, no
    attribute is set, and the first agent participant is heard."""
    plain = {k: ROUTE_METADATA[k] for k in ("session_id", "tenant_id", "companion_id", "size")}
    job = worker.parse_metadata(json.dumps(plain))
    assert job.avatar_identity == avatar_identity(plain["session_id"])
    assert job.agent_identity is None
    assert worker.accept_arguments(job) == {
        "identity": avatar_identity(plain["session_id"]),
        "name": "cmp_9",
        "attributes": {},
    }


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "not JSON"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({**ROUTE_METADATA, "session_id": None}), "'session_id'"),
        (json.dumps({**ROUTE_METADATA, "tenant_id": ""}), "'tenant_id'"),
        (json.dumps({k: v for k, v in ROUTE_METADATA.items() if k != "companion_id"}), "compan"),
        (json.dumps({**ROUTE_METADATA, "size": "256"}), "'size'"),
        (json.dumps({**ROUTE_METADATA, "size": True}), "'size'"),
        (json.dumps({**ROUTE_METADATA, "size": 0}), "'size'"),
        (json.dumps({**ROUTE_METADATA, "agent_identity": 7}), "'agent_identity'"),
        (json.dumps({**ROUTE_METADATA, "avatar_identity": ""}), "'avatar_identity'"),
    ],
)
def test_malformed_metadata_is_refused_naming_the_key(text: str, needle: str) -> None:
    with pytest.raises(worker.MetadataError, match=needle):
        worker.parse_metadata(text)


def _request(metadata: str, answers: list) -> JobRequest:
    """livekit's own JobRequest over a dispatched job; accept/reject land in ``answers``."""

    async def on_accept(args: JobAcceptArguments) -> None:
        answers.append(args)

    async def on_reject(terminate: bool) -> None:
        answers.append(("rejected", terminate))

    job = agent.Job(
        id="AJ_test",
        room=models.Room(name="call-7f3a"),
        metadata=metadata,
        agent_name="companion-avatar",
    )
    return JobRequest(job=job, on_reject=on_reject, on_accept=on_accept)


@pytest.mark.anyio
async def test_request_fnc_accepts_with_identity_name_and_publish_on_behalf() -> None:
    answers: list = []
    await worker.request_fnc(_request(json.dumps(ROUTE_METADATA), answers))
    (accepted,) = answers
    assert isinstance(accepted, JobAcceptArguments)
    assert (accepted.identity, accepted.name) == ("avatar-worker-8d9e0f1a2b3c4d5e", "Astra")
    assert accepted.attributes == {"lk.publish_on_behalf": "agent-AJ_voice"}


@pytest.mark.anyio
async def test_request_fnc_rejects_malformed_metadata_with_a_log_line(caplog) -> None:
    answers: list = []
    with caplog.at_level(logging.ERROR, logger="serve.worker"):
        await worker.request_fnc(_request('{"session_id": "ses_1"}', answers))
    assert answers == [("rejected", True)]
    assert "rejecting job AJ_test in room call-7f3a: metadata: 'tenant_id'" in caplog.text


# -- load ------------------------------------------------------------------------------------


def test_load_is_active_sessions_over_max_sessions() -> None:
    assert [worker.session_load(n, 4) for n in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    with pytest.raises(ValueError, match="max_sessions"):
        worker.session_load(1, 0)

    @dataclass
    class StandInServer:  # stands in for AgentServer: only its running jobs are read
        active_jobs: list = field(default_factory=list)

    load = worker._Load(max_sessions=2)
    assert load(StandInServer([])) == 0.0
    assert load(StandInServer(["job-1"])) == 0.5
    assert load(StandInServer(["job-1", "job-2"])) == 1.0  # == load_threshold: full


def test_the_server_registers_under_the_agent_name_and_is_full_at_max_sessions(make_app) -> None:
    settings: ServeSettings = make_app("realtime.max_sessions=3").state.serve.settings
    server = worker.build_server(settings, ["realtime.max_sessions=3"])
    assert server._agent_name == "companion-avatar" == settings.agent_name
    assert server._load_threshold == 1.0
    assert server.load_fnc == worker._Load(3)
    assert server._request_fnc is worker.request_fnc
    # what crosses into the job processes must pickle by reference to serve.worker
    assert pickle.loads(pickle.dumps(server.setup_fnc)) == worker.Prewarm(
        ("realtime.max_sessions=3",)
    )
    assert pickle.loads(pickle.dumps(worker.entrypoint)) is worker.entrypoint


# -- the user's microphone -------------------------------------------------------------------

STANDARD = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
AGENT = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
MIC = rtc.TrackSource.SOURCE_MICROPHONE


@dataclass
class StandInPublication:  # stands in for rtc.RemoteTrackPublication (needs a room)
    kind: int = rtc.TrackKind.KIND_AUDIO
    source: int = MIC


@dataclass
class StandInParticipant:  # stands in for rtc.RemoteParticipant (needs a room)
    identity: str
    kind: int = STANDARD
    track_publications: dict = field(default_factory=dict)


def _with(identity: str, kind: int = STANDARD, **pubs: StandInPublication) -> StandInParticipant:
    return StandInParticipant(identity, kind, dict(pubs))


def test_the_users_microphone_is_a_standard_participants_mic_track() -> None:
    exclude = {"agent-AJ_voice", "avatar-worker-1"}
    voice = _with("agent-AJ_voice", AGENT, TR_a=StandInPublication())
    avatar = _with("avatar-worker-1", AGENT, TR_b=StandInPublication())
    screen = _with(
        "user-1",
        TR_c=StandInPublication(source=rtc.TrackSource.SOURCE_SCREENSHARE_AUDIO),
        TR_d=StandInPublication(
            kind=rtc.TrackKind.KIND_VIDEO, source=rtc.TrackSource.SOURCE_CAMERA
        ),
    )
    user = _with("user-2", TR_e=StandInPublication())
    caller = _with(
        "sip-caller", rtc.ParticipantKind.PARTICIPANT_KIND_SIP, TR_f=StandInPublication()
    )
    impostor = _with("agent-AJ_voice", STANDARD, TR_g=StandInPublication())  # excluded by name
    egress = _with(
        "egress-1", rtc.ParticipantKind.PARTICIPANT_KIND_EGRESS, TR_h=StandInPublication()
    )

    found = worker.pick_user_microphone(
        [voice, avatar, impostor, egress, screen, user], exclude=exclude
    )
    assert found == (user, user.track_publications["TR_e"])
    assert worker.pick_user_microphone([caller, user], exclude=exclude)[0] is caller
    assert worker.pick_user_microphone([voice, avatar, screen, egress], exclude=exclude) is None
    assert worker.pick_user_microphone([], exclude=exclude) is None
    assert not worker.is_user_microphone(user, user.track_publications["TR_e"], exclude={"user-2"})


def test_hydra_overrides_are_told_from_livekit_arguments() -> None:
    overrides, rest = worker.split_overrides(
        [
            "start",
            "var_dir=/srv/avatar",
            "--url",
            "wss://lk.example.com/?x=1",
            "realtime.listen=false",
        ]
    )
    assert overrides == ["var_dir=/srv/avatar", "realtime.listen=false"]
    assert rest == ["start", "--url", "wss://lk.example.com/?x=1"]


# -- a job in its process, against the API's database ---------------------------------------


class StandInJobContext:
    """Stands in for livekit's JobContext (a real one needs a job from a LiveKit server): the
    job, the process (livekit's own JobProcess) and what the entrypoint asks of it."""

    def __init__(self, metadata: str, state: ServeState) -> None:
        self.job = agent.Job(id="AJ_test", room=models.Room(name="call-7f3a"), metadata=metadata)
        self.proc = JobProcess(
            executor_type=JobExecutorType.PROCESS, user_arguments=None, http_proxy=None
        )
        self.proc.userdata[worker.USERDATA_KEY] = state
        self.shutdowns: list[str] = []
        self.connected = False

    def shutdown(self, reason: str = "") -> None:
        self.shutdowns.append(reason)

    async def connect(self, **_: object) -> None:
        self.connected = True


def _overrides(tmp_path: Path, identity_cache: Path) -> tuple[str, ...]:
    """The overrides of tests/serve/conftest.py's make_app: the same database and sizes."""
    return (
        f"var_dir={tmp_path / 'var'}",
        "sizes=[128,256]",
        "default_size=128",
        f"render_overrides=['identity.cache_dir={identity_cache}']",
    )


@pytest.mark.anyio
async def test_a_job_process_finds_the_session_and_leaves_when_it_is_gone(
    open_app, tmp_path, identity_cache, caplog
):
    async with open_app() as (client, _state):
        made = await client.post(
            "/v1/sessions", json={"companion_id": "default"}, headers=auth("alpha")
        )
        sid = made.json()["id"]
        proc = JobProcess(
            executor_type=JobExecutorType.PROCESS, user_arguments=None, http_proxy=None
        )
        worker.Prewarm(_overrides(tmp_path, identity_cache))(proc)
        state: ServeState = proc.userdata[worker.USERDATA_KEY]
        tenant = state.store.tenant_by_name("alpha").id
        job = worker.AvatarJob(sid, tenant, "default", 128, avatar_identity(sid), "agent-1")
        spec = worker._companion(state, job)
        assert spec is not None and spec.id == "default"
        assert (
            worker._companion(state, worker.AvatarJob(sid, "ten_other", "default", 128, "a"))
            is None
        )

        assert (
            await client.delete(f"/v1/sessions/{sid}", headers=auth("alpha"))
        ).status_code == 204
        metadata = json.dumps({**ROUTE_METADATA, "session_id": sid, "tenant_id": tenant})
        ctx = StandInJobContext(metadata, state)
        with caplog.at_level(logging.ERROR, logger="serve.worker"):
            await worker.entrypoint(ctx)
        assert f"session {sid} does not exist or expired" in caplog.text
        assert ctx.shutdowns == [f"session {sid} is gone"] and not ctx.connected

        bad = StandInJobContext("{}", state)
        await worker.entrypoint(bad)
        assert len(bad.shutdowns) == 1 and not bad.connected


def test_the_worker_cli_answers_help_without_a_server() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "serve.worker", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")},
    )
    assert done.returncode == 0, done.stderr
    for command in ("start", "dev", "connect"):
        assert command in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "serve.worker", "start", "realtime.max_sessions=0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "max_sessions >= 1" in bad.stderr
    no_server = subprocess.run(
        [sys.executable, "-m", "serve.worker", "dev"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")},
    )
    errors = [line for line in no_server.stderr.splitlines() if line.startswith("error: ")]
    assert no_server.returncode == 2 and len(errors) == 1 and "LIVEKIT_URL" in errors[0]


# -- the call's microphone tap, on a real audio track -----------------------------------------


@dataclass
class StandInRemotePublication:  # stands in for rtc.RemoteTrackPublication (needs a room)
    track: object = None
    kind: int = rtc.TrackKind.KIND_AUDIO
    source: int = MIC
    subscribed: bool = False
    requests: list = field(default_factory=list)

    def set_subscribed(self, subscribed: bool) -> None:
        self.requests.append(subscribed)


class StandInCallRoom(rtc.EventEmitter[str]):
    """Stands in for the avatar's connected ``rtc.Room`` (a real one needs a LiveKit server):
    its own identity, the participants present, the events the call listens to."""

    def __init__(self, *participants: StandInParticipant) -> None:
        super().__init__()
        self.name = "call-7f3a"
        self.local_participant = StandInParticipant("avatar-worker-1", AGENT)
        self.remote_participants = {p.identity: p for p in participants}

    def isconnected(self) -> bool:
        return True


class StandInGenerator:
    """Stands in for CompanionVideoGenerator: records the user's audio it is given."""

    def __init__(self) -> None:
        self.heard: list[rtc.AudioFrame] = []
        self.closed = False
        self.session = type("Session", (), {"close": lambda _self: None})()

    def options(self):  # noqa: ANN201
        from livekit.agents.voice.avatar import AvatarOptions

        return AvatarOptions(64, 64, 25.0, 24000, 1)

    def push_user_audio(self, frame: rtc.AudioFrame) -> None:
        self.heard.append(frame)

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.anyio
async def test_the_call_subscribes_to_the_users_microphone_and_forwards_it() -> None:
    voice = _with("agent-AJ_voice", AGENT, TR_a=StandInPublication())
    mic = StandInRemotePublication()
    user = StandInParticipant("user-42", STANDARD, {"TR_mic": mic})
    room = StandInCallRoom(voice, user)
    gen = StandInGenerator()
    job = worker.AvatarJob("ses_1", "ten_1", "default", 64, "avatar-worker-1", "agent-AJ_voice")
    call = worker.AvatarCall(room, gen, job, listen=True)
    assert call.exclude == {"agent-AJ_voice", "avatar-worker-1"}

    call.listen_to_user()
    assert mic.requests == [True]  # the avatar subscribes to the user's microphone only

    # LiveKit delivers the subscribed track: a real local audio track stands for it here
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    room.emit("track_subscribed", track, mic, user)
    tone = (0.3 * 32767 * np.sin(2 * np.pi * 220 * np.arange(480) / 48000)).astype(np.int16)
    for _ in range(30):  # 0.3 s in 10 ms frames
        await source.capture_frame(rtc.AudioFrame(tone.tobytes(), 48000, 1, 480))
    for _ in range(100):
        if len(gen.heard) >= 10:
            break
        await asyncio.sleep(0.02)
    assert len(gen.heard) >= 10
    assert {f.sample_rate for f in gen.heard} == {worker.LISTEN_SAMPLE_RATE}
    assert max(np.abs(np.frombuffer(f.data, np.int16)).max() for f in gen.heard) > 5000

    other = StandInRemotePublication()
    room.emit("track_published", other, _with("user-43"))
    assert other.requests == []  # one user is heard at a time

    await call.aclose()
    assert gen.closed and call._tap is None
    await source.aclose()
