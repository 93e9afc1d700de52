"""``?stream=true``: a render's fragmented MP4 sent while it is made.

The render thread hands each piece of the stream to :meth:`Fragments.put`, which appends it to a
hidden temporary file beside the cache entry and queues it on the event loop
(``call_soon_threadsafe``: the loop's queue is only touched from the loop). The response
(:class:`RenderStream`) sends what is queued as it arrives. The render runs as a task of its own,
so a stream that completes is cached even if its client leaves after the last byte; a client
that leaves before cancels the render (the response's end cancels the token). A render that
fails after the first byte cannot change the status any more: the connection is closed without
the last chunk, so the client sees a stream cut short, and nothing is cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from avatar.cancel import CancelToken
from avatar.media.files import commit_temp, discard_temp, temp_beside
from serve.generation import MP4, Job, remember
from serve.state import ServeState
from serve.store import Session

log = logging.getLogger(__name__)

__all__ = ["Fragments", "RenderStream", "StreamAborted", "closer", "start_stream"]

_END = object()
_BACKGROUND: set[asyncio.Task[None]] = set()  # stream renders in flight (strong references)


class StreamAborted(RuntimeError):
    """Raised into the response when the render failed after the first byte: the server
    closes the connection, so the client sees an incomplete body, never a clean end."""


class Fragments:
    """The bytes of one stream: from the render thread to the event loop, and to a temp file.

    Args:
        loop: the event loop the response runs on.
        out: where the complete stream is cached (a temp file beside it meanwhile).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, out: Path) -> None:
        self._loop, self.out = loop, out
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._tmp = temp_beside(out, ".part.mp4")
        self._file = self._tmp.open("wb")
        self.first_at: float | None = None  # time.perf_counter() of the first piece
        self.task: asyncio.Task[None] | None = None  # the render, once started

    def put(self, data: bytes) -> None:
        """The sink of :class:`~avatar.media.Mp4StreamWriter` (called on the render thread)."""
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self._file.write(data)
        self._loop.call_soon_threadsafe(self._queue.put_nowait, data)

    async def get(self) -> object:
        """The next piece (bytes), the failure (an exception), or the end marker."""
        return await self._queue.get()

    def fail(self, exc: BaseException) -> None:
        """The render failed: drop the temp file and hand the failure to the response."""
        self._file.close()
        discard_temp(self._tmp)
        self._queue.put_nowait(exc)

    def commit(self) -> Path:
        """The render completed: the temp file becomes the cache entry (atomic rename)."""
        try:
            self._file.close()
            commit_temp(self._tmp, self.out)
        except BaseException:
            discard_temp(self._tmp)
            raise
        return self.out

    def end(self) -> None:
        self._queue.put_nowait(_END)

    async def chunks(self, first: bytes) -> AsyncIterator[bytes]:
        """``first``, then every piece until the end; raises :class:`StreamAborted` on a
        failure."""
        yield first
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                log.warning("stream of %s cut short: %s", self.out.name, item)
                raise StreamAborted(f"the render failed mid-stream: {item}") from item
            assert isinstance(item, bytes)
            yield item


class RenderStream(StreamingResponse):
    """A streaming response that calls ``on_close`` when it ends, however it ends (done,
    failed, or its client gone), so that a render nobody reads any more is cancelled."""

    def __init__(
        self, content: AsyncIterator[bytes], *, on_close: Callable[[], None], etag: str
    ) -> None:
        super().__init__(content, media_type=MP4, headers={"ETag": f'"{etag}"'})
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


async def _render(
    state: ServeState,
    job: Job,
    session: Session,
    etag: str,
    fragments: Fragments,
    token: CancelToken,
    release: contextlib.ExitStack,
) -> None:
    """Run the render into ``fragments``, then cache it; always release the pool's place."""
    t0 = time.perf_counter()
    try:
        try:
            await state.pool.run(job.render, fragments.put, cancel=token)
        except BaseException as exc:
            fragments.fail(exc)
            if not isinstance(exc, Exception):
                raise
            return
        state.metrics.renders.labels("stream").observe(time.perf_counter() - t0)
        try:  # cached before the stream ends: a request right after it is a hit
            await remember(state, session, etag, await run_in_threadpool(fragments.commit))
        except Exception:  # caching failed: the client still gets the whole stream
            log.exception("could not cache the stream %s", etag)
        fragments.end()
    except Exception:
        log.exception("the stream %s failed after its render", etag)
    finally:
        release.close()
        job.cleanup()


def start_stream(
    state: ServeState,
    who_id: str,
    job: Job,
    session: Session,
    etag: str,
    token: CancelToken,
) -> Fragments:
    """Admit the render (503 / 429 raised here, before any byte) and start it as a task."""
    release = contextlib.ExitStack()
    release.enter_context(state.pool.admitted(who_id))
    try:
        fragments = Fragments(
            asyncio.get_running_loop(), state.session_dir(session) / f"{etag}.mp4"
        )
        task = asyncio.create_task(_render(state, job, session, etag, fragments, token, release))
    except BaseException:
        release.close()
        raise
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    fragments.task = task
    return fragments


def closer(fragments: Fragments, token: CancelToken) -> Callable[[], None]:
    """``on_close`` of a :class:`RenderStream`: cancel a render still running."""

    def close() -> None:
        if fragments.task is not None and not fragments.task.done():
            token.cancel("the client disconnected")

    return close
