"""Listening in real time: nods, reactions and steadier eye contact from the user's microphone.

The causal, streaming twin of :func:`avatar.motion.listening.listening_motion`: the user's audio
is pushed as it arrives, and each batch of rows about to be rendered gets the listening offsets of
its frames, computed from the audio pushed so far only.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np

from avatar.errors import AudioFormatError, ConfigValueError, MotionTrackError
from avatar.motion.track import CHANNELS

if TYPE_CHECKING:
    from avatar.motion.generate import MotionGenerator

log = logging.getLogger(__name__)

NOD_S = 0.5  # duration of a nod (raised cosine), seconds
REACTION_S = 0.8  # duration of the brows-up / smile reaction, seconds
CONTACT_RAMP_S = 0.3  # eye contact eases in and out over this long, seconds
CONTACT_HOLD_S = 1.0  # eye contact stays steadier this long after the user's phrase, seconds
CONTACT_KEEP = 0.35  # from_motion: fraction of gaze and yaw kept while the user speaks
VOICED_WINDOW, VOICED_MIN = 5, 3  # the user speaks after VOICED_MIN voiced of VOICED_WINDOW frames
MAX_LAG_S = 1.0  # mic audio buffered beyond this (ahead of the frames) is dropped, oldest first
_CONTACT = [CHANNELS.index(c) for c in ("gaze_x", "gaze_y", "head_yaw")]
_PITCH, _BROW, _SMILE = (CHANNELS.index(c) for c in ("head_pitch", "brow_raise", "smile"))


def _bump(age: int, n: int) -> float:
    """Raised cosine over ``n`` frames: 0 at age 0, 1 at age n/2, 0 from age n on."""
    return 0.5 * (1.0 - math.cos(2.0 * math.pi * age / n)) if 0 <= age < n else 0.0


class LiveListener:
    """Listening behaviour from the user's microphone, frame by frame (causal, stateful).

    Args:
        fps: frames per second of the rows given to :meth:`apply`.
        nod_deg: head pitch of a nod at the user's phrase ends, degrees (+ nods down).
        nod_probability: chance of a nod (and reaction) at each phrase end, in [0, 1].
        reaction: brow raise at a phrase end (smile gets half of it), channel units.
        min_pause_s: silence after speech this long ends a phrase, seconds.
        silence_db: audio this far below ``reference_dbfs`` is silence, dB (negative).
        reference_dbfs: typical speech level of the user's audio, dBFS.
        contact: fraction of ``gaze_x``, ``gaze_y`` and ``head_yaw`` kept while the user speaks.
        seed: seeds the nod draws; :meth:`reset` restarts from it.
    """

    def __init__(
        self,
        *,
        fps: float,
        nod_deg: float,
        nod_probability: float,
        reaction: float,
        min_pause_s: float,
        silence_db: float,
        reference_dbfs: float,
        contact: float,
        seed: int,
    ) -> None:
        if not (fps > 0 and 0 <= nod_probability <= 1 and 0 <= contact <= 1 and min_pause_s >= 0):
            raise ConfigValueError(
                "LiveListener: need fps > 0, nod_probability and contact in [0, 1], "
                f"min_pause_s >= 0; got {fps}, {nod_probability}, {contact}, {min_pause_s}"
            )
        self.fps, self.nod_deg, self.reaction = float(fps), float(nod_deg), float(reaction)
        self.nod_probability, self.contact, self.seed = float(nod_probability), float(contact), seed
        self.threshold_db = reference_dbfs + silence_db
        self._pause = max(math.ceil(min_pause_s * fps - 1e-9), 1)  # silent frames ending a phrase
        self._nod_n, self._reaction_n = round(NOD_S * fps), round(REACTION_S * fps)
        self._hold, self._ramp = round(CONTACT_HOLD_S * fps), 1.0 / max(CONTACT_RAMP_S * fps, 1.0)
        self.reset()

    @classmethod
    def from_motion(
        cls, motion: MotionGenerator, *, reference_dbfs: float, seed: int | None = None
    ) -> LiveListener:
        """Settings from the motion stage (its listening_* values scaled by expressivity as
        generate.py does; the phrase-end pause of its offline listening; :data:`CONTACT_KEEP`)."""
        listen = motion._listen  # the listening_* settings, as MotionGenerator.generate uses them
        return cls(
            fps=motion.fps,
            nod_deg=motion.expressivity * listen["nod_deg"],
            nod_probability=listen["nod_probability"],
            reaction=motion.expressivity * listen["reaction"],
            min_pause_s=listen["min_pause_s"],
            silence_db=listen["silence_db"],
            reference_dbfs=reference_dbfs,
            contact=CONTACT_KEEP,
            seed=motion.seed if seed is None else seed,
        )

    def reset(self) -> None:
        """Forget all audio and state; the seed starts over (as a new listener)."""
        self._rng = np.random.default_rng(self.seed)
        self._audio, self._rate, self._owed = np.zeros(0, np.float32), 0, 0.0
        self._voiced: list[bool] = []  # the last VOICED_WINDOW frames
        self._speaking, self._quiet, self._since = False, 0, self._hold + 1
        self._events: list[int] = []  # ages in frames of the nods/reactions in progress
        self._weight = 0.0  # eye-contact ramp in [0, 1]

    @property
    def user_speaking(self) -> bool:
        """Whether the user is in a phrase (from voiced frames until a phrase end)."""
        return self._speaking

    def push(self, audio: np.ndarray, sample_rate: int) -> None:
        """The user's mic audio as it arrives: (S,) float32 mono in [-1, 1], any rate, any chunk
        size (10-20 ms typical). A change of rate drops the audio not yet used."""
        audio = np.asarray(audio, np.float32)
        if audio.ndim != 1 or not sample_rate > 0:
            raise AudioFormatError(
                f"LiveListener.push: need (S,) mono audio and a rate > 0, got "
                f"shape {audio.shape} at {sample_rate} Hz"
            )
        if sample_rate != self._rate:
            self._audio, self._rate, self._owed = np.zeros(0, np.float32), int(sample_rate), 0.0
        self._audio = np.concatenate([self._audio, audio])[-int(MAX_LAG_S * sample_rate) :]

    def _frame_level_db(self) -> float:
        """RMS level of the next frame's share of audio, dBFS (audio not yet pushed is silence)."""
        if not self._rate:
            return -math.inf
        self._owed += self._rate / self.fps
        n = int(self._owed)
        self._owed -= n
        part, self._audio = self._audio[:n], self._audio[n:]
        energy = float(np.sum(np.square(part, dtype=np.float64)))
        return 10.0 * math.log10(energy / n) if n and energy > 0 else -math.inf

    def _step(self, speaking: bool) -> None:
        """Advance one frame: voiced or not, phrase end, nods, the eye-contact ramp."""
        voiced = self._frame_level_db() >= self.threshold_db
        self._voiced = [*self._voiced[1 - VOICED_WINDOW :], voiced]
        self._quiet = 0 if voiced else self._quiet + 1
        end = False
        if not self._speaking and sum(self._voiced) >= VOICED_MIN:
            self._speaking = True
        elif self._speaking and self._quiet >= self._pause:
            self._speaking, end = False, True
        self._since = 0 if self._speaking else self._since + 1
        self._events = [a + 1 for a in self._events if a + 1 < max(self._nod_n, self._reaction_n)]
        if end and not speaking and self._rng.random() < self.nod_probability:
            log.debug("live listening: nod at a phrase end")
            self._events.append(0)
        ramp = self._ramp if self._since <= self._hold else -self._ramp
        self._weight = 0.0 if speaking else min(max(self._weight + ramp, 0.0), 1.0)

    def apply(self, rows: np.ndarray, speaking: bool) -> np.ndarray:
        """Listening offsets on the next T frames.

        Args:
            rows: (T, C) float32 channel values in :data:`avatar.motion.track.CHANNELS` order.
            speaking: the companion talks: rows come back unchanged, reactions in progress are
                dropped, but time and the user's audio still advance.

        Returns:
            New (T, C) float32 rows. The clock advances by T frames (T / fps seconds).
        """
        out = np.array(rows, np.float32)
        if out.ndim != 2 or out.shape[1] != len(CHANNELS):
            raise MotionTrackError(
                f"LiveListener.apply: rows {out.shape}, need (T, {len(CHANNELS)})"
            )
        for row in out:
            self._step(speaking)
            if speaking:
                self._events = []
                continue
            if self._weight > 0.0:
                w = self._weight * self._weight * (3.0 - 2.0 * self._weight)  # smoothstep
                row[_CONTACT] *= 1.0 - (1.0 - self.contact) * w
            if self._events:
                nod = sum(_bump(a, self._nod_n) for a in self._events)
                react = sum(_bump(a, self._reaction_n) for a in self._events)
                row[_PITCH] += self.nod_deg * nod
                row[_BROW] = np.clip(row[_BROW] + self.reaction * react, -1.0, 1.0)
                row[_SMILE] = np.clip(row[_SMILE] + 0.5 * self.reaction * react, 0.0, 1.0)
        return out
