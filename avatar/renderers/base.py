"""The renderer contract: what every renderer implements and the only thing callers use.

::

    prepared = renderer.prepare(identity)                  # once per identity, shareable
    frames = renderer.render_chunk(prepared, values, audio)  # (T, C) -> (T, S, S, 3) uint8
    stream = renderer.open_stream(prepared)                # real time, stateful
    frames = stream.push(motion_chunk, audio_chunk)        # -> [RenderedFrame(image, index, t)]
    stream.reset(); stream.close()                         # interruption; end of the call

- ``size``: S, the side of the square RGB frames in pixels.
- ``prepare(identity)``: per-identity state (mesh-warp's fields, a network's source features on
  its device). Immutable once made: many threads may render from one ``Prepared`` at once, and
  the renderer itself keeps no per-identity cache (the pipeline caches ``Prepared``).
- ``render_chunk(prepared, values, audio)``: ``values`` is float32 (T, C) with one column per
  :data:`CHANNELS` name in that order (see :func:`channel_values`); ``audio`` is the companion's
  speech over exactly those T frames (an :class:`~avatar.audio.Audio`) or None. Returns
  (T, S, S, 3) uint8 RGB. Thread-safe; one call per chunk of ``chunk_frames`` frames, so a
  network batches on its device and callers can cancel between chunks.
- ``open_stream(prepared)``: a :class:`RendererStream`. ``push`` numbers frames from 0 and stamps
  them ``index / fps``; ``reset()`` drops any temporal state before the next frame (the user
  interrupted), numbering goes on; ``close()`` frees device memory.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from avatar.audio import Audio
from avatar.cancel import CancelToken
from avatar.identity.types import AvatarIdentity
from avatar.motion.track import CHANNELS, MotionTrack

__all__ = [
    "CHANNELS",
    "ChunkStream",
    "Prepared",
    "RenderedFrame",
    "Renderer",
    "RendererStream",
    "audio_span",
    "channel_values",
    "render_track",
]


@dataclass(frozen=True)
class RenderedFrame:
    """One output frame of a stream.

    Attributes:
        image: (S, S, 3) uint8 RGB.
        index: frame number from the start of the stream.
        timestamp: presentation time in seconds, ``index / fps``.
    """

    image: np.ndarray
    index: int
    timestamp: float


@dataclass(frozen=True)
class Prepared:
    """A renderer's per-identity state; renderers subclass it with their own fields.

    Attributes:
        key: the identity's content key (:attr:`AvatarIdentity.key`).
        size: S, the frame side in pixels it was prepared for.
    """

    key: str
    size: int


def channel_values(motion: MotionTrack) -> np.ndarray:
    """(T, len(CHANNELS)) float32 values of ``motion`` in :data:`CHANNELS` order (absent: 0)."""
    return motion.select(CHANNELS).values


def audio_span(audio: Audio | None, start: int, stop: int, fps: float) -> Audio | None:
    """The part of ``audio`` under frames ``[start, stop)`` at ``fps`` (None stays None)."""
    if audio is None:
        return None
    a = round(start * audio.sample_rate / fps)
    b = round(stop * audio.sample_rate / fps)
    return Audio(audio.samples[a:b], audio.sample_rate)


class RendererStream(abc.ABC):
    """A renderer's real-time stream of one identity (see the module docstring)."""

    @abc.abstractmethod
    def push(self, motion: MotionTrack, audio: Audio | None = None) -> list[RenderedFrame]:
        """Render the frames of a motion chunk (and its audio); returns them numbered."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Drop temporal state: the next frame starts afresh (an interruption)."""

    def close(self) -> None:  # noqa: B027 (a hook: streams that hold nothing need no close)
        """Release what the stream holds (device memory); the default holds nothing."""


class Renderer(abc.ABC):
    """Animates a prepared identity from motion channel values (and, if it wants, audio).

    Subclasses set :attr:`size` and implement :meth:`prepare` and :meth:`render_chunk`;
    :meth:`open_stream` defaults to :class:`ChunkStream` (right for renderers without temporal
    state; stateful ones override it).
    """

    size: int
    chunk_frames: ClassVar[int] = 1
    """Frames per :meth:`render_chunk` call the pipeline makes (a network's batch size)."""

    @abc.abstractmethod
    def prepare(self, identity: AvatarIdentity) -> Prepared:
        """Per-identity state for :meth:`render_chunk` (immutable, shareable across threads)."""

    @abc.abstractmethod
    def render_chunk(
        self, prepared: Prepared, values: np.ndarray, audio: Audio | None = None
    ) -> np.ndarray:
        """(T, len(CHANNELS)) float32 values (+ the chunk's audio) -> (T, S, S, 3) uint8 RGB."""

    def open_stream(self, prepared: Prepared) -> RendererStream:
        """A real-time stream of ``prepared``."""
        return ChunkStream(self, prepared)

    cache_name: ClassVar[str | None] = None
    """Names the prepared state's file beside the cached identity (with a format version), or
    None: :meth:`prepare` runs every time a process first sees an identity."""

    def prepared_arrays(self, prepared: Prepared) -> dict[str, np.ndarray]:
        """What :meth:`restore_prepared` needs of ``prepared`` (renderers with a cache_name)."""
        raise NotImplementedError(f"{type(self).__name__} does not cache its prepared state")

    def restore_prepared(self, identity: AvatarIdentity, arrays: dict[str, np.ndarray]) -> Prepared:
        """``prepare(identity)`` again from its :meth:`prepared_arrays`; raises ValueError
        (or KeyError) when they do not fit, and the caller then prepares afresh."""
        raise NotImplementedError(f"{type(self).__name__} does not cache its prepared state")


class ChunkStream(RendererStream):
    """A stream for renderers without temporal state: each push is one ``render_chunk``."""

    def __init__(self, renderer: Renderer, prepared: Prepared) -> None:
        self.renderer, self.prepared = renderer, prepared
        self.index = 0

    def push(self, motion: MotionTrack, audio: Audio | None = None) -> list[RenderedFrame]:
        if not len(motion):
            return []
        images = self.renderer.render_chunk(self.prepared, channel_values(motion), audio)
        out = [
            RenderedFrame(image, self.index + k, (self.index + k) / motion.fps)
            for k, image in enumerate(images)
        ]
        self.index += len(out)
        return out

    def reset(self) -> None:
        """Nothing to drop: frames depend only on their own motion values."""


def render_track(
    renderer: Renderer,
    prepared: Prepared,
    motion: MotionTrack,
    audio: Audio | None = None,
    *,
    cancel: CancelToken | None = None,
) -> Iterator[np.ndarray]:
    """Yield the (S, S, 3) uint8 frames of a whole track, ``renderer.chunk_frames`` per call.

    ``cancel`` is checked before every chunk, so a cancelled render stops within one chunk
    (one frame for mesh-warp) and raises :class:`~avatar.errors.Cancelled`.
    """
    values = channel_values(motion)
    step = max(int(renderer.chunk_frames), 1)
    for start in range(0, len(values), step):
        if cancel is not None:
            cancel.check()
        stop = min(start + step, len(values))
        chunk_audio = audio_span(audio, start, stop, motion.fps)
        yield from renderer.render_chunk(prepared, values[start:stop], chunk_audio)
