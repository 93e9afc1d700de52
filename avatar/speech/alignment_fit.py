"""Voiced frames of decoded speech and what the aligner reads from them: how well a forced
alignment fits its audio (score against free phone recognition, phone rate, coverage), and
voiced stretches that phone recognition took for silence.

A transcript that is not what the audio says still aligns when the decoder can stretch its few
words over the speech or push them into a corner and call the rest silence: ``"yes"`` over 7 s
of speech gives a mouth that barely moves. Three figures expose it, each on the 10 ms frames the
decoder uses and on the *voiced* frames (100-1000 Hz energy within 15 dB of the speech level,
the same test as the aligner's loud-silence check), so leading, trailing and inner pauses do not
dilute them:

- ``score``: the alignment's acoustic log score minus that of free phone recognition (the
  bundled phone loop, which may pick any phone at any time) over the same audio, per voiced
  frame, in pocketsphinx's score units (senone log scores, logbase 1.0001 shifted by 10 bits:
  about 0.1 nat). Near 0 when the transcript is what was said; very negative when the words are
  forced onto sounds they do not match.
- ``phone_rate``: speech phones of the alignment per second of voiced audio.
- ``coverage``: share of the voiced frames that fall inside aligned speech phones (the rest were
  labelled silence or noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar.speech.timeline import SILENCE

FRAME_SAMPLES = 160
"""Samples per 10 ms decoder frame at 16 kHz; rfft bins of such a frame are 100 Hz apart."""
FRAME_S = 0.01
"""Decoder frame step, seconds."""
MIN_VOICED_S = 0.1
"""With less voiced audio the figures mean nothing and the fit is not judged."""


def voiced_frames(pcm: np.ndarray, *, level_dbfs: float) -> np.ndarray:
    """Which 10 ms frames carry voiced energy (100-1000 Hz) above ``level_dbfs``.

    A fricative's hiss or broadband noise has little energy in this band; vowels, nasals and
    voiced consonants have most of theirs there.

    Args:
        pcm: int16 PCM ``(S,)`` at 16 kHz.
        level_dbfs: band energy threshold, dBFS (mean square of the band, Hann-scaled).

    Returns:
        bool ``(S // 160,)``, one entry per whole frame.

    >>> t = np.arange(16000) / 16000
    >>> tone = np.round(3000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)  # ~ -21 dBFS
    >>> x = np.concatenate([tone, np.zeros(16000, np.int16)])
    >>> v = voiced_frames(x, level_dbfs=-35.0)
    >>> int(v[:100].sum()), int(v[100:].sum())
    (100, 0)
    """
    n = FRAME_SAMPLES
    frames = np.asarray(pcm[: len(pcm) // n * n], np.float64).reshape(-1, n) / 32768.0
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)[:, 1:11]) ** 2
    band = spectrum.sum(axis=1) * 2 / (n * n * 0.375)  # mean square of the band, Hann-scaled
    return 10 * np.log10(band + 1e-12) > level_dbfs


@dataclass(frozen=True)
class AlignmentFit:
    """The figures of one forced alignment against its audio (see the module docstring).

    Attributes:
        score: (alignment - phone recognition) acoustic log score per voiced frame, decoder
            units (~0.1 nat); 0 or above fits as well as free recognition.
        phone_rate: aligned speech phones per voiced second.
        coverage: share of voiced frames inside aligned speech phones, in [0, 1].
        voiced_s: voiced audio, seconds.
    """

    score: float
    phone_rate: float
    coverage: float
    voiced_s: float

    def __str__(self) -> str:
        return (
            f"score {self.score:.1f}/voiced frame, {self.phone_rate:.1f} phones per voiced "
            f"second, {self.coverage:.0%} of {self.voiced_s:.2f} s voiced audio covered"
        )

    def problems(
        self,
        *,
        min_fit_score: float,
        min_phone_rate: float,
        max_phone_rate: float,
        min_coverage: float,
    ) -> list[str]:
        """What is wrong with the fit, each naming its figure and its config key; [] if none.

        Nothing is judged on less than 0.1 s of voiced audio.

        >>> fit = AlignmentFit(score=-60.0, phone_rate=0.4, coverage=0.05, voiced_s=6.0)
        >>> limits = dict(min_phone_rate=6, max_phone_rate=40, min_coverage=0.85)
        >>> for problem in fit.problems(min_fit_score=-40, **limits):
        ...     print(problem)
        score -60.0 < aligner.min_fit_score=-40
        phone rate 0.4/s < aligner.min_phone_rate=6
        coverage 0.05 < aligner.min_coverage=0.85
        """
        if self.voiced_s < MIN_VOICED_S:
            return []
        out = []
        if self.score < min_fit_score:
            out.append(f"score {self.score:.1f} < aligner.min_fit_score={min_fit_score:g}")
        if self.phone_rate < min_phone_rate:
            out.append(
                f"phone rate {self.phone_rate:.1f}/s < aligner.min_phone_rate={min_phone_rate:g}"
            )
        if self.phone_rate > max_phone_rate:
            out.append(
                f"phone rate {self.phone_rate:.1f}/s > aligner.max_phone_rate={max_phone_rate:g}"
            )
        if self.coverage < min_coverage:
            out.append(f"coverage {self.coverage:.2f} < aligner.min_coverage={min_coverage:g}")
        return out


def measure_fit(
    aligned: list[tuple[bool, int, int, float]], recognition_score: float, voiced: np.ndarray
) -> AlignmentFit:
    """Figures of a forced alignment.

    Args:
        aligned: every aligned phone (silences and fillers included) as ``(is_speech,
            start_frame, n_frames, acoustic_score)``; frames of 10 ms.
        recognition_score: total acoustic score of phone recognition over the same audio.
        voiced: bool ``(F,)`` voiced frames (:func:`voiced_frames`).

    Returns:
        The fit; with no voiced frame, score and rate are 0 and coverage 1 (nothing to judge).

    >>> voiced = np.array([False] + [True] * 20 + [False])
    >>> fit = measure_fit([(False, 0, 1, -1.0), (True, 1, 10, -50.0)], -40.0, voiced)
    >>> fit.score, round(fit.phone_rate, 1), fit.coverage, fit.voiced_s
    (-0.55, 5.0, 0.5, 0.2)
    """
    covered = np.zeros(len(voiced), bool)
    for is_speech, start, length, _ in aligned:
        if is_speech:
            covered[start : start + length] = True
    n_voiced = int(voiced.sum())
    if n_voiced == 0:
        return AlignmentFit(score=0.0, phone_rate=0.0, coverage=1.0, voiced_s=0.0)
    total = sum(score for *_, score in aligned)
    n_speech = sum(is_speech for is_speech, *_ in aligned)
    return AlignmentFit(
        score=(total - recognition_score) / n_voiced,
        phone_rate=n_speech / (n_voiced * FRAME_SAMPLES / 16000),
        coverage=float((covered & voiced).sum() / n_voiced),
        voiced_s=n_voiced * FRAME_SAMPLES / 16000,
    )


def fill_voiced_silences(
    phones: list[tuple[str, float, float]], voiced: np.ndarray
) -> list[tuple[str, float, float]]:
    """Relabel voiced stretches (>= 50 ms) of recognised silence as AH, the neutral vowel.

    The CI phone loop sometimes takes a weak phrase-final vowel for silence (measured: the
    schwa of "sofa," 150 ms at -20..-29 dBFS); a closed mouth over audible voice looks wrong.
    Voiced energy only (100-1000 Hz): a fricative's hiss is not a dropped vowel.

    Args:
        phones: ``(phoneme, start, end)`` seconds, in time order; SILENCE for pauses.
        voiced: bool ``(F,)`` voiced 10 ms frames (:func:`voiced_frames`).

    Returns:
        The phones, each voiced run inside a silence cut out of it as ``AH``.

    >>> fill_voiced_silences([("_", 0.0, 0.2)], np.arange(20) >= 10)
    [('_', 0.0, 0.1), ('AH', 0.1, 0.2), ('_', 0.2, 0.2)]
    """
    out: list[tuple[str, float, float]] = []
    for ph, start, end in phones:
        fa, fb = round(start / FRAME_S), round(end / FRAME_S)
        edges = np.diff(np.concatenate([[0], voiced[fa:fb], [0]]).astype(int))
        runs = [int(r) for r in np.flatnonzero(edges) + fa]
        for a, b in zip(runs[::2], runs[1::2], strict=True) if ph == SILENCE else ():
            if b - a >= 5:  # 50 ms
                out += [(SILENCE, start, a * FRAME_S), ("AH", a * FRAME_S, b * FRAME_S)]
                start = b * FRAME_S
        out.append((ph, start, end))
    return out
