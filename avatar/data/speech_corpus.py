"""SpeechCorpus: a multi-voice TTS corpus with exact phone timings, generated and cached locally.

Each voice (a :class:`~avatar.speech.tts.TextToSpeech`: ``HibariTTS`` at several speeds and
seeds, ``FliteTTS``) speaks its own seeded sample of :mod:`avatar.data.text_prompts`; the audio is
resampled to one rate (16 kHz) and stored with its :class:`PhonemeTimeline`. The cache lives in
``<cache_dir>/<key>`` where ``key`` hashes every setting the audio depends on (each voice's
:meth:`~avatar.speech.tts.TextToSpeech.settings`, labelled by its ``name``); a directory is
written under a temporary name and renamed into place, so a crash never leaves half a corpus.

:class:`MotionTargets` turns a timeline into the training targets with the motion stage's own
:func:`avatar.motion.coarticulation.coarticulate` (its values come from ``configs/motion``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar.audio import resample
from avatar.data.cache import build_dir
from avatar.data.text_prompts import sample_sentences, sentence_pool
from avatar.motion.coarticulation import coarticulate
from avatar.speech.timeline import PhonemeTimeline
from avatar.speech.tts import TextToSpeech

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bump when the stored layout or the generation code changes what a key means."""


@dataclass
class Utterance:
    """One corpus item.

    Attributes:
        audio: float32 ``(S,)`` mono at the corpus rate, in [-1, 1].
        timeline: exact phone timings in seconds covering ``[0, S / rate]``.
        voice: voice id (``hibari-1.00``, ``flite-slt``, ...).
        text: the sentence spoken.
    """

    audio: np.ndarray
    timeline: PhonemeTimeline
    voice: str
    text: str


class SpeechCorpus:
    """Seeded multi-voice corpus, generated once and cached on disk.

    Args:
        voices: the voices, each with its own ``name`` (the utterances' voice id); each speaks
            ``sentences_per_voice`` sentences.
        heldout_voices: voice ids kept out of training and validation (the test split).
        sentences_per_voice: utterances per voice.
        n_generated: template sentences added to the hand-written ones in the pool.
        sample_rate: rate of the stored audio, Hz.
        seed: seed of the pool and of each voice's sample.
        cache_dir: parent directory of the cached corpora.
    """

    def __init__(
        self,
        *,
        voices: Sequence[TextToSpeech],
        heldout_voices: Sequence[str],
        sentences_per_voice: int,
        n_generated: int,
        sample_rate: int,
        seed: int,
        cache_dir: str | os.PathLike,
    ) -> None:
        names = [v.name for v in voices]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate voice ids: {names}")
        missing = set(heldout_voices) - set(names)
        if missing:
            raise ValueError(f"held-out voices {sorted(missing)} are not among {names}")
        self.voices, self.heldout_voices = list(voices), list(heldout_voices)
        self.sentences_per_voice, self.n_generated = sentences_per_voice, n_generated
        self.sample_rate, self.seed, self.cache_dir = sample_rate, seed, Path(cache_dir)

    def key(self) -> str:
        """16 hex digits hashing every setting the stored audio depends on."""
        settings = dict(
            version=FORMAT_VERSION,
            voices=[v.settings() for v in self.voices],
            sentences_per_voice=self.sentences_per_voice,
            n_generated=self.n_generated,
            sample_rate=self.sample_rate,
            seed=self.seed,
        )
        blob = json.dumps(settings, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def path(self) -> Path:
        """Directory of this corpus: ``<cache_dir>/<key>``."""
        return self.cache_dir / self.key()

    def texts(self, voice: str) -> list[str]:
        """The sentences ``voice`` speaks (seeded by ``seed`` and the voice id)."""
        pool = sentence_pool(self.n_generated, self.seed)
        seed = self.seed + zlib.crc32(voice.encode())
        return sample_sentences(pool, self.sentences_per_voice, seed)

    def prepare(self) -> Path:
        """Generate the corpus unless cached; returns :attr:`path`."""
        if (self.path / "index.json").is_file():
            return self.path
        with build_dir(self.path) as tmp:
            chunks, index, offset = [], [], 0
            for voice in self.voices:
                for text in self.texts(voice.name):
                    speech = voice.synthesize(text)
                    audio = resample(speech.audio, speech.sample_rate, self.sample_rate)
                    timeline = speech.timeline
                    timeline.duration = len(audio) / self.sample_rate
                    chunks.append(audio)
                    index.append(
                        dict(
                            voice=voice.name,
                            text=text,
                            offset=offset,
                            length=len(audio),
                            timeline=timeline.to_dict(),
                        )
                    )
                    offset += len(audio)
                log.info("corpus %s: voice %s done (%d items)", self.key(), voice.name, len(index))
            np.save(tmp / "audio.npy", np.concatenate(chunks).astype(np.float32))
            meta = dict(key=self.key(), sample_rate=self.sample_rate, items=index)
            (tmp / "index.json").write_text(json.dumps(meta))
        return self.path

    def load(self) -> list[Utterance]:
        """All utterances (generating the corpus first if needed), in voice order."""
        path = self.prepare()
        meta = json.loads((path / "index.json").read_text())
        audio = np.load(path / "audio.npy", mmap_mode="r")
        return [
            Utterance(
                np.array(audio[it["offset"] : it["offset"] + it["length"]], np.float32),
                PhonemeTimeline.from_dict(it["timeline"]),
                it["voice"],
                it["text"],
            )
            for it in meta["items"]
        ]

    def summary(self, utterances: Sequence[Utterance]) -> dict:
        """Utterances and hours per voice, and the totals."""
        count, seconds = Counter(), Counter()
        for u in utterances:
            count[u.voice] += 1
            seconds[u.voice] += len(u.audio) / self.sample_rate
        hours = {v: round(seconds[v] / 3600, 3) for v in count}
        return dict(
            per_voice={v: dict(utterances=count[v], hours=hours[v]) for v in count},
            utterances=sum(count.values()),
            hours=round(sum(seconds.values()) / 3600, 3),
            heldout=self.heldout_voices,
        )


class MotionTargets:
    """Timeline -> per-frame (viseme weights, mouth channels): the motion the renderer consumes.

    Arguments are :func:`avatar.motion.coarticulation.coarticulate`'s (``configs/motion``);
    ``articulation`` is its ``intensity``.
    """

    def __init__(
        self,
        *,
        fps: float,
        lead_s: float,
        anticipation_s: float,
        carryover_s: float,
        smoothing_s: float,
        min_pause_s: float,
        pause_ramp_s: float,
        articulation: float,
    ) -> None:
        self.fps = fps
        self._kwargs = dict(
            lead_s=lead_s,
            anticipation_s=anticipation_s,
            carryover_s=carryover_s,
            smoothing_s=smoothing_s,
            min_pause_s=min_pause_s,
            pause_ramp_s=pause_ramp_s,
            intensity=articulation,
        )

    def __call__(self, timeline: PhonemeTimeline, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """``(T, 14)`` viseme weights and ``(T, 7)`` mouth channels, float32, T = ``n_frames``."""
        return coarticulate(timeline, n_frames, self.fps, **self._kwargs)
