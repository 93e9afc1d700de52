"""``AvatarRunner`` with an interruption that stops what is queued and reports what was heard.

livekit-agents' runner, on ``clear_buffer``, tells the generator to drop its buffer and reports
the playback position as the duration of all audio it has *pushed*; up to ``_queue_size_ms``
of that (100 ms) still sits in the audio source's queue, and as many video frames in the
synchronizer's queue, and would still play; a frame whose push was waiting for room in a full
queue is published after the interruption too. :class:`CompanionAvatarRunner`:

- drops both queues at once, and any frame still waiting for room (an *epoch* counter tells
  frames from before the interruption from those after it);
- reports the position actually played: pushed minus still queued, snapshotted at the
  interruption;
- binds the generator to its synchronizer (idle silence goes there uncounted).

Everything else (publishing, segment ends, playback started) is the stock runner's.
"""

from __future__ import annotations

import asyncio
import logging

from livekit import rtc
from livekit.agents.utils import log_exceptions
from livekit.agents.voice.avatar import AudioSegmentEnd, AvatarRunner

log = logging.getLogger(__name__)

_WAIT_S = 0.005
"""Poll interval while a frame waits for room in a full queue, seconds."""


class CompanionAvatarRunner(AvatarRunner):
    """livekit-agents' ``AvatarRunner`` with exact interruptions (same constructor)."""

    _epoch = 0  # interruptions so far: frames of an older epoch are never pushed
    _pushing = 0.0  # seconds of the audio frame inside av_sync.push right now

    async def start(self) -> None:
        """Bind the generator (idle silence goes through the synchronizer), then start."""
        bind = getattr(self._video_gen, "bind", None)
        if bind is not None:
            bind(self.av_sync)
        await super().start()

    @log_exceptions(logger=log)
    async def _forward_video(self) -> None:
        """The stock loop, but a frame from before an interruption is never pushed."""
        async for frame in self._video_gen:
            if isinstance(frame, AudioSegmentEnd):
                self._segment_ended()
                continue
            if not self._video_publication:
                await self._publish_track()
            epoch = self._epoch
            if not await self._room_for(frame, epoch):
                continue  # interrupted while it waited: not played, not counted
            audio = isinstance(frame, rtc.AudioFrame)
            self._pushing = frame.duration if audio else 0.0  # in the queue, not yet counted
            try:
                await self._av_sync.push(frame)  # does not block: there is room
            finally:
                self._pushing = 0.0
            if epoch != self._epoch:
                continue  # the interruption dropped it from the queue
            if audio:
                if self._playback_position == 0.0 and frame.duration > 0.0:
                    self._notify(self._audio_recv.notify_playback_started())
                self._playback_position += frame.duration

    async def _room_for(self, frame: rtc.VideoFrame | rtc.AudioFrame, epoch: int) -> bool:
        """Wait until ``frame`` fits its queue, so that the push does not block (a frame blocked
        inside LiveKit's capture would be played after an interruption); False if interrupted
        meanwhile."""
        if isinstance(frame, rtc.AudioFrame):
            room = self._queue_size_ms / 1000.0 - frame.duration
            while self._audio_source.queued_duration > room and epoch == self._epoch:
                await asyncio.sleep(_WAIT_S)
        else:
            queue = self._av_sync._video_queue
            while queue.full() and epoch == self._epoch:
                await asyncio.sleep(_WAIT_S)
        return epoch == self._epoch

    def _segment_ended(self) -> None:
        if self._audio_playing:
            self._notify(
                self._audio_recv.notify_playback_finished(
                    playback_position=self._playback_position, interrupted=False
                )
            )
            self._audio_playing = False
            self._playback_position = 0.0

    def _on_clear_buffer(self) -> None:
        self._epoch += 1
        self._notify(self._video_gen.clear_buffer())  # nothing more of this utterance is yielded
        queued = self._audio_source.queued_duration  # includes a frame being pushed now
        heard = max(0.0, self._playback_position + self._pushing - queued)
        self._audio_source.clear_queue()
        self._drop_queued_video()
        if self._audio_playing:
            log.debug("interrupted after %.3f s of playback", heard)
            self._notify(
                self._audio_recv.notify_playback_finished(playback_position=heard, interrupted=True)
            )
        self._audio_playing = False
        self._playback_position = 0.0

    def _drop_queued_video(self) -> None:
        queue: asyncio.Queue = self._av_sync._video_queue
        while not queue.empty():
            queue.get_nowait()
            queue.task_done()

    def _notify(self, result: object) -> None:
        """Run a receiver notification that may be a coroutine without blocking the loop."""
        if asyncio.iscoroutine(result):
            task = asyncio.create_task(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
