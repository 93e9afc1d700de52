"""Render worker processes: an MP4 render's frames made on another core, back in shared memory.

Mesh-warp is mostly small NumPy operations that hold the GIL, so render threads gain little
(two: 1.08x on the warp map) and contend with the encoding thread. A :class:`RenderPool` owns
``processes`` spawned workers (the parent has threads: never forked), started once, reused. A
worker unpickles the renderer once, gets an identity's ``Prepared`` once (keeping
:data:`KEEP_PREPARED`, least recently used dropped; the parent mirrors that order), then jobs
``(job id, key, slot, values (T, C) float32, audio span or None)`` whose frames go into a slot
((chunk_frames, S, S, 3) uint8) of one shared-memory block, copied out by the consumer.
:class:`ProcessRenderAhead` is the drop-in for :class:`~avatar.render_ahead.RenderAhead`;
:class:`RenderAheadFactory` picks one per render.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import pickle
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future
from multiprocessing import shared_memory
from multiprocessing.connection import Connection, wait

import numpy as np

from avatar.audio import Audio
from avatar.cancel import CancelToken
from avatar.cancel import check as check_cancel
from avatar.errors import AvatarError, ConfigValueError
from avatar.motion.track import MotionTrack
from avatar.render_ahead import RenderAhead
from avatar.render_worker_main import KEEP_PREPARED, READY, WorkerTraceback, worker_main
from avatar.renderers.base import Prepared, Renderer, audio_span, channel_values

log = logging.getLogger(__name__)

__all__ = ["ProcessRenderAhead", "RenderAheadFactory", "RenderPool"]

LEASES = 4
MAX_PROCESSES = 64  # each worker holds an interpreter, renderer state and frame slots
"""Process renders that may run at once; a further one renders on threads instead of waiting."""
_CTX = mp.get_context("spawn")


def _stop(procs, tasks, results, shm, closing, collector) -> None:
    """Stop one start of the pool: ask the workers to end, then terminate what remains."""
    closing.set()
    for conn in tasks:
        try:
            conn.send(None)
        except (OSError, ValueError):  # the worker is gone already
            pass
    for proc in procs:
        proc.join(timeout=2.0)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=1.0)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if collector.is_alive() and collector is not threading.current_thread():
        collector.join(timeout=2.0)
    for conn in (*tasks, *results):
        conn.close()
    shm.close()
    try:
        shm.unlink()
    except FileNotFoundError:
        pass


class _Workers:
    """One start of the pool: processes, their pipes, the shared slots and a collector thread
    that routes results to the submitters' futures (and notices a worker that dies)."""

    def __init__(self, renderer: Renderer, processes: int, slots: int, slot_shape: tuple) -> None:
        self.slot_shape = tuple(slot_shape)
        self.slot_bytes = int(np.prod(slot_shape))
        self.shm = shared_memory.SharedMemory(create=True, size=slots * self.slot_bytes)
        self.procs: list = []
        self.tasks: list[Connection] = []
        self.results: list[Connection] = []
        self.keys: list[OrderedDict[str, None]] = [OrderedDict() for _ in range(processes)]
        self.send_locks = [threading.Lock() for _ in range(processes)]
        self.outstanding: list[dict[int, Future]] = [{} for _ in range(processes)]
        self.lock = threading.Lock()
        self.broken: str | None = None
        self.n_ready = 0  # workers that said they are running
        self.closing = threading.Event()
        self._ids = itertools.count()
        self.free_leases = list(range(LEASES))
        for i in range(processes):
            task_r, task_w = _CTX.Pipe(duplex=False)
            res_r, res_w = _CTX.Pipe(duplex=False)
            args = (renderer, task_r, res_w, self.shm.name, (slots, *self.slot_shape))
            proc = _CTX.Process(
                target=worker_main, args=args, name=f"render-worker-{i}", daemon=True
            )
            proc.start()
            task_r.close()
            res_w.close()
            self.procs.append(proc)
            self.tasks.append(task_w)
            self.results.append(res_r)
        self.collector = threading.Thread(target=self._collect, name="render-workers", daemon=True)
        self.collector.start()
        stop_args = (self.procs, self.tasks, self.results, self.shm, self.closing, self.collector)
        self.stop = weakref.finalize(self, _stop, *stop_args)

    def _collect(self) -> None:
        readers = {conn: i for i, conn in enumerate(self.results)}
        sentinels = {proc.sentinel: i for i, proc in enumerate(self.procs)}
        while not self.closing.is_set():
            for ready in sorted(wait([*readers, *sentinels]), key=lambda c: c in sentinels):
                if self.closing.is_set():
                    return
                i = readers.get(ready, sentinels.get(ready))
                try:
                    job_id, exc, text, busy_s = self.results[i].recv()
                except (EOFError, OSError):
                    proc = self.procs[i]
                    proc.join(timeout=1.0)
                    self.fail(f"render worker process {proc.pid} died (exit code {proc.exitcode})")
                    return
                if job_id == READY:
                    with self.lock:
                        self.n_ready += 1
                    continue
                with self.lock:
                    future = self.outstanding[i].pop(job_id, None)
                if future is None:
                    continue
                if exc is None:
                    future.set_result(busy_s)
                else:
                    exc.__cause__ = WorkerTraceback(text)
                    future.set_exception(exc)

    def fail(self, reason: str) -> None:
        """Mark this start broken and fail every job waiting on it with ``reason``."""
        with self.lock:
            self.broken = self.broken or reason
            waiting = [f for jobs in self.outstanding for f in jobs.values()]
            for jobs in self.outstanding:
                jobs.clear()
        log.error("render workers: %s; they restart for the next render", reason)
        for future in waiting:
            future.set_exception(AvatarError(f"{reason}; the render workers restart next render"))

    def submit(self, key: str, prepared: Prepared, slot: int, values, audio) -> Future:
        """Send one job to the least busy worker (the prepared state first if it lacks it)."""
        with self.lock:
            if self.broken:
                raise AvatarError(f"{self.broken}; the render workers restart next render")
            i = min(range(len(self.procs)), key=lambda k: len(self.outstanding[k]))
            job_id, future = next(self._ids), Future()
            self.outstanding[i][job_id] = future
        with self.send_locks[i]:
            keys = self.keys[i]
            try:
                if key not in keys:
                    self.tasks[i].send(("prepared", key, prepared))
                    keys[key] = None
                    while len(keys) > KEEP_PREPARED:
                        keys.popitem(last=False)
                keys.move_to_end(key)
                self.tasks[i].send(("job", job_id, key, slot, values, audio))
            except (OSError, ValueError) as exc:
                self.fail(f"render worker process {self.procs[i].pid} is gone ({exc})")
                raise AvatarError(f"{self.broken}; the render workers restart next render") from exc
        return future

    def read(self, slot: int, n: int) -> np.ndarray:
        """A copy of the first ``n`` frames in ``slot``: (n, S, S, 3) uint8."""
        view = np.ndarray((n, *self.slot_shape[1:]), np.uint8, self.shm.buf, self.slot_bytes * slot)
        return view.copy()


class RenderPool:
    """Worker processes that render for one renderer; started on first use, reused after.

    Args:
        renderer: pickled to each worker (it must pickle; :class:`RenderAheadFactory` checks).
        processes: worker processes, at least 1.
        window: chunks in flight per render (slots per lease).

    Thread-safe: up to :data:`LEASES` renders use the pool at once. A worker that dies fails
    the renders in flight with :class:`~avatar.errors.AvatarError`; the next render starts a
    fresh set. :meth:`close` (also run when the pool is collected and at interpreter exit)
    stops the workers.
    """

    def __init__(self, renderer: Renderer, *, processes: int, window: int) -> None:
        self.renderer, self.processes, self.window = renderer, int(processes), int(window)
        self.slot_shape = (max(int(renderer.chunk_frames), 1), renderer.size, renderer.size, 3)
        self._holder: list[_Workers] = []  # the current start, if any
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, RenderPool._close_holder, self._holder)

    @property
    def started(self) -> bool:
        """Whether healthy workers are running now."""
        return bool(self._holder) and self._holder[0].broken is None

    @property
    def ready(self) -> bool:
        """Whether healthy workers run and have all said so (jobs start at once, not after a
        worker's start-up of about a second)."""
        workers = self._holder[0] if self._holder else None
        return bool(workers) and workers.broken is None and workers.n_ready == len(workers.procs)

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers (empty when not started)."""
        return [p.pid for p in self._holder[0].procs] if self._holder else []

    def workers(self) -> _Workers:
        """The running workers, started (or restarted after a failure) now if needed."""
        with self._lock:
            if self._holder and self._holder[0].broken:
                self._holder.pop().stop()
            if not self._holder:
                t0 = time.perf_counter()
                slots = self.window * LEASES
                self._holder.append(_Workers(self.renderer, self.processes, slots, self.slot_shape))
                elapsed = time.perf_counter() - t0
                log.info("started %d render worker processes in %.2f s", self.processes, elapsed)
            return self._holder[0]

    @staticmethod
    def _close_holder(holder: list[_Workers]) -> None:
        while holder:
            holder.pop().stop()

    def close(self) -> None:
        """Stop the workers (a later render starts them again)."""
        with self._lock:
            RenderPool._close_holder(self._holder)


class ProcessRenderAhead:
    """Iterate over the (S, S, 3) uint8 frames of ``motion``, rendered ahead in ``pool``'s
    worker processes; the drop-in for :class:`~avatar.render_ahead.RenderAhead` (same frames,
    bit for bit, in order).

    Args:
        renderer, prepared, motion, audio, threads, depth, cancel: as for RenderAhead
            (``threads`` is used only when every lease of the pool is taken).
        pool: the worker processes.

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
        pool: RenderPool,
    ) -> None:
        self._args = (renderer, prepared, motion, audio)
        self._threads, self._depth, self._cancel, self._pool = threads, depth, cancel, pool
        self._values, self._fps = channel_values(motion), motion.fps
        self._step = pool.slot_shape[0]
        self.busy_s = 0.0

    def __iter__(self) -> Iterator[np.ndarray]:
        workers = self._pool.workers()
        with workers.lock:
            lease = workers.free_leases.pop() if workers.free_leases else None
        if lease is None:  # as many process renders as leases already: threads, not waiting
            fallback = RenderAhead(*self._args, threads=self._threads, cancel=self._cancel)
            yield from fallback
            self.busy_s += fallback.busy_s
            return
        window = self._pool.window
        prepared, audio, n = self._args[1], self._args[3], len(self._values)
        starts = iter(range(0, n, self._step))
        pending: list[tuple[Future, int, int]] = []  # (future, slot, frames), oldest first

        def submit(start: int, slot: int) -> None:
            check_cancel(self._cancel)
            stop = min(start + self._step, n)
            values = np.ascontiguousarray(self._values[start:stop])
            chunk_audio = audio_span(audio, start, stop, self._fps)
            future = workers.submit(prepared.key, prepared, slot, values, chunk_audio)
            pending.append((future, slot, stop - start))

        try:
            for k, start in zip(range(window), starts, strict=False):
                submit(start, lease * window + k)
            while pending:
                future, slot, count = pending.pop(0)
                self.busy_s += future.result()
                frames = workers.read(slot, count)
                start = next(starts, None)
                if start is not None:
                    submit(start, slot)
                yield from frames
        finally:  # the lease comes back once no worker writes into its slots any more
            _return_lease(workers, lease, [f for f, _, _ in pending])


def _return_lease(workers: _Workers, lease: int, futures: list[Future]) -> None:
    """Give ``lease`` back once all ``futures`` are done (no worker writes its slots then)."""
    remaining = set(futures)

    def done(future: Future | None) -> None:
        with workers.lock:
            remaining.discard(future)
            if not remaining:
                workers.free_leases.append(lease)

    for future in futures or [None]:
        if future is None:
            done(None)
        else:
            future.add_done_callback(done)


class RenderAheadFactory:
    """Makes each MP4 render's frame iterator: worker processes or threads.

    Args (the first four positional, as the pipeline's ``render_*`` settings):
        renderer: the renderer.
        threads: chunks rendered at once on threads (:class:`RenderAhead`), at least 1.
        processes: worker processes (0: threads only). A renderer that does not pickle renders
            on threads (logged once).
        min_frames: a clip at least this long starts the workers (in the background: it
            renders on threads itself, so its first frame does not wait for their start-up,
            about a second); once they are ready, every clip uses them.
        depth: frames rendered ahead of the consumer at most.
    """

    def __init__(
        self,
        renderer: Renderer,
        threads: int,
        processes: int,
        min_frames: int,
        /,
        *,
        depth: int = 8,
    ) -> None:
        if threads < 1:
            raise ConfigValueError(f"render_threads must be at least 1, got {threads}")
        if not 0 <= processes <= MAX_PROCESSES or min_frames < 0:
            raise ConfigValueError(
                f"render_processes must be in 0..{MAX_PROCESSES} and render_processes_min_frames"
                f" at least 0, got {processes} and {min_frames}"
            )
        self.renderer, self.threads, self.depth = renderer, int(threads), int(depth)
        self.processes, self.min_frames = int(processes), int(min_frames)
        self.pool: RenderPool | None = None
        if self.processes:
            try:
                pickle.dumps(renderer)
            except Exception as exc:  # noqa: BLE001 (any pickling failure means: threads)
                log.warning(
                    "%s does not pickle (%s): rendering on threads, not processes",
                    type(renderer).__name__,
                    exc,
                )
            else:
                window = max(self.processes, depth // max(int(renderer.chunk_frames), 1), 1)
                self.pool = RenderPool(renderer, processes=self.processes, window=window)

    def __call__(
        self,
        prepared: Prepared,
        motion: MotionTrack,
        audio: Audio | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> RenderAhead | ProcessRenderAhead:
        """The frames of ``motion`` (iterate once), with ``busy_s`` after the iteration."""
        args = (self.renderer, prepared, motion, audio)
        kwargs = {"threads": self.threads, "depth": self.depth, "cancel": cancel}
        if self.pool is not None:
            if self.pool.ready:
                return ProcessRenderAhead(*args, **kwargs, pool=self.pool)
            if len(motion) >= self.min_frames:
                self.pool.workers()  # launched now; ready for the next render, not this one
        return RenderAhead(*args, **kwargs)

    def close(self) -> None:
        """Stop the worker processes, if any (a later render starts them again)."""
        if self.pool is not None:
            self.pool.close()
