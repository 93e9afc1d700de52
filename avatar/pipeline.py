"""The one place that chains the stages: companion -> identity, text/audio -> speech -> motion
-> frames -> MP4, and the real-time session. ``serve/``, ``evals/`` and notebooks call this
instead of re-chaining.

A :class:`Pipeline` is built once (from config, at an entry point) and then shared: every method
is safe to call from many threads at once. Companions are resolved once and kept in memory
(:class:`~avatar.identity_store.IdentityStore`); long calls take a
:class:`~avatar.cancel.CancelToken` that is checked before every frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from avatar.audio import Audio, frame_count
from avatar.cancel import CancelToken
from avatar.cancel import check as check_cancel
from avatar.companion import CompanionSpec, load_companion
from avatar.errors import AvatarError, ConfigValueError
from avatar.identity.derive import IdentitySettings
from avatar.identity.types import AvatarIdentity
from avatar.identity_store import IdentityStore, Resolved
from avatar.long_text import LongTextSettings, plan_segments, render_segments
from avatar.media import EncoderSettings, Mp4Sink, check_mp4_output, open_mp4
from avatar.motion.emotion import EmotionEvent, check_emotion, parse_tags, tag_events
from avatar.motion.generate import MotionGenerator
from avatar.motion.track import MotionTrack
from avatar.render_ahead import Progress, encode_frames
from avatar.render_result import RenderResult
from avatar.render_workers import RenderAheadFactory
from avatar.renderers.base import Renderer, render_track
from avatar.speech.timeline import PhonemeTimeline
from avatar.speech.tts import Speech, silence_speech
from avatar.speech.voices import Voices
from avatar.streaming import StreamingSession, StreamingSettings, behaviour_track, learned_track

log = logging.getLogger(__name__)

__all__ = ["Aligner", "Pipeline", "RenderResult"]


class Aligner(Protocol):
    """Phone timings of given speech (see :mod:`avatar.speech.aligner`)."""

    def timeline(
        self, audio: np.ndarray, sample_rate: int, transcript: str | None = None
    ) -> PhonemeTimeline: ...


class Pipeline:
    """Chains the stages with injected components (built from Hydra config at entry points).

    Args:
        voices: the TTS voices; a companion's ``voice`` picks one (None: the default).
        aligner: phone timings of given speech (None: audio input is refused).
        motion: motion generator (its ``fps`` is the video's).
        renderer: frame renderer; its ``size`` is the render size.
        encoder: MP4 settings.
        identity: identity-derivation settings.
        identities_in_memory: companions whose identity and prepared state stay in memory.
        learned: loads the audio-to-motion model when first needed (keeps torch out of the
            text path); None: the learned mouth is unavailable.
        streaming: settings of the real-time session and the learned-mouth path.
        render_threads: chunks one MP4 render renders at once (beside its encoding thread).
        render_processes, render_processes_min_frames: see :class:`RenderAheadFactory`.
        long_text: the text limit of ``render_text`` and how longer texts go in segments.
    """

    def __init__(
        self,
        *,
        voices: Voices,
        aligner: Aligner | None,
        motion: MotionGenerator,
        renderer: Renderer,
        encoder: EncoderSettings,
        identity: IdentitySettings,
        identities_in_memory: int,
        learned: Callable[[], Any] | None,
        streaming: StreamingSettings,
        render_threads: int,
        render_processes: int,
        render_processes_min_frames: int,
        long_text: LongTextSettings,
    ) -> None:
        self.voices = voices
        self.aligner = aligner
        self.motion = motion
        self.renderer = renderer
        self.encoder = encoder
        self.streaming = streaming
        self.render_ahead = RenderAheadFactory(  # threads or worker processes, per render
            renderer, render_threads, render_processes, render_processes_min_frames
        )
        self.long_text = long_text
        self.identities = IdentityStore(
            renderer=renderer, settings=identity, capacity=identities_in_memory
        )
        self._load_learned = learned
        self._learned: Any = None
        self._behaviour: MotionTrack | None = None
        self._lazy_lock = threading.Lock()

    @property
    def size(self) -> int:
        """Frame side S in pixels (the renderer's)."""
        return self.renderer.size

    def close(self) -> None:
        """Stop the render worker processes (a later render starts them again)."""
        self.render_ahead.close()

    # -- stages ---------------------------------------------------------------------------

    def resolve(
        self, companion: CompanionSpec | str, *, cancel: CancelToken | None = None
    ) -> Resolved:
        """The companion's identity and the renderer's prepared state (kept in memory)."""
        spec = load_companion(companion) if isinstance(companion, str) else companion
        return self.identities.resolve(spec, cancel=cancel)

    def identity(
        self, companion: CompanionSpec | str, *, cancel: CancelToken | None = None
    ) -> AvatarIdentity:
        """The companion's identity at the renderer's size."""
        return self.resolve(companion, cancel=cancel).identity

    def speak(self, text: str, *, voice: str | None = None) -> Speech:
        """Synthesize ``text`` with ``voice`` (None: the default voice); empty or too long
        text raises :class:`~avatar.errors.TextInputError`."""
        return self.voices.get(voice).synthesize(text)

    @property
    def learned(self) -> Any:
        """The audio-to-motion model, loaded on first use (once, whichever thread asks)."""
        with self._lazy_lock:
            if self._learned is None:
                if self._load_learned is None:
                    raise AvatarError("no learned audio-to-motion model configured (key `learned`)")
                self._learned = self._load_learned()
            return self._learned

    @property
    def behaviour(self) -> MotionTrack:
        """The looped non-verbal track of real-time sessions (made once)."""
        with self._lazy_lock:
            if self._behaviour is None:
                self._behaviour = behaviour_track(self.motion, self.streaming.behaviour_seconds)
            return self._behaviour

    def session(self, companion: CompanionSpec | str) -> StreamingSession:
        """A real-time session for ``companion`` (:class:`avatar.streaming.StreamingSession`)."""
        resolved = self.resolve(companion)
        return StreamingSession(
            stream=self.renderer.open_stream(resolved.prepared),
            learned=self.learned,
            behaviour=self.behaviour,
            settings=self.streaming,
        )

    def learned_motion(self, audio: Audio) -> MotionTrack:
        """Offline learned-mouth motion for ``audio``, equal to what a session streams."""
        n_frames = frame_count(audio.duration, self.motion.fps)
        return learned_track(
            self.learned, self.behaviour, self.streaming, audio.mono, audio.sample_rate, n_frames
        )

    def motion_for(
        self,
        speech: Speech,
        *,
        emotions: list[EmotionEvent] | None = None,
        listen_to: Audio | None = None,
        seed: int | None = None,
    ) -> MotionTrack:
        """The motion track of ``speech``: ``round(seconds * fps)`` frames.

        Args:
            speech: the companion's speech (all silence when it only listens).
            emotions: emotion changes over the utterance.
            listen_to: the user's speech over the same span (listening behaviour).
            seed: motion seed for this track (None: the configured ``motion.seed``).
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
            seed=seed,
        )

    def frames(
        self,
        companion: CompanionSpec | str,
        motion: MotionTrack,
        audio: Audio | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> Iterator[np.ndarray]:
        """The (S, S, 3) uint8 frames of ``motion`` (with its ``audio``), one at a time."""
        resolved = self.resolve(companion, cancel=cancel)
        return render_track(self.renderer, resolved.prepared, motion, audio, cancel=cancel)

    # -- MP4 ------------------------------------------------------------------------------

    def render_speech(
        self,
        companion: CompanionSpec | str,
        speech: Speech,
        out: str | Path | Mp4Sink,
        *,
        emotions: list[EmotionEvent] | None = None,
        listen_to: Audio | None = None,
        soundtrack: Audio | None = None,
        timings: dict[str, float] | None = None,
        motion: MotionTrack | None = None,
        seed: int | None = None,
        encoder: EncoderSettings | None = None,
        cancel: CancelToken | None = None,
        progress: Progress | None = None,
    ) -> RenderResult:
        """Render ``speech`` by ``companion`` to an MP4 at ``out`` (written atomically), or
        as a fragmented MP4 into a sink (:class:`~avatar.media.Mp4StreamWriter`).

        Args:
            companion: spec, or a companion name.
            speech: audio and timeline of what the companion says.
            out: MP4 path, or a sink (a callable) receiving the stream's bytes as made.
            emotions: emotion changes (see :mod:`avatar.motion.emotion`).
            listen_to: the user's speech over the same span; the companion listens.
            soundtrack: the audio the MP4 carries, when it is not ``speech.audio`` (the
                original recording, mono or stereo, at its own rate).
            timings: stage seconds measured before this call (``tts``).
            motion: a motion track made already (else made from ``speech`` here).
            seed: motion seed (None: the configured one).
            encoder: MP4 settings for this file (None: the pipeline's).
            cancel: checked before every frame; a cancelled render writes nothing and raises
                :class:`~avatar.errors.Cancelled`.
            progress: ``progress(frames written, frames in all)`` after each frame (a bar).
        """
        out = check_mp4_output(out)
        timings = dict(timings or {})
        before = timings.get("tts", 0.0) + timings.get("align", 0.0)  # seconds spent upstream
        start = time.perf_counter()
        resolved = self.resolve(companion, cancel=cancel)
        timings["identity"] = time.perf_counter() - start
        t0 = time.perf_counter()
        if motion is None:
            motion = self.motion_for(speech, emotions=emotions, listen_to=listen_to, seed=seed)
        timings["motion"] = time.perf_counter() - t0
        check_cancel(cancel)
        track = soundtrack or Audio(speech.audio, speech.sample_rate)
        size = resolved.prepared.size
        writer = open_mp4(
            out,
            fps=motion.fps,
            size=(size, size),
            sample_rate=track.sample_rate,
            encoder=encoder or self.encoder,
            channels=track.channels,
        )
        with writer:
            t0 = time.perf_counter()
            writer.write_audio(track.samples)  # first: packets go out with their frames
            encode_s = time.perf_counter() - t0  # (a stream's fragments leave as they are cut)
            voice = Audio(speech.audio, speech.sample_rate)
            frames = self.render_ahead(resolved.prepared, motion, voice, cancel=cancel)
            counted = progress and (lambda k: progress(k, len(motion)))
            first, frames_encode_s = encode_frames(writer, frames, cancel, counted)
            if first is not None:
                timings["first_frame"] = first - start + before
            encode_s += frames_encode_s
            t0 = time.perf_counter()
        encode_s += time.perf_counter() - t0
        timings.update(render=frames.busy_s, encode=encode_s)
        timings["total"] = time.perf_counter() - start + before
        log.info("wrote %s: %d frames, %.2f s of audio", out, len(motion), speech.duration)
        n, fps, seconds = len(motion), motion.fps, speech.duration
        path = out if isinstance(out, Path) else None  # None: streamed into a sink
        return RenderResult(path, n, fps, seconds, timings, resolved.identity, motion, speech)

    def render_text(
        self,
        companion: CompanionSpec | str,
        text: str,
        out: str | Path | Mp4Sink,
        *,
        emotion: str | None = None,
        emotion_intensity: float = 1.0,
        cancel: CancelToken | None = None,
        progress: Progress | None = None,
    ) -> RenderResult:
        """Text -> speech (the companion's voice) -> MP4 of ``companion`` saying it.

        Inline tags such as ``[smile]`` or ``[sad 0.5]`` change the emotion from the next
        word on; ``emotion`` sets the mood from the start (overriding the configured one).
        ``out`` is a path or a sink, as for :meth:`render_speech`. A text longer than
        ``long_text.max_text_chars`` is refused before any work; one longer than a segment
        goes in segments (:mod:`avatar.long_text`; the result then holds no ``speech``).
        ``progress`` as for :meth:`render_speech` (total None until a long text's end).
        """
        out = check_mp4_output(out)  # before any work
        t0 = time.perf_counter()
        spec = load_companion(companion) if isinstance(companion, str) else companion
        clean, tags = parse_tags(text) if isinstance(text, str) else (text, [])
        mood = None
        if emotion:
            mood = EmotionEvent(check_emotion(emotion, emotion_intensity), emotion_intensity, 0.0)
        voice = self.voices.get(spec.voice)
        cap = getattr(voice, "max_chars", None)  # the voice's own per-call limit
        plan = None
        if isinstance(clean, str):
            plan = plan_segments(clean, tags, self.long_text, voice_max_chars=cap)
        check_cancel(cancel)
        if plan:
            return render_segments(
                self, spec, plan, out, mood=mood, started=t0, cancel=cancel, progress=progress
            )
        with ThreadPoolExecutor(1, thread_name_prefix="resolve") as pool:
            resolving = pool.submit(self.resolve, spec, cancel=cancel)  # while the voice speaks
            speech = voice.synthesize(clean)
            resolving.result()  # a bad image fails here, after the speech
        events = [mood] if mood else []
        events += tag_events(tags, speech.timeline, len(clean.split()))
        return self.render_speech(
            spec,
            speech,
            out,
            emotions=events,
            timings={"tts": time.perf_counter() - t0},
            cancel=cancel,
            progress=progress,
        )

    def render_audio(
        self,
        companion: CompanionSpec | str,
        audio: Audio,
        out: str | Path | Mp4Sink,
        *,
        transcript: str | None = None,
        mouth_source: str = "aligner",
        cancel: CancelToken | None = None,
    ) -> RenderResult:
        """Lip-sync given speech (any rate, mono or stereo); the MP4 carries that audio.

        ``mouth_source="aligner"``: phones from forced alignment with a ``transcript``, from
        phone recognition without; ``"learned"``: the audio-to-motion model, exactly as a
        real-time session would stream it.
        """
        check_mp4_output(out)  # before the alignment
        t0 = time.perf_counter()
        if mouth_source == "learned":
            motion = self.learned_motion(audio)
            quiet = silence_speech(audio.duration, audio.sample_rate).timeline
            speech = Speech(audio.mono, audio.sample_rate, quiet, transcript or "")
        elif mouth_source == "aligner":
            if self.aligner is None:
                raise AvatarError("this pipeline has no aligner configured (config key `aligner`)")
            timeline = self.aligner.timeline(audio.samples, audio.sample_rate, transcript)
            speech, motion = Speech(audio.mono, audio.sample_rate, timeline, transcript or ""), None
        else:
            raise ConfigValueError(f"mouth_source: 'aligner' or 'learned', not {mouth_source!r}")
        return self.render_speech(
            companion,
            speech,
            out,
            soundtrack=audio,
            motion=motion,
            timings={"align": time.perf_counter() - t0},
            cancel=cancel,
        )

    def render_listening(
        self,
        companion: CompanionSpec | str,
        user_speech: Audio,
        out: str | Path,
        *,
        cancel: CancelToken | None = None,
    ) -> RenderResult:
        """The companion listening to the user's speech (which the MP4 carries)."""
        speech = silence_speech(user_speech.duration, user_speech.sample_rate)
        return self.render_speech(
            companion, speech, out, listen_to=user_speech, soundtrack=user_speech, cancel=cancel
        )
