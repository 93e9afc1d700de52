"""A livekit-agents voice agent that shows the companion's face (CompanionAvatar, two lines).

    python examples/voice_agent.py dev                  # or: start, connect --room NAME, --help

The agent's STT, LLM and TTS come from the environment, so any provider works:

- ``AGENT_STT``, ``AGENT_LLM``, ``AGENT_TTS``: a LiveKit Inference model string
  (``deepgram/nova-3``, ``openai/gpt-4.1-mini``, ``cartesia/sonic-2``), or ``module:factory``
  of an installed plugin, called without arguments (the plugin reads its own key from the
  environment), e.g. ``livekit.plugins.openai:LLM``. ``AGENT_LLM`` may be a realtime model
  (``livekit.plugins.openai.realtime:RealtimeModel``) and then STT and TTS may be left unset.
- ``AGENT_VAD`` (optional): ``module:factory``, e.g. ``livekit.plugins.silero:VAD.load``.
- ``AGENT_INSTRUCTIONS`` (optional): the companion's system prompt.

The face: ``AVATAR_API_URL`` (default ``http://127.0.0.1:8000``, ``make serve``),
``AVATAR_API_KEY`` (default the staging key of ``make serve``), ``AVATAR_COMPANION_ID``
(default ``default``), ``AVATAR_SIZE`` (optional, pixels). The avatar worker must run
beside it: ``python -m serve.worker dev``. LiveKit itself: ``LIVEKIT_URL``,
``LIVEKIT_API_KEY``, ``LIVEKIT_API_SECRET`` (or ``--url``, ``--api-key``, ``--api-secret``).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from typing import Any

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, cli

from serve.livekit.plugin import CompanionAvatar

log = logging.getLogger("examples.voice_agent")

INSTRUCTIONS = (
    "You are a warm, curious companion on a video call. Keep answers short and spoken: "
    "no lists, no markdown."
)
_FACTORY = re.compile(r"^[\w.]+:[\w.]+$")  # module:attribute(.attribute), not provider/model

server = AgentServer()


def component(name: str) -> Any:
    """The agent component named by the environment variable ``name`` (None when unset).

    ``module:factory`` is imported and called (lazily: only the chosen plugin is imported);
    anything else is passed to ``AgentSession`` as a LiveKit Inference model string.
    """
    spec = os.environ.get(name, "").strip()
    if not spec:
        return None
    if not _FACTORY.match(spec):
        return spec
    module, _, path = spec.partition(":")
    factory: Any = importlib.import_module(module)
    for attribute in path.split("."):
        factory = getattr(factory, attribute)
    return factory()


def session_components() -> dict[str, Any]:
    """``AgentSession`` keyword arguments from ``AGENT_STT``/``LLM``/``TTS``/``VAD``."""
    chosen = {key: component(f"AGENT_{key.upper()}") for key in ("stt", "llm", "tts", "vad")}
    return {key: value for key, value in chosen.items() if value is not None}


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    """The voice agent of one room, with the companion's face."""
    session: AgentSession = AgentSession(**session_components())

    size = os.environ.get("AVATAR_SIZE")
    avatar = CompanionAvatar(  # the face, line 1
        api_url=os.environ.get("AVATAR_API_URL", "http://127.0.0.1:8000"),
        api_key=os.environ.get("AVATAR_API_KEY", "demo-key-0123456789"),
        companion_id=os.environ.get("AVATAR_COMPANION_ID", "default"),
        size=int(size) if size else None,
    )
    await avatar.start(session, room=ctx.room)  # the face, line 2

    instructions = os.environ.get("AGENT_INSTRUCTIONS") or INSTRUCTIONS
    await session.start(agent=Agent(instructions=instructions), room=ctx.room)
    session.generate_reply(instructions="Greet the user warmly in one short sentence.")
    log.info("voice agent with avatar %s in room %s", avatar.avatar_identity, ctx.room.name)


if __name__ == "__main__":
    cli.run_app(server)
