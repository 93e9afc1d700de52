"""A room with no server, for simulation and tests: what ``AvatarRunner`` publishes is read back
through LiveKit's own ``rtc.VideoStream`` and ``rtc.AudioStream`` on the local tracks.

:class:`LocalRoom` stands in for ``rtc.Room`` where a LiveKit server would be needed (it is
"connected" from the start, and publishing a track starts recording it); everything on the
media path is LiveKit's real code (``AudioSource``, ``VideoSource``, ``AVSynchronizer``, local
tracks and their streams). :class:`PublishedRecording` holds what was read back: video frames
with their capture timestamps and the audio stream as played out, both on the monotonic clock
that ``time.perf_counter`` reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc

from serve.livekit.frames import image_of

log = logging.getLogger(__name__)

AUDIO_FRAME_S = 0.01
"""``rtc.AudioStream`` delivers 10 ms frames, continuously (silence when nothing plays)."""


@dataclass
class PublishedRecording:
    """What the room received, in publish time.

    Attributes:
        video: (capture time in seconds, (S, S, 3) uint8 RGB) per published video frame.
        audio: (arrival time in seconds, (n,) int16) per 10 ms audio frame, in order.
        sample_rate: Hz of ``audio``.
    """

    sample_rate: int
    video: list[tuple[float, np.ndarray]] = field(default_factory=list)
    audio: list[tuple[float, np.ndarray]] = field(default_factory=list)

    def audio_start(self) -> float:
        """Publish time of the first audio sample, seconds.

        The stream is continuous, so frame i starts at ``start + i * 10 ms``; the earliest
        such start over all frames is taken (a frame handled late by the event loop only
        raises its own arrival time).
        """
        if not self.audio:
            raise ValueError("no audio was published")
        offsets = []
        position = 0
        for arrival, samples in self.audio:
            position += len(samples)
            offsets.append(arrival - position / self.sample_rate)
        return min(offsets)

    def audio_samples(self) -> np.ndarray:
        """(S,) int16: the whole published audio stream."""
        if not self.audio:
            return np.zeros(0, np.int16)
        return np.concatenate([samples for _, samples in self.audio])


class _Publication:
    def __init__(self, track: rtc.LocalTrack) -> None:
        self.track = track
        self.sid = f"TR_local_{id(track):x}"

    async def wait_for_subscription(self) -> None:
        return None


class _LocalParticipant:
    def __init__(self, room: LocalRoom, identity: str) -> None:
        self._room = room
        self.identity = identity
        self.track_publications: dict[str, _Publication] = {}

    async def publish_track(
        self, track: rtc.LocalTrack, options: rtc.TrackPublishOptions | None = None
    ) -> _Publication:
        publication = _Publication(track)
        self.track_publications[publication.sid] = publication
        self._room.record(track)
        return publication


class LocalRoom(rtc.EventEmitter[str]):
    """A connected room of one participant (the avatar) that records what it publishes.

    Stands in for ``rtc.Room`` (no LiveKit server here): ``isconnected()``, ``name``,
    ``local_participant.publish_track`` and the event emitter are what ``AvatarRunner`` uses.

    Args:
        audio_sample_rate: Hz at which the published audio is read back.
        identity: the avatar's participant identity.
    """

    def __init__(self, *, audio_sample_rate: int, identity: str = "avatar-local") -> None:
        super().__init__()
        self.name = "local"
        self.local_participant = _LocalParticipant(self, identity)
        self.recording = PublishedRecording(sample_rate=audio_sample_rate)
        self._readers: list[asyncio.Task[None]] = []
        self._streams: list[rtc.VideoStream | rtc.AudioStream] = []

    def isconnected(self) -> bool:
        return True

    def record(self, track: rtc.LocalTrack) -> None:
        """Start reading ``track`` back through its stream."""
        if isinstance(track, rtc.LocalVideoTrack):
            video = rtc.VideoStream(track)
            self._streams.append(video)
            self._readers.append(asyncio.create_task(self._read_video(video)))
        else:
            audio = rtc.AudioStream(track, sample_rate=self.recording.sample_rate, num_channels=1)
            self._streams.append(audio)
            self._readers.append(asyncio.create_task(self._read_audio(audio)))

    async def _read_video(self, stream: rtc.VideoStream) -> None:
        async for event in stream:
            self.recording.video.append((event.timestamp_us / 1e6, image_of(event.frame)))

    async def _read_audio(self, stream: rtc.AudioStream) -> None:
        async for event in stream:
            samples = np.frombuffer(event.frame.data, np.int16).copy()
            self.recording.audio.append((time.perf_counter(), samples))

    async def aclose(self) -> None:
        """Stop reading (what was read stays in :attr:`recording`)."""
        for stream in self._streams:
            await stream.aclose()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)

    def __getattr__(self, name: str) -> Any:  # pragma: no cover - a clear error, not a hang
        raise AttributeError(f"LocalRoom stands in for rtc.Room without {name!r}")
