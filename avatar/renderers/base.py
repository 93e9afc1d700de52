"""The Renderer interface: identity + motion (+ audio) -> frames, in batch and streaming form."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from avatar.identity.types import AvatarIdentity
from avatar.motion.track import MotionTrack


@dataclass(frozen=True)
class RenderedFrame:
    """One output frame.

    Attributes:
        image: (S, S, 3) uint8 RGB.
        index: frame number from the start of the stream.
        timestamp: presentation time in seconds, ``index / fps``.
    """

    image: np.ndarray
    index: int
    timestamp: float


class Renderer(abc.ABC):
    """Animates an :class:`AvatarIdentity` from a :class:`MotionTrack`.

    Subclasses implement :meth:`render`; :meth:`stream` is derived from it and is what the
    real-time path uses: motion arrives in chunks and frames leave with their timestamps.
    Audio is passed through for audio-driven (neural) renderers and may be ignored.
    """

    @abc.abstractmethod
    def render(
        self,
        identity: AvatarIdentity,
        motion: MotionTrack,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield one (S, S, 3) uint8 RGB frame per motion frame, in order."""

    def stream(
        self,
        identity: AvatarIdentity,
        chunks: Iterable[MotionTrack],
        *,
        start_index: int = 0,
    ) -> Iterator[RenderedFrame]:
        """Render motion chunks as they arrive; frames carry index and timestamp (seconds).

        Chunks must share one fps. Frames are yielded as soon as each is rendered, so the
        latency of a chunk is the render time of its first frame.
        """
        index = start_index
        fps: float | None = None
        for chunk in chunks:
            if fps is None:
                fps = chunk.fps
            elif chunk.fps != fps:
                raise ValueError(f"stream: chunk fps {chunk.fps} differs from {fps}")
            for image in self.render(identity, chunk):
                yield RenderedFrame(image=image, index=index, timestamp=index / fps)
                index += 1

    def render_array(
        self,
        identity: AvatarIdentity,
        motion: MotionTrack,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
    ) -> np.ndarray:
        """All frames as one (T, S, S, 3) uint8 array (for short clips and tests)."""
        frames = list(self.render(identity, motion, audio, sample_rate))
        if not frames:
            return np.zeros((0, identity.size, identity.size, 3), np.uint8)
        return np.stack(frames)
