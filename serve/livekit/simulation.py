"""A real-time call without a server: the real ``AvatarRunner`` (our subclass) and generator,
fed like a voice agent feeds them, publishing into a :class:`~serve.livekit.local_room.LocalRoom`.

The schedule (all on the wall clock, as in a room):

1. ``lead_s`` of idle (the companion waits);
2. with ``listen``: the user's recording arrives on the microphone in 10 ms frames, in real
   time, while the companion listens;
3. the companion's speech goes to a ``QueueAudioOutput`` in 20 ms frames as fast as the
   generator takes it (a TTS is faster than real time), then ``flush()`` ends the utterance;
   with ``interrupt_at`` the agent calls ``clear_buffer()`` that many seconds after the
   speech starts playing;
4. ``tail_s`` of idle after the playback finished.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import numpy as np
from livekit.agents.voice.avatar import QueueAudioOutput
from livekit.agents.voice.io import PlaybackFinishedEvent

from avatar.audio import Audio, resample_stream
from serve.livekit.frames import audio_frame, to_int16
from serve.livekit.generator import CompanionVideoGenerator
from serve.livekit.local_room import LocalRoom, PublishedRecording
from serve.livekit.runner import CompanionAvatarRunner

log = logging.getLogger(__name__)

AGENT_CHUNK_S = 0.02
"""The voice agent's TTS frames: 20 ms."""
MIC_CHUNK_S = 0.01
"""The user's microphone frames: 10 ms."""


@dataclass
class SimulationResult:
    """What the room received and what the agent was told.

    Attributes:
        recording: the published video and audio, in publish time.
        speech_started: wall time the agent's playback started (``playback_started``), or None.
        playback_position: seconds of speech played, as reported by ``playback_finished``.
        interrupted: whether the playback was interrupted.
        generator: the generator (its stats).
    """

    recording: PublishedRecording
    speech_started: float | None
    playback_position: float | None
    interrupted: bool | None
    generator: CompanionVideoGenerator


def _chunks(samples: np.ndarray, size: int) -> list[np.ndarray]:
    return [samples[i : i + size] for i in range(0, len(samples), size)]


async def _play_mic(gen: CompanionVideoGenerator, user: Audio, rate: int) -> None:
    """The user's recording on the microphone, one 10 ms frame every 10 ms."""
    pcm = to_int16(resample_stream(user.mono, user.sample_rate, rate))
    start = time.perf_counter()
    for k, chunk in enumerate(_chunks(pcm, int(rate * MIC_CHUNK_S))):
        gen.push_user_audio(audio_frame(chunk, rate))
        await asyncio.sleep(max(0.0, start + (k + 1) * MIC_CHUNK_S - time.perf_counter()))


async def simulate_call(
    gen: CompanionVideoGenerator,
    speech: Audio | None,
    *,
    lead_s: float = 0.5,
    listen: Audio | None = None,
    interrupt_at: float | None = None,
    tail_s: float = 0.0,
) -> SimulationResult:
    """Run one call (see the module docstring); returns what was published.

    Args:
        gen: the companion's generator (a fresh one: the call closes it).
        speech: the companion's speech, any rate (None: it only listens).
        lead_s: idle seconds before anything happens.
        listen: the user's speech, played on the microphone before the companion speaks.
        interrupt_at: seconds after the speech starts playing at which the agent interrupts.
        tail_s: idle seconds after the speech ended (or was interrupted).
    """
    rate = gen.audio_sample_rate
    room = LocalRoom(audio_sample_rate=rate)
    output = QueueAudioOutput(sample_rate=rate, wait_playback_start=True)
    runner = CompanionAvatarRunner(
        room, audio_recv=output, video_gen=gen, options=gen.options(), _lazy_publish=False
    )
    started = asyncio.Event()
    finished: asyncio.Future[PlaybackFinishedEvent] = asyncio.get_running_loop().create_future()
    started_at: list[float] = []

    def on_started(_event: object) -> None:
        started_at.append(time.perf_counter())
        started.set()

    def on_finished(event: PlaybackFinishedEvent) -> None:
        if not finished.done():
            finished.set_result(event)

    output.on("playback_started", on_started)
    output.on("playback_finished", on_finished)
    await runner.start()
    try:
        await asyncio.sleep(lead_s)
        if listen is not None:
            await _play_mic(gen, listen, rate)
        event = None
        if speech is not None:
            pcm = to_int16(resample_stream(speech.mono, speech.sample_rate, rate))
            for chunk in _chunks(pcm, int(rate * AGENT_CHUNK_S)):
                await output.capture_frame(audio_frame(chunk, rate))
            output.flush()
            if interrupt_at is not None:
                await started.wait()
                await asyncio.sleep(max(0.0, started_at[0] + interrupt_at - time.perf_counter()))
                output.clear_buffer()
            event = await finished
            log.info(
                "playback finished at %.3f s (interrupted: %s)",
                event.playback_position,
                event.interrupted,
            )
        await asyncio.sleep(tail_s)
    finally:
        await gen.aclose()
        await runner.aclose()
        await room.aclose()
    return SimulationResult(
        recording=room.recording,
        speech_started=started_at[0] if started_at else None,
        playback_position=event.playback_position if event else None,
        interrupted=event.interrupted if event else None,
        generator=gen,
    )
