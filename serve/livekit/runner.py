"""``AvatarRunner`` with an interruption that stops what is queued and reports what was heard.

livekit-agents' runner, on ``clear_buffer``, tells the generator to drop its buffer and reports
the playback position as the duration of all audio it has *pushed*; up to ``_queue_size_ms``
of that (100 ms) still sits in the audio source's queue, and as many video frames in the
synchronizer's queue, and would still play. :class:`CompanionAvatarRunner` drops both queues
at once and reports the position actually played (pushed minus still queued). Everything else
is the stock runner.
"""

from __future__ import annotations

import asyncio
import logging

from livekit.agents.voice.avatar import AvatarRunner

log = logging.getLogger(__name__)


class CompanionAvatarRunner(AvatarRunner):
    """livekit-agents' ``AvatarRunner``, binding the generator to its synchronizer and cutting
    queued audio and video at an interruption (same constructor)."""

    async def start(self) -> None:
        """Bind the generator (idle silence goes through the synchronizer), then start."""
        bind = getattr(self._video_gen, "bind", None)
        if bind is not None:
            bind(self.av_sync)
        await super().start()

    def _on_clear_buffer(self) -> None:
        unplayed = self._audio_source.queued_duration if self._audio_playing else 0.0
        self._video_gen.clear_buffer()  # first: nothing more of this utterance is yielded
        self._audio_source.clear_queue()
        self._drop_queued_video()
        self._playback_position = max(0.0, self._playback_position - unplayed)
        log.debug("interrupted at %.3f s of playback", self._playback_position)
        super()._on_clear_buffer()

    def _drop_queued_video(self) -> None:
        queue: asyncio.Queue = self.av_sync._video_queue
        while not queue.empty():
            queue.get_nowait()
            queue.task_done()
