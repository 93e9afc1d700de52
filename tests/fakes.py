"""Test doubles shared by the suite (import as ``tests.fakes``); each says what it stands in for.

- :class:`FakeRenderer`: a renderer with no face at all, whose frames encode their motion
  values and audio, so a test can read back what reached the renderer. Stands in for a trained
  neural renderer (no such weights ship); it follows the contract of
  :mod:`avatar.renderers.base` to the letter, including a stateful stream.
- :class:`CountingRenderer`: wraps a real renderer and counts the frames it was asked for, and
  can cancel a token when a given frame starts (a client leaving mid-render).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from avatar.audio import Audio
from avatar.cancel import CancelToken
from avatar.identity.types import AvatarIdentity
from avatar.motion.track import CHANNELS, MotionTrack
from avatar.renderers.base import (
    ChunkStream,
    Prepared,
    RenderedFrame,
    Renderer,
    RendererStream,
    channel_values,
)


@dataclass(frozen=True)
class FakePrepared(Prepared):
    """The fake's per-identity state: the portrait's mean colour (RGB floats)."""

    colour: tuple[float, float, float]


class FakeRenderer(Renderer):
    """Frames filled with values a test can decode (a stand-in for a neural renderer).

    Grey levels survive H.264: the top half holds three bands, the frame's first 3 channel
    values * 100 + 128 (jaw_open, lip_open, mouth_stretch); the bottom quarter the chunk's
    audio RMS * 255 (0 without audio); the rest is the identity's mean colour.

    Args:
        size: S (at least 32).
        chunk_frames: frames per ``render_chunk`` call the pipeline makes.
    """

    def __init__(self, *, size: int, chunk_frames: int = 1) -> None:
        self.size = size
        self.chunk_frames = chunk_frames
        self.audio_samples = 0  # audio samples received, over all calls
        self.calls = 0
        self._lock = threading.Lock()

    def prepare(self, identity: AvatarIdentity) -> FakePrepared:
        mean = identity.portrait.reshape(-1, 3).mean(axis=0)
        return FakePrepared(identity.key, self.size, tuple(float(c) for c in mean))

    def render_chunk(
        self, prepared: Prepared, values: np.ndarray, audio: Audio | None = None
    ) -> np.ndarray:
        assert isinstance(prepared, FakePrepared)
        assert values.shape[1] == len(CHANNELS)
        with self._lock:
            self.calls += 1
            self.audio_samples += 0 if audio is None else len(audio.samples)
        s, third = self.size, self.size // 3
        out = np.empty((len(values), s, s, 3), np.uint8)
        out[:] = np.round(prepared.colour).astype(np.uint8)
        levels = np.clip(np.round(values[:, :3] * 100 + 128), 0, 255).astype(np.uint8)
        for k in range(3):
            out[:, : s // 2, k * third : (k + 1) * third, :] = levels[:, k, None, None, None]
        rms = 0.0 if audio is None or not len(audio.samples) else np.sqrt(np.mean(audio.mono**2))
        out[:, 3 * s // 4 :, :, :] = np.uint8(min(round(float(rms) * 255), 255))
        return out

    def open_stream(self, prepared: Prepared) -> RendererStream:
        return FakeStream(self, prepared)


class FakeStream(ChunkStream):
    """A stateful stream: frames carry how many frames it rendered since the last reset
    (pixel (S - 1, 0), red), as a temporal network's hidden state would."""

    def __init__(self, renderer: FakeRenderer, prepared: Prepared) -> None:
        super().__init__(renderer, prepared)
        self.since_reset = 0
        self.closed = False

    def push(self, motion: MotionTrack, audio: Audio | None = None) -> list[RenderedFrame]:
        frames = super().push(motion, audio)
        for frame in frames:
            frame.image[-1, 0, 0] = min(self.since_reset, 255)
            self.since_reset += 1
        return frames

    def reset(self) -> None:
        self.since_reset = 0

    def close(self) -> None:
        self.closed = True


def decode_fake_frame(frame: np.ndarray) -> tuple[np.ndarray, float]:
    """What a :class:`FakeRenderer` frame carries: the (3,) first channel values and the
    audio RMS of its chunk (medians over their bands, so an H.264 round trip reads back)."""
    s, third = frame.shape[0], frame.shape[0] // 3
    grey = frame.astype(np.float32).mean(axis=2)
    values = [np.median(grey[: s // 2, k * third : (k + 1) * third]) for k in range(3)]
    return (np.asarray(values) - 128) / 100, float(np.median(grey[3 * s // 4 :])) / 255


class CountingRenderer(Renderer):
    """Wraps ``inner`` and counts frames (a probe, not a fake: frames are ``inner``'s own).

    Args:
        inner: the real renderer.
        cancel_at: with ``token``, cancel the token when this frame (0-based) starts.
        token: the token to cancel.
    """

    def __init__(
        self, inner: Renderer, *, cancel_at: int | None = None, token: CancelToken | None = None
    ) -> None:
        self.inner, self.size, self.chunk_frames = inner, inner.size, inner.chunk_frames
        self.cancel_at, self.token = cancel_at, token
        self.frames = 0
        self.frames_after_cancel = 0
        self._lock = threading.Lock()

    def prepare(self, identity: AvatarIdentity) -> Prepared:
        return self.inner.prepare(identity)

    def render_chunk(
        self, prepared: Prepared, values: np.ndarray, audio: Audio | None = None
    ) -> np.ndarray:
        with self._lock:
            if self.token is not None and self.token.cancelled:
                self.frames_after_cancel += len(values)
            if self.token is not None and self.cancel_at is not None:
                if self.frames <= self.cancel_at < self.frames + len(values):
                    self.token.cancel("the client left")
            self.frames += len(values)
        return self.inner.render_chunk(prepared, values, audio)


def motion_ramp(n_frames: int, fps: float = 25.0) -> MotionTrack:
    """A track whose jaw opens linearly from 0 to 1 (other channels at rest)."""
    track = MotionTrack.zeros(n_frames, fps)
    track.set("jaw_open", np.linspace(0.0, 1.0, n_frames))
    return track


__all__ = [
    "CountingRenderer",
    "FakeNeuralRenderer",
    "FakePrepared",
    "FakeRenderer",
    "FakeStream",
    "channel_values",
    "decode_fake_frame",
    "motion_ramp",
    "TinyFrameNet",
]


class TinyFrameNet(nn.Module):
    """A stand-in for a trained renderer network: channel values -> an RGB colour."""

    def __init__(self, *, n_channels: int) -> None:
        super().__init__()
        self.config = {"n_channels": n_channels}
        self.head = nn.Linear(n_channels, 3)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(values))  # (T, 3) in [0, 1]


class FakeNeuralRenderer(Renderer):
    """A network renderer in miniature (stands in for one trained with Lightning): it holds a
    network on ``device`` and paints each frame the colour the network gives its values."""

    def __init__(self, *, size: int, net: nn.Module, device: str = "cpu") -> None:
        self.size, self.device = size, device
        self.net = net.to(device).eval()

    def prepare(self, identity: AvatarIdentity) -> Prepared:
        return Prepared(identity.key, self.size)

    def render_chunk(
        self, prepared: Prepared, values: np.ndarray, audio: Audio | None = None
    ) -> np.ndarray:
        with torch.inference_mode():
            rgb = self.net(torch.from_numpy(np.asarray(values, np.float32)).to(self.device))
        colours = np.round(rgb.cpu().numpy() * 255).astype(np.uint8)  # (T, 3)
        return np.broadcast_to(colours[:, None, None, :], (len(values), self.size, self.size, 3))


class SlowRenderer(CountingRenderer):
    """A :class:`CountingRenderer` that can hold, slow down or fail a render, so that requests
    overlap, time out or break at a known frame (a probe: frames are ``inner``'s own).

    Args:
        inner: the real renderer.
        delay_s: seconds to sleep per frame.
        gate: with ``hold_at``, chunks from frame ``hold_at`` on wait until this is set.
        hold_at: the first frame (0-based) that waits for ``gate``.
        fail_at: raise ``RuntimeError`` when this frame starts (a renderer bug mid-render).

    Attributes:
        started: set when the first chunk starts.
        holding: set while a chunk waits for ``gate``.
    """

    def __init__(
        self,
        inner: Renderer,
        *,
        delay_s: float = 0.0,
        gate: threading.Event | None = None,
        hold_at: int = 0,
        fail_at: int | None = None,
    ) -> None:
        super().__init__(inner)
        self.delay_s, self.gate, self.hold_at, self.fail_at = delay_s, gate, hold_at, fail_at
        self.started, self.holding = threading.Event(), threading.Event()

    def render_chunk(
        self, prepared: Prepared, values: np.ndarray, audio: Audio | None = None
    ) -> np.ndarray:
        self.started.set()
        end = self.frames + len(values)
        if self.fail_at is not None and self.frames <= self.fail_at < end:
            raise RuntimeError(f"renderer failed at frame {self.fail_at} (as asked)")
        if self.gate is not None and end > self.hold_at:
            self.holding.set()
            self.gate.wait(timeout=60)  # bounded: a test that forgets the gate still ends
            self.holding.clear()
        if self.delay_s:
            time.sleep(self.delay_s * len(values))
        return super().render_chunk(prepared, values, audio)


__all__ += ["SlowRenderer"]


def pipeline_with(pipeline, renderer):
    """The same stages with another renderer (and its own identity store)."""
    from avatar.pipeline import Pipeline

    return Pipeline(
        voices=pipeline.voices,
        aligner=pipeline.aligner,
        motion=pipeline.motion,
        renderer=renderer,
        encoder=pipeline.encoder,
        identity=pipeline.identities.settings,
        identities_in_memory=2,
        learned=lambda: pipeline.learned,
        streaming=pipeline.streaming,
        render_threads=pipeline.render_ahead.threads,
        render_processes=pipeline.render_ahead.processes,
        render_processes_min_frames=pipeline.render_ahead.min_frames,
        long_text=pipeline.long_text,
    )


__all__ += ["pipeline_with"]


class TrippingRenderer(Renderer):
    """Wraps ``inner`` and breaks on the first frame whose jaw_open reaches ``at`` (with
    :func:`motion_ramp`, a known frame): ``how="raise"`` raises ``RuntimeError`` (a renderer
    bug), ``how="exit"`` ends the process at once (a crash). Holds no lock, so it pickles into
    render worker processes (a probe: other frames are ``inner``'s own).
    """

    def __init__(self, inner: Renderer, *, at: float, how: str) -> None:
        self.inner, self.size, self.chunk_frames = inner, inner.size, inner.chunk_frames
        self.at, self.how = at, how

    def prepare(self, identity: AvatarIdentity) -> Prepared:
        return self.inner.prepare(identity)

    def render_chunk(
        self, prepared: Prepared, values: np.ndarray, audio: Audio | None = None
    ) -> np.ndarray:
        if float(values[:, CHANNELS.index("jaw_open")].max()) >= self.at:
            if self.how == "exit":
                import os

                os._exit(3)
            raise RuntimeError(f"jaw_open reached {self.at} (as asked)")
        return self.inner.render_chunk(prepared, values, audio)


__all__ += ["TrippingRenderer"]
