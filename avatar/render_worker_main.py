"""The loop that runs inside a render worker process (:mod:`avatar.render_workers` owns them).

Kept apart from the pool so that a spawned worker imports only what rendering needs: NumPy, the
renderer's own modules (unpickled with it) and this.
"""

from __future__ import annotations

import time
import traceback
from collections import OrderedDict
from multiprocessing import shared_memory

import numpy as np

from avatar.errors import AvatarError
from avatar.renderers.base import Prepared

__all__ = ["KEEP_PREPARED", "READY", "WorkerTraceback", "worker_main"]

READY = -1
"""The job id of the message a worker sends once it is running (real job ids are >= 0)."""

KEEP_PREPARED = 4
"""Identities' prepared states a worker keeps, least recently used dropped (the parent mirrors
this order to know what each worker holds)."""


class WorkerTraceback(Exception):
    """The traceback of an exception raised in a worker (the ``__cause__`` of the re-raise)."""


def worker_main(renderer, tasks, results, shm_name: str, slots_shape: tuple) -> None:
    """A worker's loop over its ``tasks`` pipe: ``("prepared", key, state)`` and ``("job", ...)``
    messages until None; a job's frames go into its slot, ``(job id, error, traceback, busy
    seconds)`` into ``results`` (first ``READY``, once); the shared block is (slots,
    chunk_frames, S, S, 3) uint8."""
    shm = shared_memory.SharedMemory(name=shm_name)
    results.send((READY, None, "", 0.0))  # imported and unpickled: jobs are worth sending now
    prepared: OrderedDict[str, Prepared] = OrderedDict()
    slot_bytes = int(np.prod(slots_shape[1:]))
    try:
        while True:
            try:
                msg = tasks.recv()
            except EOFError:  # the parent went away
                break
            if msg is None:
                break
            if msg[0] == "prepared":
                prepared[msg[1]] = msg[2]
                while len(prepared) > KEEP_PREPARED:
                    prepared.popitem(last=False)
                continue
            _, job_id, key, slot, values, audio = msg
            t0 = time.perf_counter()
            try:
                state = prepared[key]
                prepared.move_to_end(key)
                frames = np.asarray(renderer.render_chunk(state, values, audio))
                shape = (len(values), *slots_shape[2:])
                if frames.shape != shape or frames.dtype != np.uint8:
                    raise AvatarError(
                        f"{type(renderer).__name__}.render_chunk returned {frames.dtype} "
                        f"{frames.shape}, expected uint8 {shape}"
                    )
                view = np.ndarray(shape, np.uint8, shm.buf, offset=slot * slot_bytes)
                view[:] = frames
                del view
                results.send((job_id, None, "", time.perf_counter() - t0))
            except Exception as exc:  # noqa: BLE001 (re-raised in the consumer)
                text = traceback.format_exc()
                try:
                    results.send((job_id, exc, text, time.perf_counter() - t0))
                except Exception:  # noqa: BLE001 (the exception does not pickle)
                    error = AvatarError(f"{type(exc).__name__}: {exc}")
                    results.send((job_id, error, text, time.perf_counter() - t0))
    finally:
        shm.close()
