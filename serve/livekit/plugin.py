"""The companion's face for a livekit-agents voice agent, as an ``AvatarSession`` plugin.

Two lines in the agent's entrypoint, after ``AgentSession.start``::

    avatar = CompanionAvatar(api_url=API, api_key=KEY, companion_id="cmp_...")
    await avatar.start(session, room=ctx.room)

:class:`CompanionAvatar` (remote, the default): opens an API session (``POST /v1/sessions``,
unless ``session_id`` is given), asks the API to dispatch the avatar worker into the agent's
room (``POST /v1/sessions/{id}/avatar`` with the room's name and the agent's identity), and
sends the agent's speech to the avatar over a LiveKit data stream (``DataStreamAudioOutput``
at the ``audio_sample_rate`` the API answers, once the avatar publishes its video). The
avatar publishes audio and video together on behalf of the agent (``lk.publish_on_behalf``).

:class:`LocalCompanionAvatar` (``CompanionAvatar.in_process(pipeline, companion)``): no API
and no second worker; the agent's own job renders the face and publishes it (generator,
``QueueAudioOutput`` and runner in process), for a single-machine deployment or a notebook.
It does not listen to the user (the remote avatar does).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
from livekit import rtc
from livekit.agents import AgentSession, get_job_context
from livekit.agents.voice.avatar import AvatarSession, DataStreamAudioOutput, QueueAudioOutput

if TYPE_CHECKING:
    from avatar.companion import CompanionSpec
    from avatar.pipeline import Pipeline
    from serve.livekit.generator import CompanionVideoGenerator
    from serve.livekit.runner import CompanionAvatarRunner
    from serve.livekit.settings import RealtimeSettings

log = logging.getLogger(__name__)

__all__ = ["CompanionAvatar", "CompanionAvatarError", "LocalCompanionAvatar"]

PROVIDER = "companion-avatar"


class CompanionAvatarError(RuntimeError):
    """The API refused or did not answer.

    Attributes:
        status: the HTTP status (None: no answer).
        detail: the problem+json ``detail`` (or the body, or the connection error).
    """

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status, self.detail = status, detail


class CompanionAvatar(AvatarSession):
    """The companion's avatar, rendered by the avatar worker and published into the room.

    Args:
        api_url: the avatar API (``http://127.0.0.1:8000``).
        api_key: the tenant's API key (sent as ``Authorization: Bearer``).
        companion_id: the companion to show (``default`` or a ``cmp_...`` id).
        session_id: an existing API session to use (then companion_id, size and voice are the
            session's); None opens a new one.
        size: frame side in pixels (one of the API's sizes; None: its default).
        voice: the session's voice (None: the companion's); real time speaks with the
            agent's TTS, so this matters only for MP4s made in the same session.
        timeout_s: per API request, seconds.
    """

    def __init__(
        self,
        *,
        api_url: str,
        api_key: str,
        companion_id: str = "default",
        session_id: str | None = None,
        size: int | None = None,
        voice: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        super().__init__()
        self._api_url = api_url.rstrip("/")
        self._api_key = api_key
        self._companion_id = companion_id
        self._session_id = session_id
        self._size = size
        self._voice = voice
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._avatar_identity: str | None = None
        self.dispatch: dict[str, Any] | None = None
        """The API's answer to the avatar request (dispatch_id, avatar_identity, room, rate)."""

    @classmethod
    def in_process(
        cls,
        pipeline: Pipeline,
        companion: CompanionSpec | str,
        settings: RealtimeSettings | None = None,
        *,
        seed: int | None = None,
    ) -> LocalCompanionAvatar:
        """The avatar rendered inside the agent's own job (:class:`LocalCompanionAvatar`)."""
        return LocalCompanionAvatar(pipeline, companion, settings, seed=seed)

    @property
    def avatar_identity(self) -> str:
        """The avatar's participant identity (known once :meth:`start` reached the API)."""
        if self._avatar_identity is None:
            raise RuntimeError("the avatar's identity is known once start() reached the API")
        return self._avatar_identity

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def session_id(self) -> str | None:
        """The API session (None until :meth:`start` opened one)."""
        return self._session_id

    async def start(self, agent_session: AgentSession, room: rtc.Room) -> None:
        """Open the session, dispatch the avatar into ``room`` and route the agent's speech to it.

        Raises:
            CompanionAvatarError: the API refused (status and problem detail) or is away.
        """
        room_name, agent_identity = _agent_room(room)
        headers = {"Authorization": f"Bearer {self._api_key}"}
        async with aiohttp.ClientSession(headers=headers, timeout=self._timeout) as http:
            if self._session_id is None:
                made = await self._post(http, "/v1/sessions", self._session_body())
                self._session_id = str(made["id"])
            self.dispatch = await self._post(
                http,
                f"/v1/sessions/{self._session_id}/avatar",
                {"room": room_name, "agent_identity": agent_identity},
            )
        self._avatar_identity = str(self.dispatch["avatar_identity"])
        # the base class watches for the avatar's video at once: the identity is known by now
        await super().start(agent_session, room)
        agent_session.output.replace_audio_tail(
            DataStreamAudioOutput(
                room,
                destination_identity=self._avatar_identity,
                sample_rate=int(self.dispatch["audio_sample_rate"]),
                wait_remote_track=rtc.TrackKind.KIND_VIDEO,
                wait_playback_start=True,  # the runner reports when playback really starts
            )
        )
        log.info(
            "avatar %s of session %s dispatched into %s",
            self._avatar_identity,
            self._session_id,
            room_name,
        )

    def _session_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"companion_id": self._companion_id}
        if self._voice is not None:
            body["voice"] = self._voice
        if self._size is not None:
            body["renderer"] = {"size": self._size}
        return body

    async def _post(
        self, http: aiohttp.ClientSession, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """The JSON answer of ``POST path``; :class:`CompanionAvatarError` on any failure."""
        url = f"{self._api_url}{path}"
        try:
            async with http.post(url, json=body) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise CompanionAvatarError(
                f"POST {url}: the avatar API did not answer ({reason})", detail=reason
            ) from exc
        if status >= 400:
            detail = _problem_detail(text)
            raise CompanionAvatarError(
                f"POST {url} answered {status}: {detail}", status=status, detail=detail
            )
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise CompanionAvatarError(f"POST {url}: not a JSON object", status=status)
        return answer


def _agent_room(room: rtc.Room) -> tuple[str, str]:
    """``(room name, the voice agent's identity)``: the connected room's, else the job's (its
    dispatch and token: the avatar may start before the session connects the room)."""
    if room.isconnected():
        return room.name, room.local_participant.identity
    job = get_job_context(required=False)
    if job is not None and job.job.room.name and job.local_participant_identity:
        return job.job.room.name, job.local_participant_identity
    raise RuntimeError(
        "start the avatar inside a job, or connect the room (await ctx.connect()) first"
    )


def _problem_detail(text: str) -> str:
    """The ``detail`` of a problem+json body, else the body's start."""
    try:
        body = json.loads(text)
    except ValueError:
        return text[:300] or "(empty body)"
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"]
    return text[:300]


class LocalCompanionAvatar(AvatarSession):
    """The companion's avatar rendered and published by the agent's own job.

    The agent's speech goes into a ``QueueAudioOutput``; ``CompanionAvatarRunner`` publishes
    the generator's frames with that audio from the agent's participant, so the avatar's
    identity is the agent's.

    Args:
        pipeline: the shared render pipeline (its renderer's size is the video's).
        companion: the companion (spec or config name).
        settings: the ``realtime`` settings (None: the shipped ones,
            ``configs/realtime/default.yaml``).
        seed: the listener's seed (idle and listening behaviour).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        companion: CompanionSpec | str,
        settings: RealtimeSettings | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self._pipeline, self._companion, self._seed = pipeline, companion, seed
        self._settings = settings
        self.generator: CompanionVideoGenerator | None = None
        self.runner: CompanionAvatarRunner | None = None

    @property
    def avatar_identity(self) -> str:
        """The agent's own identity (it publishes the avatar)."""
        if self._room is None:
            raise RuntimeError("the avatar's identity is known once start() was called")
        return self._room.local_participant.identity

    @property
    def provider(self) -> str:
        return PROVIDER

    async def start(self, agent_session: AgentSession, room: rtc.Room) -> None:
        """Open the generator and the runner in this job; the agent's speech goes to them."""
        from serve.livekit.companion import open_generator
        from serve.livekit.runner import CompanionAvatarRunner
        from serve.livekit.settings import RealtimeSettings

        settings = self._settings or RealtimeSettings.default()
        await super().start(agent_session, room)
        self.generator = await asyncio.to_thread(
            open_generator, self._pipeline, self._companion, settings, seed=self._seed
        )
        audio = QueueAudioOutput(sample_rate=settings.audio_sample_rate, wait_playback_start=True)
        self.runner = CompanionAvatarRunner(
            room, audio_recv=audio, video_gen=self.generator, options=self.generator.options()
        )
        await self.runner.start()
        agent_session.output.replace_audio_tail(audio)

    async def aclose(self) -> None:
        """Stop the runner and the generator; the agent stays in the room."""
        if self.runner is not None:
            await self.runner.aclose()
            self.runner = None
        if self.generator is not None:
            await self.generator.aclose()
            await asyncio.to_thread(self.generator.session.close)
            self.generator = None
        # the base class would remove ``avatar_identity`` from the room: here that is the agent
        room, self._room = self._room, None
        if room is not None:
            room.off("connection_state_changed", self._on_connection_state_changed)
        await super().aclose()
