"""The companion's face as a livekit-agents ``VideoGenerator`` over the core's streaming session.

:class:`CompanionVideoGenerator` takes the companion's speech (``push_audio``: ``rtc.AudioFrame``
chunks, then ``AudioSegmentEnd``) and yields, per video frame, one ``rtc.VideoFrame`` followed
by exactly that frame's audio (``audio_sample_rate / fps`` samples), so that
``AvatarRunner``'s ``AVSynchronizer`` publishes them together; an utterance ends with
``AudioSegmentEnd``. Between utterances it never stops: idle frames come from the behaviour
track (blinks, breathing, glances, mood, and listening to the user when a
:class:`~avatar.motion.live_listening.LiveListener` is given) at the same fps, paced on the
clock so that they run at most one frame ahead.

Timing is exact by construction: an utterance of ``S`` output samples gets
``ceil(S / samples_per_frame)`` frames, the audio is yielded unchanged (the last frame's share
may be short; its padding goes to the room as silence, uncounted, so that audio and video stay
frame-aligned), and frame timestamps are ``index / fps`` of one counter.

When bound to the runner's synchronizer (:meth:`bind`), idle frames carry silence into the
audio source directly, so that the audio queue and the video queue hold the same time in
idle and speech alike; the runner counts only speech audio toward the playback position.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd, AvatarOptions, VideoGenerator

from avatar.audio import StreamResampler
from avatar.errors import ConfigValueError
from avatar.renderers.base import RenderedFrame
from avatar.streaming import StreamingSession
from serve.livekit.frames import audio_frame, mono_float, to_int16, video_frame

log = logging.getLogger(__name__)

Item = rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd


@dataclass
class GeneratorStats:
    """What a generator has produced (for tests, logs and the benchmark).

    Attributes:
        speech_frames: video frames of utterances.
        idle_frames: video frames between utterances (and inside a stalled one).
        speech_samples: output-rate audio samples yielded (utterances only).
        segments: utterances ended with ``AudioSegmentEnd``.
        interruptions: ``clear_buffer`` calls that dropped something.
        compute_s: seconds of compute per frame of each session call that made frames (a
            push, a flush, an idle frame: the call's time over its frames), latest 10 000.
        compute_total_s: seconds spent in session calls, all of them (model and renders).
    """

    speech_frames: int = 0
    idle_frames: int = 0
    speech_samples: int = 0
    segments: int = 0
    interruptions: int = 0
    compute_s: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    compute_total_s: float = 0.0


class CompanionVideoGenerator(VideoGenerator):
    """Frames and their audio from a :class:`~avatar.streaming.StreamingSession`.

    Args:
        session: the companion's real-time session (its renderer stream and fps).
        size: S, the side of its frames in pixels (the renderer's).
        audio_sample_rate: Hz of the published audio; ``audio_sample_rate / fps`` must be whole.
        listener: the user's listening behaviour (None: idle behaviour only). The session
            applies it (``session.listener``); the user's audio comes in by
            :meth:`push_user_audio`.
        clock: monotonic seconds (``time.perf_counter``: the clock of ``AVSynchronizer``).
        idle_lead_s: how far ahead of the clock idle frames are made, seconds.
    """

    def __init__(
        self,
        session: StreamingSession,
        *,
        size: int,
        audio_sample_rate: int = 24000,
        listener: Any = None,
        clock: Callable[[], float] = time.perf_counter,
        idle_lead_s: float = 0.04,
    ) -> None:
        spf = audio_sample_rate / session.fps
        if spf != int(spf) or spf <= 0:
            raise ConfigValueError(
                f"realtime: audio_sample_rate {audio_sample_rate} Hz is not a whole number of "
                f"samples per frame at {session.fps} fps; use e.g. 16000, 24000 or 48000"
            )
        self.session = session
        self.session.listener = listener
        self.listener = listener
        self.fps = float(session.fps)
        self.audio_sample_rate = int(audio_sample_rate)
        self.samples_per_frame = int(spf)
        self.size = int(size)
        self.stats = GeneratorStats()
        self._clock = clock
        self._idle_lead_s = idle_lead_s
        self._inbox: deque[rtc.AudioFrame | AudioSegmentEnd] = deque()
        self._wake = asyncio.Event()
        self._epoch = 0  # bumped by clear_buffer: work of an older epoch is dropped
        self._reset_due = False
        self._closed = False
        self._av_sync: rtc.AVSynchronizer | None = None
        # one thread for every session call: the model's and renderer's per-thread caches
        # stay warm (a pool rotating threads made each call about twice as slow)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="companion-frames")
        self._anchor: float | None = None  # clock time of frame 0 of the playout clock
        self._yielded = 0  # frames on the playout clock
        self._new_utterance()

    # -- the VideoGenerator contract --------------------------------------------------------

    def options(self) -> AvatarOptions:
        """The runner's options: the renderer's size, the fps and the audio format."""
        return AvatarOptions(
            video_width=self.size,
            video_height=self.size,
            video_fps=self.fps,
            audio_sample_rate=self.audio_sample_rate,
            audio_channels=1,
        )

    def bind(self, av_sync: rtc.AVSynchronizer) -> None:
        """Publish idle silence and end-of-utterance padding through the runner's synchronizer."""
        self._av_sync = av_sync

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        """Queue the companion's speech (any rate, any channel count) or the end of an utterance."""
        self._inbox.append(frame)
        self._wake.set()

    def push_user_audio(self, frame: rtc.AudioFrame) -> None:
        """The user's microphone audio, for listening behaviour (ignored without a listener)."""
        if self.listener is not None:
            self.listener.push(mono_float(frame), frame.sample_rate)

    def clear_buffer(self) -> None:
        """An interruption: drop the speech not yet yielded; next comes an idle frame."""
        if self._inbox or self._in_utterance or self._ready:
            self.stats.interruptions += 1
        self._epoch += 1
        self._inbox.clear()
        self._new_utterance()
        self._reset_due = True
        self._wake.set()

    def __aiter__(self) -> AsyncIterator[Item]:
        return self._stream()

    async def aclose(self) -> None:
        """Stop the iterator (it returns after the frame in progress)."""
        self._closed = True
        self._wake.set()
        self._worker.shutdown(wait=False)

    # -- internals --------------------------------------------------------------------------

    def _new_utterance(self) -> None:
        self._in_utterance = False
        self._resampler: StreamResampler | None = None  # input rate -> audio_sample_rate
        self._pending = np.zeros(0, np.int16)  # speech audio not yet given to a frame
        self._ready: deque[RenderedFrame] = deque()  # speech frames waiting for their audio
        self._utterance_frames = 0
        self._utterance_samples = 0

    async def _compute(
        self, fn: Callable[..., list[RenderedFrame]], *args: Any
    ) -> list[RenderedFrame]:
        """Run a session call on the generator's thread (renders take milliseconds), timed."""
        if self._closed:
            return []
        start = time.perf_counter()
        frames = await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)
        spent = time.perf_counter() - start
        self.stats.compute_total_s += spent
        if frames:
            self.stats.compute_s.append(spent / len(frames))
        return frames

    def _idle_due_in(self) -> float:
        """Seconds until the next idle frame is due on the playout clock (<= 0: now)."""
        now = self._clock()
        if self._anchor is None:
            return 0.0
        due = self._anchor + self._yielded / self.fps - self._idle_lead_s
        if now - due > 0.25:  # fell behind (a slow consumer, a stall): restart the clock
            self._anchor = now - self._yielded / self.fps + self._idle_lead_s
            return 0.0
        return due - now

    def _on_clock(self) -> None:
        if self._anchor is None:
            self._anchor = self._clock()
        self._yielded += 1

    def _out_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        """Append (S,) float32 speech at ``sample_rate`` to the pending output audio."""
        if self._resampler is None:
            self._resampler = StreamResampler(sample_rate, self.audio_sample_rate)
        out = self._resampler.push(samples)
        self._pending = np.concatenate([self._pending, to_int16(out)])

    async def _silence(self, n_samples: int) -> None:
        if self._av_sync is not None and n_samples > 0:
            silence = np.zeros(n_samples, np.int16)
            await self._av_sync.push(audio_frame(silence, self.audio_sample_rate))

    async def _stream(self) -> AsyncIterator[Item]:
        self._wake = asyncio.Event()  # of the loop this iteration runs on
        while not self._closed:
            if self._reset_due:
                self._reset_due = False
                self.session.reset()
            epoch = self._epoch
            if not self._inbox:
                wait = self._idle_due_in()
                if wait > 0:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), wait)
                        continue
                    except TimeoutError:
                        pass
                frames = await self._compute(self.session.idle, 1)
                if epoch != self._epoch:
                    continue
                for frame in frames:
                    self.stats.idle_frames += 1
                    self._on_clock()
                    yield video_frame(frame.image)
                    await self._silence(self.samples_per_frame)
                continue
            item = self._inbox.popleft()
            if isinstance(item, AudioSegmentEnd):
                if not self._in_utterance:
                    continue
                async for out in self._end_utterance(epoch):
                    yield out
                continue
            samples = mono_float(item)
            if samples.size == 0:
                continue
            self._in_utterance = True
            self._out_audio(samples, item.sample_rate)
            frames = await self._compute(self.session.push_audio, samples, item.sample_rate)
            if epoch != self._epoch:
                continue
            self._ready.extend(frames)
            async for out in self._release(epoch, final=False):
                yield out

    async def _release(self, epoch: int, *, final: bool) -> AsyncIterator[Item]:
        """Yield ready frames, each followed by its audio (at the end, the short remainder)."""
        spf = self.samples_per_frame
        while self._ready and (len(self._pending) >= spf or final) and epoch == self._epoch:
            frame = self._ready.popleft()
            share, self._pending = self._pending[:spf], self._pending[spf:]
            self.stats.speech_frames += 1
            self._utterance_frames += 1
            self._on_clock()
            yield video_frame(frame.image)
            if epoch != self._epoch:
                return
            if len(share):
                self.stats.speech_samples += len(share)
                self._utterance_samples += len(share)
                yield audio_frame(share, self.audio_sample_rate)
            await self._silence(spf - len(share))

    async def _end_utterance(self, epoch: int) -> AsyncIterator[Item]:
        """The utterance's last frames: exactly ceil(samples / samples_per_frame) in all."""
        if self._resampler is not None:
            self._pending = np.concatenate([self._pending, to_int16(self._resampler.flush())])
        frames = await self._compute(self.session.flush)
        if epoch != self._epoch:
            return
        self._ready.extend(frames)
        total = self._utterance_samples + len(self._pending)
        needed = math.ceil(total / self.samples_per_frame) - self._utterance_frames
        if needed > len(self._ready):  # the model gave fewer frames: the tail is closed-mouth
            self._ready.extend(await self._compute(self.session.idle, needed - len(self._ready)))
        while len(self._ready) > max(needed, 0):
            self._ready.pop()  # more frames than audio: the extra ones would be silent
        async for out in self._release(epoch, final=True):
            yield out
        if epoch != self._epoch:
            return
        self.stats.segments += 1
        self._new_utterance()
        yield AudioSegmentEnd()
