"""Speech audio -> motion -> frames, chunk by chunk: the real-time core (and its offline twin).

The mouth comes from the learned audio-to-motion model (:mod:`avatar.motion.learned`), gated
closed in silence; everything else (blinks, breathing, head sway, saccades, the mood) comes
from a behaviour track the :class:`~avatar.motion.generate.MotionGenerator` makes for
silence, looped. :func:`learned_track` runs the same steps over a whole recording, so the
streamed frames equal the offline ones (the network's streaming and offline outputs differ
by < 1e-5; rendered frames are identical in the tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar.errors import AudioFormatError, WeightsMissingError
from avatar.identity.types import AvatarIdentity
from avatar.media import StreamResampler, resample_stream
from avatar.motion.generate import MotionGenerator
from avatar.motion.track import MOUTH_CHANNELS, MotionTrack
from avatar.renderers.base import RenderedFrame
from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline

log = logging.getLogger(__name__)


@dataclass
class MouthGate:
    """Closes the mouth in silence, frame by frame (causal, stateful).

    A frame whose audio stays ``silence_db`` below ``reference_dbfs`` for longer than
    ``hold_s`` is silent; the gate then falls to 0 over ``ramp_s`` and rises again as soon as
    sound returns, so closures never cut into speech.
    """

    fps: float
    silence_db: float
    reference_dbfs: float
    hold_s: float
    ramp_s: float
    value: float = 1.0
    quiet_frames: int = 0

    def __call__(self, frame_audio: np.ndarray) -> float:
        """Gate in [0, 1] for one frame's (S,) float32 audio."""
        rms = (
            float(np.sqrt(np.mean(np.square(frame_audio, dtype=np.float64))))
            if len(frame_audio)
            else 0.0
        )
        level = 20.0 * np.log10(max(rms, 1e-9))
        quiet = level < self.reference_dbfs + self.silence_db
        self.quiet_frames = self.quiet_frames + 1 if quiet else 0
        step = 1.0 / max(self.ramp_s * self.fps, 1.0)
        if not quiet:
            self.value = 1.0
        elif self.quiet_frames > self.hold_s * self.fps:
            self.value = max(self.value - step, 0.0)
        return self.value


def behaviour_track(motion: MotionGenerator, seconds: float) -> MotionTrack:
    """Non-verbal motion for ``seconds`` of silence (mouth channels all 0), to be looped."""
    n = int(round(seconds * motion.fps))
    timeline = PhonemeTimeline([Phone(SILENCE, 0.0, seconds)], duration=seconds)
    return motion.generate(timeline, np.zeros(int(seconds * 16000), np.float32), 16000, n)


def compose_frame(behaviour: MotionTrack, index: int, mouth: np.ndarray, gate: float) -> dict:
    """Channel values of frame ``index``: looped behaviour plus the gated (7,) mouth."""
    row = behaviour.values[index % len(behaviour)]
    values = dict(zip(behaviour.channels, row.tolist(), strict=True))
    for name, value in zip(MOUTH_CHANNELS, np.clip(mouth, -1.0, 1.0).tolist(), strict=True):
        values[name] = values.get(name, 0.0) + gate * value
    return values


class StreamingSession:
    """A companion speaking in real time: push its audio, get frames with timestamps.

    Args:
        identity: the companion's identity.
        render_frame: ``(identity, channel values) -> (S, S, 3) uint8`` (a renderer's).
        learned: the audio-to-motion model (:class:`avatar.motion.learned.LearnedMotion`).
        behaviour: the looped non-verbal track (:func:`behaviour_track`).
        gate: a fresh :class:`MouthGate`.
    """

    def __init__(
        self,
        *,
        identity: AvatarIdentity,
        render_frame: Callable[[AvatarIdentity, dict], np.ndarray],
        learned,
        behaviour: MotionTrack,
        gate: MouthGate,
    ) -> None:
        self.identity = identity
        self.render_frame = render_frame
        self.learned = learned
        self.behaviour = behaviour
        self.fps = behaviour.fps
        self._gate_proto = gate
        self.frame_index = 0
        self.reset()

    def reset(self) -> None:
        """Forget pending audio (an interruption): the next push starts a new utterance."""
        self._stream = self.learned.stream()
        self._resampler: StreamResampler | None = None
        self._audio = np.zeros(0, np.float32)  # model-rate audio not yet matched to frames
        self._gate = MouthGate(
            **{
                k: getattr(self._gate_proto, k)
                for k in ("fps", "silence_db", "reference_dbfs", "hold_s", "ramp_s")
            }
        )

    def _frames(self, mouths: list[np.ndarray]) -> list[RenderedFrame]:
        spf = int(round(self.learned.sample_rate / self.fps))
        out = []
        for mouth in mouths:
            frame_audio, self._audio = self._audio[:spf], self._audio[spf:]
            gate = self._gate(frame_audio)
            values = compose_frame(self.behaviour, self.frame_index, mouth, gate)
            image = self.render_frame(self.identity, values)
            out.append(RenderedFrame(image, self.frame_index, self.frame_index / self.fps))
            self.frame_index += 1
        return out

    def push_audio(self, chunk: np.ndarray, sample_rate: int) -> list[RenderedFrame]:
        """Feed (S,) float32 mono speech (20 ms chunks typical); returns the frames it completes.

        Audio at another rate than the model's goes through a stream resampler whose output
        does not depend on the chunking. All chunks of an utterance share one rate.
        """
        if self._resampler is None:
            self._resampler = StreamResampler(sample_rate, self.learned.sample_rate)
        elif self._resampler.src_rate != sample_rate:
            raise AudioFormatError(
                f"chunk at {sample_rate} Hz in an utterance at {self._resampler.src_rate} Hz"
            )
        return self._model_audio(self._resampler.push(chunk))

    def _model_audio(self, audio: np.ndarray) -> list[RenderedFrame]:
        self._audio = np.concatenate([self._audio, audio])
        return self._frames(self._stream.push(audio))

    def flush(self) -> list[RenderedFrame]:
        """End of the utterance: emit the frames still waiting for look-ahead audio."""
        frames = self._model_audio(self._resampler.flush()) if self._resampler else []
        frames += self._frames(self._stream.flush())
        self.reset()
        return frames

    def idle(self, n_frames: int) -> list[RenderedFrame]:
        """``n_frames`` of silence (listening or idle: mouth closed, behaviour going on)."""
        zero = np.zeros(len(MOUTH_CHANNELS), np.float32)
        out = []
        for _ in range(n_frames):
            values = compose_frame(self.behaviour, self.frame_index, zero, 0.0)
            image = self.render_frame(self.identity, values)
            out.append(RenderedFrame(image, self.frame_index, self.frame_index / self.fps))
            self.frame_index += 1
        return out


def learned_loader(*, ckpt_path: str) -> Callable[[], object]:
    """A loader for the audio-to-motion checkpoint that imports torch only when called."""

    def load() -> object:
        if not Path(ckpt_path).is_file():
            raise WeightsMissingError(
                f"audio-to-motion checkpoint {ckpt_path} is missing: train it with "
                "`python -m avatar.train experiment=audio2motion` (config key `learned.ckpt_path`)"
            )
        try:
            from avatar.motion.learned import LearnedMotion
        except ImportError as e:
            raise WeightsMissingError(
                f"the learned mouth needs torch ({e}); install the project with `.[train]`"
            ) from None
        return LearnedMotion.load(ckpt_path)

    return load


def learned_track(
    learned,
    behaviour: MotionTrack,
    gate: MouthGate,
    audio: np.ndarray,
    sample_rate: int,
    n_frames: int,
) -> MotionTrack:
    """The offline twin of :class:`StreamingSession`: the whole recording at once.

    Returns:
        A MotionTrack of ``n_frames`` frames (behaviour channels + gated learned mouth).
    """
    model_audio = resample_stream(np.asarray(audio, np.float32), sample_rate, learned.sample_rate)
    mouths = learned.predict(model_audio, learned.sample_rate)
    spf = int(round(learned.sample_rate / behaviour.fps))
    values = np.zeros((n_frames, len(behaviour.channels)), np.float32)
    for k in range(n_frames):
        mouth = mouths[k] if k < len(mouths) else np.zeros(len(MOUTH_CHANNELS), np.float32)
        g = gate(model_audio[k * spf : (k + 1) * spf])
        row = compose_frame(behaviour, k, mouth, g)
        values[k] = [row[c] for c in behaviour.channels]
    return MotionTrack(values, behaviour.channels, behaviour.fps)
