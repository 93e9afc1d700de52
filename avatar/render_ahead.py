"""RenderAhead: run a frame iterator in a worker thread, a few frames ahead of its consumer.

Rendering (OpenCV, NumPy, torch) and H.264 encoding both release the GIL, so on two cores they
overlap. Exceptions in the worker (a :class:`~avatar.errors.Cancelled` included) are re-raised
in the consumer; a consumer that stops early (an encoding error) stops the worker.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import numpy as np

__all__ = ["RenderAhead"]


class RenderAhead:
    """Iterate over ``frames``, produced by a worker thread at most ``depth`` frames ahead.

    Attributes:
        busy_s: seconds the worker spent producing frames (the render time).
    """

    _DONE = object()

    def __init__(self, frames: Iterator[np.ndarray], depth: int = 4) -> None:
        self._frames = frames
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.busy_s = 0.0
        self._thread = threading.Thread(target=self._work, name="render-ahead", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        """Queue ``item`` unless the consumer has stopped; returns whether it was queued."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            t0 = time.perf_counter()
            for frame in self._frames:
                self.busy_s += time.perf_counter() - t0
                if not self._put(frame):
                    return
                t0 = time.perf_counter()
            self._put(self._DONE)
        except BaseException as e:  # handed to the consumer, which re-raises it
            self._put(e)

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            while True:
                item = self._queue.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()
            self._thread.join(timeout=5)
