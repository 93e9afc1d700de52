"""Timestamps stay exact over an hour of speech fed faster than real time (no runner, no clock:
the generator is driven directly, as fast as it goes).

The learned mouth model and the face are stand-ins here (an hour through the real ones would
take minutes): :class:`ZeroMouth` follows the model's streaming contract (a frame once its
audio and the look-ahead have arrived, the rest at ``flush``) with a closed mouth, and
FakeRenderer draws tiny frames. What is under test is the generator's accounting.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd

from avatar.motion.track import MOUTH_CHANNELS
from avatar.streaming import StreamingSession, StreamingSettings
from serve.livekit.frames import audio_frame
from serve.livekit.generator import CompanionVideoGenerator
from tests.fakes import FakeRenderer, motion_ramp

FPS = 25
RATE = 24000
SPF = RATE // FPS


class ZeroMouth:
    """Stand-in for LearnedMotion (16 kHz, 60 ms look-ahead, closed mouth)."""

    sample_rate = 16000
    latency_s = 0.06

    def stream(self) -> ZeroMouthStream:
        return ZeroMouthStream()


class ZeroMouthStream:
    def __init__(self) -> None:
        self.received = 0
        self.emitted = 0

    def _ready(self, available: int) -> list[np.ndarray]:
        n = max(available // 640 - self.emitted, 0)
        self.emitted += n
        return [np.zeros(len(MOUTH_CHANNELS), np.float32)] * n

    def push(self, chunk: np.ndarray) -> list[np.ndarray]:
        self.received += len(chunk)
        return self._ready(self.received - 960)

    def flush(self) -> list[np.ndarray]:
        return self._ready(math.ceil(self.received / 640) * 640)


def _generator() -> CompanionVideoGenerator:
    renderer = FakeRenderer(size=32)
    identity_prepared = renderer.prepare(_identity())
    settings = StreamingSettings(
        behaviour_seconds=2.0,
        silence_db=-35,
        reference_dbfs=-20,
        hold_s=0.04,
        ramp_s=0.08,
        lookahead_s=0.06,
    )
    session = StreamingSession(
        stream=renderer.open_stream(identity_prepared),
        learned=ZeroMouth(),
        behaviour=motion_ramp(50, FPS),
        settings=settings,
    )
    return CompanionVideoGenerator(session, size=32, audio_sample_rate=RATE)


def _identity():
    from types import SimpleNamespace

    return SimpleNamespace(key="stand-in", portrait=np.full((32, 32, 3), 100, np.uint8))


async def _feed_and_count(gen, seconds: float, chunk_s: float) -> tuple[int, int, list[float]]:
    chunk = np.full(int(chunk_s * RATE), 3000, np.int16)
    n_chunks = int(round(seconds / chunk_s))
    video = samples = 0
    durations: list[float] = []

    async def feed() -> None:
        for _ in range(n_chunks):
            await gen.push_audio(audio_frame(chunk, RATE))
            await asyncio.sleep(0)
        await gen.push_audio(AudioSegmentEnd())

    feeder = asyncio.create_task(feed())
    async for item in gen:
        if isinstance(item, rtc.VideoFrame):
            video += 1
        elif isinstance(item, rtc.AudioFrame):
            samples += item.samples_per_channel
            durations.append(item.duration)
        else:
            break
    await feeder
    await gen.aclose()
    return video, samples, durations


@pytest.mark.parametrize(
    ("seconds", "chunk_s"), [(3600.0, 0.2), (61.23, 0.02)], ids=["one-hour", "odd-length"]
)
def test_frames_match_audio_samples_exactly(seconds, chunk_s):
    gen = _generator()
    video, samples, _ = asyncio.run(_feed_and_count(gen, seconds, chunk_s))
    total = int(round(seconds / chunk_s)) * int(chunk_s * RATE)
    assert samples == total, "every sample of the utterance was yielded, once"
    assert math.ceil(total / SPF) == gen.stats.speech_frames
    # the first frame is idle (nothing had arrived when the iterator started), no other one:
    # fed faster than real time, the utterance never stalls
    assert gen.stats.idle_frames <= 1 and video == gen.stats.speech_frames + gen.stats.idle_frames
    assert gen.session.frame_index >= video


def test_each_frame_carries_exactly_its_share_of_audio():
    gen = _generator()
    _, _, durations = asyncio.run(_feed_and_count(gen, 2.03, 0.01))
    assert all(d == pytest.approx(1 / FPS) for d in durations[:-1])
    assert durations[-1] == pytest.approx(2.03 - (len(durations) - 1) / FPS)
