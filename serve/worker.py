"""The LiveKit avatar worker: ``python -m serve.worker start|dev|connect|console [overrides]``.

livekit-agents' own CLI (``cli.run_app`` over an ``AgentServer``, the 1.8 API; ``--help``
lists the commands and ``--url``/``--api-key``/``--api-secret``, else ``LIVEKIT_URL``,
``LIVEKIT_API_KEY``, ``LIVEKIT_API_SECRET``). Arguments of the form ``key=value`` are Hydra
overrides of ``configs/serve.yaml``, as for ``python -m serve`` (``var_dir=/srv/avatar``,
``realtime.max_sessions=8``); the worker must see the API's database (``AVATAR_DATABASE_URL``
or ``var_dir``) and sizes.

The worker registers under ``tokens.agent_name`` (explicit dispatch: LiveKit sends it only
where ``POST /v1/sessions/{id}/avatar`` or ``/token`` dispatched it). Per job:

- :func:`request_fnc` reads the dispatch metadata (:func:`parse_metadata`, JSON written by
  :mod:`serve.routers.avatar`) and accepts as ``avatar_identity``, named after the companion,
  with the attribute ``lk.publish_on_behalf`` = the voice agent's identity, so the job's token
  is of kind agent and clients show the avatar's tracks as the agent's; malformed metadata is
  rejected with a log line.
- :func:`entrypoint` loads the session and its companion from the store, joins the room and
  runs :class:`AvatarCall`: the companion's generator fed by the agent's speech over a data
  stream (``DataStreamAudioReceiver``), published by ``CompanionAvatarRunner``, and the user's
  microphone forwarded to the generator for listening. A session or companion that is gone
  ends the job with an error line naming it; the job also ends when the voice agent leaves.

Load: :func:`session_load` = active jobs / ``realtime.max_sessions``, with
``load_threshold`` 1.0: the worker reports itself full exactly when it runs ``max_sessions``
calls (in dev mode too), and LiveKit sends further jobs to other workers of the pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from livekit import rtc
from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobProcess, JobRequest, cli
from livekit.agents.voice.avatar import DataStreamAudioReceiver
from livekit.agents.worker import ServerEnvOption

from avatar.companion import CompanionSpec
from avatar.errors import ConfigValueError
from serve.livekit.companion import open_generator, warm_up
from serve.livekit.generator import CompanionVideoGenerator
from serve.livekit.runner import CompanionAvatarRunner
from serve.livekit_tokens import ATTRIBUTE_PUBLISH_ON_BEHALF, avatar_identity
from serve.problems import Problem
from serve.settings import ServeSettings
from serve.state import ServeState
from serve.store import Store

log = logging.getLogger(__name__)

__all__ = [
    "AvatarJob",
    "MetadataError",
    "accept_arguments",
    "build_server",
    "entrypoint",
    "is_user_microphone",
    "main",
    "parse_metadata",
    "pick_user_microphone",
    "request_fnc",
    "session_load",
]

USERDATA_KEY = "serve"
USER_KINDS = (
    rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
    rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
)
"""Participant kinds whose microphone is the user's (a browser or app; a phone caller)."""
LISTEN_SAMPLE_RATE = 16000  # Hz of the user's audio given to the listener (it resamples itself)
_OVERRIDE = re.compile(r"^[+~]{0,2}[A-Za-z_][\w.\[\]-]*=")


class MetadataError(ValueError):
    """A job's dispatch metadata is not what :mod:`serve.routers.avatar` writes."""


@dataclass(frozen=True)
class AvatarJob:
    """What a job renders (its dispatch metadata).

    Attributes:
        session_id, tenant_id, companion_id: the API session and its companion.
        size: frame side in pixels.
        avatar_identity: the avatar's participant identity.
        agent_identity: the voice agent it speaks for (None: a ``/token`` dispatch; then the
            first agent participant is heard and no ``lk.publish_on_behalf`` is set).
        companion_name: the avatar's display name.
    """

    session_id: str
    tenant_id: str
    companion_id: str
    size: int
    avatar_identity: str
    agent_identity: str | None = None
    companion_name: str = ""


def parse_metadata(text: str) -> AvatarJob:
    """The job of a dispatch's metadata (JSON).

    >>> job = parse_metadata('{"session_id": "ses_1", "tenant_id": "ten_1", '
    ...     '"companion_id": "default", "size": 256, "agent_identity": "agent-AJ_1"}')
    >>> (job.avatar_identity, job.agent_identity, job.size)
    ('avatar-worker-ses_1', 'agent-AJ_1', 256)

    Raises:
        MetadataError: not a JSON object, a required key missing or of the wrong type.
    """
    try:
        data = json.loads(text or "")
    except ValueError:
        raise MetadataError(f"metadata is not JSON: {text[:80]!r}") from None
    if not isinstance(data, dict):
        raise MetadataError("metadata is not a JSON object")
    strings = {}
    for key in ("session_id", "tenant_id", "companion_id"):
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise MetadataError(f"metadata: {key!r} must be a non-empty string, got {value!r}")
        strings[key] = value
    size = data.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise MetadataError(f"metadata: 'size' must be a positive integer, got {size!r}")
    optional = {}
    for key in ("avatar_identity", "agent_identity", "companion_name"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise MetadataError(f"metadata: {key!r} must be a non-empty string, got {value!r}")
        optional[key] = value
    return AvatarJob(
        **strings,
        size=size,
        avatar_identity=optional["avatar_identity"] or avatar_identity(strings["session_id"]),
        agent_identity=optional["agent_identity"],
        companion_name=optional["companion_name"] or "",
    )


def accept_arguments(job: AvatarJob) -> dict[str, Any]:
    """Keyword arguments of ``JobRequest.accept`` for ``job``: the avatar's identity and name,
    and ``lk.publish_on_behalf`` naming the voice agent (when known).

    >>> args = accept_arguments(AvatarJob("ses_1", "t", "default", 256, "avatar-w-1", "agent-A"))
    >>> args["identity"], args["name"], args["attributes"]
    ('avatar-w-1', 'default', {'lk.publish_on_behalf': 'agent-A'})
    """
    attributes = {ATTRIBUTE_PUBLISH_ON_BEHALF: job.agent_identity} if job.agent_identity else {}
    return {
        "identity": job.avatar_identity,
        "name": job.companion_name or job.companion_id,
        "attributes": attributes,
    }


def session_load(active_sessions: int, max_sessions: int) -> float:
    """The worker's load in [0, 1]: active sessions over ``realtime.max_sessions``.

    >>> session_load(0, 4), session_load(3, 4), session_load(4, 4), session_load(6, 4)
    (0.0, 0.75, 1.0, 1.0)
    """
    if max_sessions < 1:
        raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
    return min(1.0, max(0, active_sessions) / max_sessions)


class _Participant(Protocol):
    identity: str
    kind: Any
    track_publications: Any


def is_user_microphone(
    participant: _Participant, publication: Any, *, exclude: Collection[str]
) -> bool:
    """Whether ``publication`` is a user's microphone: an audio track of source microphone,
    of a standard (or SIP) participant not in ``exclude`` (the voice agent, the avatar)."""
    return (
        participant.identity not in exclude
        and participant.kind in USER_KINDS
        and publication.kind == rtc.TrackKind.KIND_AUDIO
        and publication.source == rtc.TrackSource.SOURCE_MICROPHONE
    )


def pick_user_microphone(
    participants: Iterable[_Participant], *, exclude: Collection[str]
) -> tuple[Any, Any] | None:
    """The first ``(participant, publication)`` that :func:`is_user_microphone` accepts, in the
    given order (a room's join order), or None."""
    for participant in participants:
        for publication in participant.track_publications.values():
            if is_user_microphone(participant, publication, exclude=exclude):
                return participant, publication
    return None


# -- the job's process -----------------------------------------------------------------------


@dataclass(frozen=True)
class Prewarm:
    """``setup_fnc`` of each job process: settings and a :class:`ServeState` over the API's
    database, from the same Hydra overrides (picklable: it crosses into the job process)."""

    overrides: tuple[str, ...]

    def __call__(self, proc: JobProcess) -> None:
        from serve.config import load

        _one_torch_thread()
        settings, make_pipeline = load(self.overrides)
        state = ServeState(settings, Store(settings.database_url), make_pipeline)
        # warm the default size: its renderer, the mouth model and the behaviour track load
        # here, before a call waits for them
        warm_up(state.pipeline(settings.default_size))
        proc.userdata[USERDATA_KEY] = state


def _one_torch_thread() -> None:
    """A job process runs one call; several run side by side, one core's thread each."""
    try:
        import torch
    except ImportError:  # the learned mouth then fails with its own clear error
        return
    torch.set_num_threads(1)


async def request_fnc(request: JobRequest) -> None:
    """Accept a dispatch as the avatar of its session (:func:`accept_arguments`); reject one
    whose metadata is malformed."""
    try:
        job = parse_metadata(request.job.metadata)
    except MetadataError as exc:
        log.error("rejecting job %s in room %s: %s", request.id, request.room.name, exc)
        await request.reject()
        return
    await request.accept(**accept_arguments(job))


async def entrypoint(ctx: JobContext) -> None:
    """One call: load the companion, join the room, publish the avatar until the job ends."""
    try:
        job = parse_metadata(ctx.job.metadata)
    except MetadataError as exc:
        log.error("job %s: %s; leaving", ctx.job.id, exc)
        ctx.shutdown(reason=str(exc))
        return
    state: ServeState = ctx.proc.userdata[USERDATA_KEY]
    spec = await asyncio.to_thread(_companion, state, job)
    if spec is None:
        ctx.shutdown(reason=f"session {job.session_id} is gone")
        return
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
    try:
        pipeline = await asyncio.to_thread(state.pipeline, job.size)
        gen = await asyncio.to_thread(open_generator, pipeline, spec, state.settings.realtime)
    except Exception:  # e.g. a size this worker does not serve, a companion without a face
        log.exception("session %s: the companion's face could not be opened", job.session_id)
        ctx.shutdown(reason="the companion's face could not be opened")
        return
    call = AvatarCall(ctx.room, gen, job, listen=state.settings.realtime.listen)
    ctx.add_shutdown_callback(call.aclose)

    def on_disconnected(participant: rtc.RemoteParticipant) -> None:
        if job.agent_identity is not None and participant.identity == job.agent_identity:
            ctx.shutdown(reason="the voice agent left")

    ctx.room.on("participant_disconnected", on_disconnected)
    await call.start()
    log.info("avatar of session %s (%s) in room %s", job.session_id, spec.name, ctx.room.name)


def _companion(state: ServeState, job: AvatarJob) -> CompanionSpec | None:
    """The session's companion, or None (logged) when the session or companion is gone."""
    session = state.store.session(job.tenant_id, job.session_id)
    if session is None:
        log.error("session %s does not exist or expired; leaving the room", job.session_id)
        return None
    try:
        spec = state.spec(job.tenant_id, session.companion_id)
    except Problem:
        log.error(
            "companion %s of session %s was deleted; leaving the room",
            session.companion_id,
            job.session_id,
        )
        return None
    state.store.touch_session(session.id, state.settings.session_idle_ttl_s)
    return spec


class AvatarCall:
    """A job's running parts: the runner publishing ``gen``'s frames, fed by the agent's speech
    (data stream from ``job.agent_identity``), and the user's microphone tap.

    Args:
        room: the connected room (subscribing to nothing automatically).
        gen: the companion's generator.
        job: the job (whose speech to take, who is not the user).
        listen: forward the user's microphone to ``gen.push_user_audio``.
    """

    def __init__(
        self, room: rtc.Room, gen: CompanionVideoGenerator, job: AvatarJob, *, listen: bool
    ) -> None:
        self.room, self.gen, self.job, self.listen = room, gen, job, listen
        receiver = DataStreamAudioReceiver(room, sender_identity=job.agent_identity)
        self.runner = CompanionAvatarRunner(
            room, audio_recv=receiver, video_gen=gen, options=gen.options()
        )
        self._tap: asyncio.Task[None] | None = None
        self._tapped: str | None = None  # the identity whose microphone is forwarded
        self._closed = False
        self._running = False  # runner.start() returned (AvatarRunner.aclose needs that)

    @property
    def exclude(self) -> set[str]:
        """Identities that are not the user: the voice agent and the avatar itself."""
        return {i for i in (self.job.agent_identity, self.room.local_participant.identity) if i}

    async def start(self) -> None:
        """Listen for the user's microphone, then start the runner (it waits for the agent)."""
        if self.listen:
            self.listen_to_user()
        await self.runner.start()
        self._running = True

    def listen_to_user(self) -> None:
        """Subscribe to the user's microphone (now or once published) and forward it."""
        self.room.on("track_published", self._on_published)
        self.room.on("track_subscribed", self._on_subscribed)
        self._subscribe_user()

    def _subscribe_user(self) -> None:
        found = pick_user_microphone(self.room.remote_participants.values(), exclude=self.exclude)
        if found is not None and self._tap is None:
            participant, publication = found
            if publication.track is not None and publication.subscribed:
                self._on_subscribed(publication.track, publication, participant)
            else:
                publication.set_subscribed(True)

    def _on_published(self, publication: Any, participant: rtc.RemoteParticipant) -> None:
        if self._tap is None and is_user_microphone(participant, publication, exclude=self.exclude):
            publication.set_subscribed(True)

    def _on_subscribed(self, track: Any, publication: Any, participant: Any) -> None:
        if self._tap is not None or self._closed:
            return
        if not is_user_microphone(participant, publication, exclude=self.exclude):
            return
        self._tapped = participant.identity
        self._tap = asyncio.create_task(self._forward(track), name="user-microphone")
        self._tap.add_done_callback(self._on_tap_done)
        log.info("listening to %s", participant.identity)

    async def _forward(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=LISTEN_SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                self.gen.push_user_audio(event.frame)
        finally:
            await stream.aclose()

    def _on_tap_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("the user's microphone stream failed: %s", task.exception())
        self._tap, self._tapped = None, None
        if not self._closed:  # that user left or unpublished: listen to the next one
            self._subscribe_user()

    async def aclose(self) -> None:
        """Stop listening, stop the runner and the generator, close the renderer stream."""
        self._closed = True
        self.room.off("track_published", self._on_published)
        self.room.off("track_subscribed", self._on_subscribed)
        if self._tap is not None:
            self._tap.cancel()
            await asyncio.gather(self._tap, return_exceptions=True)
        if self._running:
            await self.runner.aclose()
        await self.gen.aclose()
        await asyncio.to_thread(self.gen.session.close)


# -- the server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Load:
    """``load_fnc``: :func:`session_load` of the server's running jobs."""

    max_sessions: int

    def __call__(self, server: AgentServer) -> float:
        return session_load(len(server.active_jobs), self.max_sessions)


def build_server(settings: ServeSettings, overrides: Sequence[str] = ()) -> AgentServer:
    """The avatar worker's ``AgentServer`` (registered as ``settings.agent_name``).

    Job processes build their own settings and :class:`ServeState` from ``overrides``
    (:class:`Prewarm`); the pipeline of a size is built on its first job in that process.
    """
    max_sessions = settings.realtime.max_sessions
    server = AgentServer(
        setup_fnc=Prewarm(tuple(overrides)),
        load_fnc=_Load(max_sessions),
        load_threshold=1.0,  # full at max_sessions calls (load 1.0), dev mode included
        num_idle_processes=ServerEnvOption(dev_default=0, prod_default=max_sessions),
        initialize_process_timeout=120.0,  # settings, database, imports
        job_memory_warn_mb=4096,  # a pipeline (renderer, motion, identity cache) per process
    )
    server.rtc_session(entrypoint, agent_name=settings.agent_name, on_request=request_fnc)
    return server


def split_overrides(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(hydra overrides, livekit CLI arguments)`` of the command line.

    >>> split_overrides(["dev", "var_dir=/srv", "--url", "ws://h:7880/?a=b", "+x.y=1"])
    (['var_dir=/srv', '+x.y=1'], ['dev', '--url', 'ws://h:7880/?a=b'])
    """
    overrides = [a for a in args if _OVERRIDE.match(a)]
    return overrides, [a for a in args if not _OVERRIDE.match(a)]


SERVER_COMMANDS = ("start", "dev", "connect")
"""livekit-agents CLI commands that connect to a LiveKit server."""


def check_server_given(settings: ServeSettings, cli_args: Sequence[str]) -> None:
    """A command that connects to LiveKit needs its URL, key and secret, from the environment
    (``LIVEKIT_URL``, ``LIVEKIT_API_KEY``, ``LIVEKIT_API_SECRET``) or as ``--url``,
    ``--api-key`` and ``--api-secret``.

    Raises:
        ConfigValueError: a server command without them (``--help`` needs none).
    """
    connects = bool(set(cli_args) & set(SERVER_COMMANDS)) and "--help" not in cli_args
    if settings.livekit is not None or not connects:
        return
    given = {a.split("=", 1)[0] for a in cli_args}
    if not {"--url", "--api-key", "--api-secret"} <= given:
        raise ConfigValueError(
            "the avatar worker connects to LiveKit: set LIVEKIT_URL, LIVEKIT_API_KEY and "
            "LIVEKIT_API_SECRET (or pass --url, --api-key and --api-secret), e.g. "
            "`livekit-server --dev` with ws://127.0.0.1:7880, devkey, secret"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run livekit-agents' CLI over the avatar worker; returns the exit code."""
    from avatar.entry_errors import report
    from serve.config import load

    overrides, cli_args = split_overrides(sys.argv[1:] if argv is None else argv)
    try:
        settings, _ = load(overrides)
        check_server_given(settings, cli_args)
    except Exception as exc:  # bad configuration: one error line, exit 2
        return report(exc)
    server = build_server(settings, overrides)
    sys.argv = [sys.argv[0], *cli_args]  # livekit's CLI (typer) reads sys.argv
    try:
        cli.run_app(server)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 0
    return 0


if __name__ == "__main__":
    # Run the copy imported as ``serve.worker``: job processes (forkserver) unpickle
    # Prewarm and entrypoint by module name, which ``__main__`` is not.
    from serve.worker import main as _main

    sys.exit(_main())
