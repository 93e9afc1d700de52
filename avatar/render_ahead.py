"""RenderAhead: render a track's chunks on worker threads, ahead of the consumer, in order.

Rendering (OpenCV, NumPy, torch) and H.264 encoding both release the GIL, so on two cores the
consumer encodes while ``threads`` workers render the next chunks. A renderer's chunks are
independent (the contract: frames depend only on their values and the prepared state), so
several may render at once; frames still come out in order. Errors in a worker (a
:class:`~avatar.errors.Cancelled` included) are re-raised in the consumer, and a consumer that
stops early stops the work: nothing more is submitted and what waits is dropped.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from avatar.audio import Audio
from avatar.cancel import CancelToken
from avatar.cancel import check as check_cancel
from avatar.motion.track import MotionTrack
from avatar.renderers.base import Prepared, Renderer, audio_span, channel_values

__all__ = ["Progress", "RenderAhead", "encode_frames"]

Progress = Callable[[int, "int | None"], None]
"""``progress(frames_written, frames_in_all)`` after each frame is encoded; ``frames_in_all``
is None while unknown (a long text before its last segment is spoken)."""


class RenderAhead:
    """Iterate over the (S, S, 3) uint8 frames of ``motion``, rendered ahead on workers.

    Args:
        renderer: the renderer; each job is one ``render_chunk`` of ``renderer.chunk_frames``.
        prepared: the identity's prepared state.
        motion: the track.
        audio: the speech under the whole track (each chunk gets its span), or None.
        threads: chunks rendered at once (1: one worker, as a single render thread).
        depth: frames rendered ahead of the consumer at most.
        cancel: checked before each chunk is submitted and again when a worker starts it.

    Attributes:
        busy_s: seconds the workers spent rendering, summed over workers.
    """

    def __init__(
        self,
        renderer: Renderer,
        prepared: Prepared,
        motion: MotionTrack,
        audio: Audio | None = None,
        *,
        threads: int,
        depth: int = 8,
        cancel: CancelToken | None = None,
    ) -> None:
        self._renderer, self._prepared, self._audio = renderer, prepared, audio
        self._values, self._fps = channel_values(motion), motion.fps
        self._step = max(int(renderer.chunk_frames), 1)
        self._window = max(threads, depth // self._step, 1)
        self._threads = max(int(threads), 1)
        self._cancel = cancel
        self._lock = threading.Lock()
        self.busy_s = 0.0

    def _render(self, start: int) -> np.ndarray:
        check_cancel(self._cancel)
        t0 = time.perf_counter()
        stop = min(start + self._step, len(self._values))
        chunk_audio = audio_span(self._audio, start, stop, self._fps)
        frames = self._renderer.render_chunk(self._prepared, self._values[start:stop], chunk_audio)
        with self._lock:
            self.busy_s += time.perf_counter() - t0
        return frames

    def __iter__(self) -> Iterator[np.ndarray]:
        starts = iter(range(0, len(self._values), self._step))
        pending: deque[Future[np.ndarray]] = deque()
        executor = ThreadPoolExecutor(self._threads, thread_name_prefix="render-ahead")
        try:
            for start in starts:  # fill the window
                check_cancel(self._cancel)
                pending.append(executor.submit(self._render, start))
                if len(pending) >= self._window:
                    break
            while pending:
                frames = pending.popleft().result()
                start = next(starts, None)
                if start is not None:
                    check_cancel(self._cancel)
                    pending.append(executor.submit(self._render, start))
                yield from frames
        finally:
            for future in pending:
                future.cancel()
            executor.shutdown(wait=True, cancel_futures=True)


def encode_frames(
    writer: Any,
    frames: Iterable[np.ndarray],
    cancel: CancelToken | None,
    progress: Callable[[int], None] | None = None,
) -> tuple[float | None, float]:
    """Hand ``frames`` to ``writer.write_frame`` one by one, cancellable before each;
    ``progress(k)`` after the k-th (1-based) is written.

    Returns:
        ``(first, encode_s)``: ``time.perf_counter()`` when the first frame was ready (None
        without frames) and the seconds spent in ``write_frame``.
    """
    first, encode_s = None, 0.0
    for k, frame in enumerate(frames, 1):
        check_cancel(cancel)
        t0 = time.perf_counter()
        first = t0 if first is None else first
        writer.write_frame(frame)
        encode_s += time.perf_counter() - t0
        if progress is not None:
            progress(k)
    return first, encode_s
