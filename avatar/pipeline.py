"""The one place that chains the stages: companion -> identity, text/audio -> speech -> motion
-> frames -> MP4. ``serve/``, ``evals/`` and notebooks call this instead of re-chaining.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from avatar.companion import CompanionSpec, load_companion
from avatar.errors import AvatarError, ConfigValueError
from avatar.identity.derive import derive_identity
from avatar.identity.types import AvatarIdentity
from avatar.media import Mp4Writer, frame_count, read_audio
from avatar.motion.emotion import EmotionEvent, check_emotion, parse_tags, tag_events
from avatar.motion.generate import MotionGenerator
from avatar.motion.track import MotionTrack
from avatar.renderers.base import Renderer
from avatar.speech.timeline import PhonemeTimeline
from avatar.speech.tts import Speech, TextToSpeech
from avatar.streaming import MouthGate, StreamingSession, behaviour_track, learned_track

log = logging.getLogger(__name__)


class Aligner(Protocol):
    """Phone timings of given speech (see :mod:`avatar.speech.aligner`)."""

    def timeline(
        self, audio: np.ndarray, sample_rate: int, transcript: str | None = None
    ) -> PhonemeTimeline: ...


@dataclass(frozen=True)
class Audio:
    """Audio as given: ``samples`` (S,) mono or (S, C) float32 in [-1, 1] at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int

    @property
    def mono(self) -> np.ndarray:
        """(S,) float32 mono mix."""
        s = np.asarray(self.samples, np.float32)
        return s.mean(axis=1) if s.ndim == 2 else s

    @property
    def channels(self) -> int:
        return 1 if np.ndim(self.samples) == 1 else int(np.shape(self.samples)[1])

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @classmethod
    def read(cls, path: str | Path) -> Audio:
        """Read any common audio file, keeping its rate and channels (up to 2)."""
        samples, rate = read_audio(path, mono=False)
        if samples.ndim == 2 and samples.shape[1] == 1:
            samples = samples[:, 0]
        return cls(samples, rate)


@dataclass(frozen=True)
class StreamingSettings:
    """The learned-mouth path (real-time sessions and its offline twin)."""

    behaviour_seconds: float = 60.0  # length of the looped non-verbal track
    silence_db: float = -35.0  # below reference_dbfs by this much is silence
    reference_dbfs: float = -20.0  # typical speech level of the incoming audio
    hold_s: float = 0.15  # silence this long closes the mouth
    ramp_s: float = 0.08  # closing ramp


@dataclass(frozen=True)
class EncoderSettings:
    """H.264/AAC settings of written MP4s."""

    crf: int
    preset: str
    audio_bitrate: int


@dataclass(frozen=True)
class IdentitySettings:
    """How identities are derived (see :func:`avatar.identity.derive.derive_identity`)."""

    cache_dir: str | None
    use_cache: bool
    min_eye_distance_px: float
    multiple_faces: str


@dataclass
class RenderResult:
    """What :meth:`Pipeline.render_speech` produced.

    Attributes:
        path: the written MP4.
        n_frames: video frames written.
        fps: frames per second.
        audio_seconds: length of the speech, seconds.
        timings: seconds per stage (``tts``, ``identity``, ``motion``, ``render``,
            ``encode``; render and encode overlap, each in its own thread), ``first_frame``
            (from the start of the request) and ``total`` (wall seconds, end to end).
        identity: the identity used.
        motion: the motion track rendered.
        speech: the speech (audio, rate, timeline).
    """

    path: Path
    n_frames: int
    fps: float
    audio_seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    identity: AvatarIdentity | None = None
    motion: MotionTrack | None = None
    speech: Speech | None = None

    @property
    def real_time_factor(self) -> float:
        """End-to-end wall seconds per second of audio (lower is faster)."""
        return self.timings.get("total", float("nan")) / max(self.audio_seconds, 1e-9)


class _RenderAhead:
    """Runs a frame iterator in a worker thread, a few frames ahead of the consumer.

    Rendering (OpenCV, NumPy) and H.264 encoding both release the GIL, so on two cores they
    overlap. Exceptions in the worker are re-raised in the consumer; stopping early (an error
    while encoding) stops the worker.
    """

    _DONE = object()

    def __init__(self, frames: Iterator[np.ndarray], depth: int = 4) -> None:
        self._frames = frames
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.busy_s = 0.0
        self._thread = threading.Thread(target=self._work, name="render-ahead", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            t0 = time.perf_counter()
            for frame in self._frames:
                self.busy_s += time.perf_counter() - t0
                while not self._stop.is_set():
                    try:
                        self._queue.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
                t0 = time.perf_counter()
            self._queue.put(self._DONE)
        except BaseException as e:  # handed to the consumer, which re-raises it
            self._queue.put(e)

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


class Pipeline:
    """Chains the stages with injected components (built from Hydra config at entry points).

    Args:
        tts: text-to-speech backend.
        aligner: phone timings of given speech (None: audio input is refused).
        motion: motion generator (its ``fps`` is the video's).
        renderer: frame renderer; its ``size`` is the render size.
        encoder: MP4 settings.
        identity: identity-derivation settings.
        learned: loads the audio-to-motion model when first needed (keeps torch out of the
            text path); None: the learned mouth is unavailable.
        streaming: settings of the real-time session and the learned-mouth path.
    """

    def __init__(
        self,
        *,
        tts: TextToSpeech,
        aligner: Aligner | None = None,
        motion: MotionGenerator,
        renderer: Renderer,
        encoder: EncoderSettings,
        identity: IdentitySettings,
        learned: Callable[[], Any] | None = None,
        streaming: StreamingSettings | None = None,
    ) -> None:
        self.tts = tts
        self.aligner = aligner
        self.motion = motion
        self.renderer = renderer
        self.encoder = encoder
        self.identity_settings = identity
        self._load_learned = learned
        self._learned: Any = None
        self._behaviour_cache: MotionTrack | None = None
        self.streaming = streaming

    @property
    def size(self) -> int:
        return int(getattr(self.renderer, "size", 512))

    def identity(self, companion: CompanionSpec | str) -> AvatarIdentity:
        """The companion's identity at the renderer's size (cached on disk by content)."""
        spec = load_companion(companion) if isinstance(companion, str) else companion
        s = self.identity_settings
        return derive_identity(
            spec,
            size=self.size,
            cache_dir=s.cache_dir,
            use_cache=s.use_cache,
            min_eye_distance_px=s.min_eye_distance_px,
            multiple_faces=s.multiple_faces,
        )

    def speak(self, text: str) -> Speech:
        """Synthesize ``text`` (validated by the backend: empty or too long text raises)."""
        return self.tts.synthesize(text)

    @property
    def learned(self) -> Any:
        """The audio-to-motion model, loaded on first use."""
        if self._learned is None:
            if self._load_learned is None:
                raise AvatarError("no learned audio-to-motion model configured (key `learned`)")
            self._learned = self._load_learned()
        return self._learned

    def _gate(self) -> MouthGate:
        s = self.streaming or StreamingSettings()
        return MouthGate(
            fps=self.motion.fps,
            silence_db=s.silence_db,
            reference_dbfs=s.reference_dbfs,
            hold_s=s.hold_s,
            ramp_s=s.ramp_s,
        )

    def _behaviour(self) -> MotionTrack:
        seconds = (self.streaming or StreamingSettings()).behaviour_seconds
        if self._behaviour_cache is None:
            self._behaviour_cache = behaviour_track(self.motion, seconds)
        return self._behaviour_cache

    def session(self, companion: CompanionSpec | str) -> StreamingSession:
        """A real-time session for ``companion`` (:class:`avatar.streaming.StreamingSession`)."""
        identity = self.identity(companion)
        return StreamingSession(
            identity=identity,
            render_frame=self.renderer.render_frame,
            learned=self.learned,
            behaviour=self._behaviour(),
            gate=self._gate(),
        )

    def learned_motion(self, audio: Audio) -> MotionTrack:
        """Offline learned-mouth motion for ``audio``, equal to what a session streams."""
        n_frames = frame_count(audio.duration, self.motion.fps)
        return learned_track(
            self.learned, self._behaviour(), self._gate(), audio.mono, audio.sample_rate, n_frames
        )

    def motion_for(
        self,
        speech: Speech,
        *,
        emotions: list[EmotionEvent] | None = None,
        listen_to: Audio | None = None,
    ) -> MotionTrack:
        """The motion track of ``speech``: ``round(seconds * fps)`` frames.

        Args:
            speech: the companion's speech (all silence when it only listens).
            emotions: emotion changes over the utterance.
            listen_to: the user's speech over the same span (listening behaviour).
        """
        n_frames = frame_count(speech.duration, self.motion.fps)
        user = (listen_to.mono, listen_to.sample_rate) if listen_to is not None else (None, None)
        return self.motion.generate(
            speech.timeline,
            speech.audio,
            speech.sample_rate,
            n_frames,
            emotions=emotions,
            user_audio=user[0],
            user_sample_rate=user[1],
        )

    def render_speech(
        self,
        companion: CompanionSpec | str,
        speech: Speech,
        out: str | Path,
        *,
        emotions: list[EmotionEvent] | None = None,
        listen_to: Audio | None = None,
        soundtrack: Audio | None = None,
        timings: dict[str, float] | None = None,
        motion: MotionTrack | None = None,
    ) -> RenderResult:
        """Render ``speech`` by ``companion`` to an MP4 at ``out`` (written atomically).

        Args:
            companion: spec, or a companion name.
            speech: audio and timeline of what the companion says.
            out: MP4 path.
            emotions: emotion changes (see :mod:`avatar.motion.emotion`).
            listen_to: the user's speech over the same span; the companion listens.
            soundtrack: the audio the MP4 carries, when it is not ``speech.audio`` (the
                original recording, mono or stereo, at its own rate).
            timings: stage seconds measured before this call (``tts``).
            motion: a motion track made already (else made from ``speech`` here).
        """
        timings = dict(timings or {})
        before = timings.get("tts", 0.0) + timings.get("align", 0.0)  # seconds spent upstream
        start = time.perf_counter()
        identity = self.identity(companion)
        timings["identity"] = time.perf_counter() - start
        t0 = time.perf_counter()
        if motion is None:
            motion = self.motion_for(speech, emotions=emotions, listen_to=listen_to)
        timings["motion"] = time.perf_counter() - t0
        track = soundtrack or Audio(speech.audio, speech.sample_rate)
        out = Path(out)
        writer = Mp4Writer(
            out,
            fps=motion.fps,
            size=(identity.size, identity.size),
            sample_rate=track.sample_rate,
            crf=self.encoder.crf,
            preset=self.encoder.preset,
            audio_bitrate=self.encoder.audio_bitrate,
            channels=track.channels,
        )
        with writer:
            frames = _RenderAhead(self.renderer.render(identity, motion))
            encode_s = 0.0
            for i, frame in enumerate(frames):
                if i == 0:
                    timings["first_frame"] = time.perf_counter() - start + before
                t0 = time.perf_counter()
                writer.write_frame(frame)
                encode_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            writer.write_audio(track.samples)
        encode_s += time.perf_counter() - t0
        timings.update(render=frames.busy_s, encode=encode_s)
        timings["total"] = time.perf_counter() - start + before
        log.info("wrote %s: %d frames, %.2f s of audio", out, len(motion), speech.duration)
        return RenderResult(
            out, len(motion), motion.fps, speech.duration, timings, identity, motion, speech
        )

    def render_text(
        self,
        companion: CompanionSpec | str,
        text: str,
        out: str | Path,
        *,
        emotion: str | None = None,
        emotion_intensity: float = 1.0,
    ) -> RenderResult:
        """Text -> speech -> MP4 of ``companion`` saying it.

        Inline tags such as ``[smile]`` or ``[sad 0.5]`` change the emotion from the next
        word on; ``emotion`` sets the mood from the start (overriding the configured one).
        """
        t0 = time.perf_counter()
        clean, tags = parse_tags(text) if isinstance(text, str) else (text, [])
        speech = self.speak(clean)
        events = []
        if emotion:
            events.append(
                EmotionEvent(check_emotion(emotion, emotion_intensity), emotion_intensity, 0.0)
            )
        events += tag_events(tags, speech.timeline, len(clean.split()))
        return self.render_speech(
            companion, speech, out, emotions=events, timings={"tts": time.perf_counter() - t0}
        )

    def render_audio(
        self,
        companion: CompanionSpec | str,
        audio: Audio,
        out: str | Path,
        *,
        transcript: str | None = None,
        mouth_source: str = "aligner",
    ) -> RenderResult:
        """Lip-sync given speech (any rate, mono or stereo); the MP4 carries that audio.

        ``mouth_source="aligner"``: phones from forced alignment with a ``transcript``, from
        phone recognition without; ``"learned"``: the audio-to-motion model, exactly as a
        real-time session would stream it.
        """
        if mouth_source == "learned":
            t0 = time.perf_counter()
            motion = self.learned_motion(audio)
            speech = silence_speech(audio.duration, audio.sample_rate)
            return self.render_speech(
                companion,
                speech,
                out,
                soundtrack=audio,
                motion=motion,
                timings={"align": time.perf_counter() - t0},
            )
        if mouth_source != "aligner":
            raise ConfigValueError(f"mouth_source: 'aligner' or 'learned', not {mouth_source!r}")
        if self.aligner is None:
            raise AvatarError("this pipeline has no aligner configured (config key `aligner`)")
        t0 = time.perf_counter()
        timeline = self.aligner.timeline(audio.samples, audio.sample_rate, transcript)
        speech = Speech(audio.mono, audio.sample_rate, timeline, transcript or "")
        return self.render_speech(
            companion, speech, out, soundtrack=audio, timings={"align": time.perf_counter() - t0}
        )

    def render_listening(
        self, companion: CompanionSpec | str, user_speech: Audio, out: str | Path
    ) -> RenderResult:
        """The companion listening to the user's speech (which the MP4 carries)."""
        speech = silence_speech(user_speech.duration, user_speech.sample_rate)
        return self.render_speech(
            companion, speech, out, listen_to=user_speech, soundtrack=user_speech
        )


def render_mp4(
    text: str,
    out: str | Path,
    *,
    companion: str | CompanionSpec = "default",
    overrides: Sequence[str] = (),
) -> RenderResult:
    """Render ``companion`` saying ``text`` to ``out`` with the project's configuration.

    Composes ``configs/render.yaml`` (plus Hydra ``overrides`` such as ``"motion.seed=3"`` or
    ``"renderer.size=256"``) and runs :class:`Pipeline`.

    Args:
        text: what the companion says.
        out: MP4 path to write.
        companion: a companion name from ``configs/companion/``, a YAML path, or a spec.
        overrides: Hydra override strings.
    """
    from avatar.config import compose, pipeline_from_config

    cfg = compose("render", list(overrides))
    pipeline = pipeline_from_config(cfg)
    if isinstance(companion, str) and companion == "default":
        from avatar.config import companion_from_config

        companion = companion_from_config(cfg)
    return pipeline.render_text(companion, text, out)


def silence_speech(seconds: float, sample_rate: int = 24000) -> Speech:
    """Speech that says nothing for ``seconds`` (an idle clip)."""
    from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline

    n = int(round(seconds * sample_rate))
    timeline = PhonemeTimeline([Phone(SILENCE, 0.0, n / sample_rate)], duration=n / sample_rate)
    return Speech(np.zeros(n, np.float32), sample_rate, timeline, "")
