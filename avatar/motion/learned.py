"""LearnedMotion: the trained audio-to-motion model for any speech, offline and streaming.

Loads a checkpoint written by :class:`avatar.lit.audio2motion_module.Audio2MotionLitModule`
(or exported from one with :func:`avatar.checkpoint.export_checkpoint`) with nothing but torch:
the checkpoint carries the network's resolved constructor arguments
(:mod:`avatar.checkpoint`), so ``configs/`` is not needed.

Streaming and offline agree: :meth:`StreamingState.push` feeds 20 ms chunks (any size works)
through the same causal network with its convolution history and GRU state kept between
calls, and :meth:`StreamingState.flush` pads the end with silence exactly as
:meth:`LearnedMotion.predict` does. Measured difference: max abs < 1e-5 (float32, CPU).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from avatar.audio import resample
from avatar.checkpoint import load_network
from avatar.errors import ConfigValueError
from avatar.modules.audio2motion import Audio2Motion, NetState

log = logging.getLogger(__name__)

STREAMING_RUNTIMES = ("onnxruntime", "torch")


class LearnedMotion:
    """Speech audio -> mouth channels at the video rate with the trained network.

    Args:
        net: a trained :class:`Audio2Motion` (put in eval mode here).
        streaming_runtime: what runs the network's causal part in :meth:`stream`:
            ``onnxruntime`` (:class:`~avatar.motion.onnx_hidden.OnnxHidden`, about 6x less
            per-call overhead; PyTorch when onnxruntime is not installed) or ``torch``.
            Offline :meth:`predict` always uses PyTorch.
    """

    def __init__(self, net: Audio2Motion, *, streaming_runtime: str) -> None:
        if streaming_runtime not in STREAMING_RUNTIMES:
            raise ConfigValueError(
                f"learned.streaming_runtime must be one of {list(STREAMING_RUNTIMES)}, "
                f"got {streaming_runtime!r}"
            )
        self.net = net.eval()
        self.sample_rate: int = net.features.sample_rate
        self.fps: float = self.sample_rate / net.samples_per_frame
        self.streaming_runtime = streaming_runtime
        self._hidden: Callable[[torch.Tensor, NetState], Any] | None = None  # on first stream()
        self._hidden_lock = threading.Lock()

    def _streaming_step(self, runtime: str) -> Callable[[torch.Tensor, NetState], Any]:
        if runtime == "onnxruntime":
            try:
                from avatar.motion.onnx_hidden import OnnxHidden

                return OnnxHidden(self.net)
            except ImportError as exc:
                log.warning("onnxruntime unavailable (%s): streaming on PyTorch", exc)
        return self.net.hidden

    @classmethod
    def load(cls, ckpt_path: str | os.PathLike, *, streaming_runtime: str) -> LearnedMotion:
        """Load a Lightning or exported checkpoint (CPU tensors, no ``configs/`` needed).

        Raises:
            WeightsMissingError: the file is absent, is not a checkpoint of
                :mod:`avatar.checkpoint`'s format, holds another network than
                :class:`Audio2Motion`, or weights that do not fit its stored config.
        """
        net = load_network(ckpt_path, expected=Audio2Motion)
        log.debug("loaded audio2motion from %s", ckpt_path)
        return cls(net, streaming_runtime=streaming_runtime)

    @property
    def latency_s(self) -> float:
        """Look-ahead of the model: audio needed past a frame's end before it is emitted."""
        return self.net.lookahead_s

    def _audio(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        audio = np.asarray(audio, np.float32)
        if audio.ndim != 1:
            raise ValueError(f"need mono (S,) audio, got shape {audio.shape}")
        return resample(audio, sample_rate, self.sample_rate)

    @torch.inference_mode()
    def predict_all(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """Offline: ``(T, 7)`` mouth channels and ``(T, 14)`` viseme probabilities.

        Args:
            audio: ``(S,)`` float mono in [-1, 1].
            sample_rate: rate of ``audio``, Hz (resampled to the model's rate).

        Returns:
            float32 arrays for ``T = ceil(duration * fps)`` frames at :attr:`fps`.
        """
        x = torch.from_numpy(self._audio(audio, sample_rate))[None]
        mouth, logits = self.net(x)
        return mouth[0].numpy(), torch.softmax(logits[0], -1).numpy()

    def predict(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Offline: ``(T, 7)`` float32 mouth channels (MOUTH_CHANNELS order) at :attr:`fps`."""
        return self.predict_all(audio, sample_rate)[0]

    def stream(self) -> StreamingState:
        """A fresh stream; feed it audio at the model's :attr:`sample_rate`.

        The first call prepares the streaming step (for ONNX Runtime, an export of about
        0.4 s), once per model, whichever thread asks first.
        """
        with self._hidden_lock:
            if self._hidden is None:
                self._hidden = self._streaming_step(self.streaming_runtime)
        return StreamingState(self.net, hidden=self._hidden)


class StreamingState:
    """Chunked inference with the conv history, GRU state and pending hops kept between calls.

    Audio must be at the model's rate (16 kHz). Each :meth:`push` returns the frames completed
    by that chunk; a frame is emitted once its audio and the look-ahead have arrived.
    """

    def __init__(
        self,
        net: Audio2Motion,
        *,
        hidden: Callable[[torch.Tensor, NetState], Any] | None = None,
    ) -> None:
        self.net = net
        self._hidden = hidden or net.hidden  # the causal part (PyTorch or ONNX Runtime)
        self._hop = net.features.hop_length
        self._context = net.features.context
        self._buf = np.zeros(self._context, np.float32)  # history + not yet framed samples
        self._state: NetState = net.initial_state(1)
        self._skip = net.lookahead  # delayed hops still to drop
        self._hops: list[torch.Tensor] = []  # (H,) per hop not yet pooled into a frame
        self.n_samples = 0  # audio received
        self.n_frames = 0  # frames emitted

    @torch.inference_mode()
    def push(self, chunk: np.ndarray) -> list[np.ndarray]:
        """Feed ``(S,)`` float32 audio (20 ms = 320 samples typical); returns new (7,) frames."""
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self.n_samples += len(chunk)
        self._buf = np.concatenate([self._buf, chunk])
        n = (len(self._buf) - self._context) // self._hop  # complete new hops
        if n <= 0:
            return []
        used = self._context + n * self._hop
        x = torch.from_numpy(self._buf[:used].copy())[None]
        self._buf = self._buf[used - self._context :]
        h, self._state = self._hidden(self.net.features.frames(x), self._state)  # (1, n, H)
        hops = list(h[0])
        drop = min(self._skip, len(hops))
        self._skip -= drop
        self._hops.extend(hops[drop:])
        k = self.net.hops_per_frame
        n_new = len(self._hops) // k
        if n_new == 0:
            return []
        frames = torch.stack(self._hops[: n_new * k])[None]  # (1, n_new * k, H)
        self._hops = self._hops[n_new * k :]
        mouth, _ = self.net.heads(self.net.pool(frames))
        self.n_frames += n_new
        return list(mouth[0].numpy())

    def flush(self) -> list[np.ndarray]:
        """End of speech: pad with silence so every frame of the received audio is emitted."""
        spf = self.net.samples_per_frame
        total = -(-self.n_samples // spf) * spf + self.net.lookahead * self._hop
        received = self.n_samples
        frames = self.push(np.zeros(max(total - received, 0), np.float32))
        self.n_samples = received
        return frames
