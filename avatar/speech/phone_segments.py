"""Decoder phones -> PhonemeTimeline: pocketsphinx's phone names and segments made contiguous.

Pure functions of the aligner (:mod:`avatar.speech.aligner`): no decoder is needed to test them.
"""

from __future__ import annotations

from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline, WordSpan

__all__ = ["FRAME_S", "NON_PHONES", "build_timeline", "phoneme_of"]

FRAME_S = 0.01
"""pocketsphinx frame step (``-frate 100``), seconds: every boundary is a multiple of it."""
NON_PHONES = ("<", "[", "+")  # <sil>, <s>, </s>, [NOISE], +SPN+: silence or noise, no mouth shape


def phoneme_of(name: str) -> str:
    """pocketsphinx phone or filler name -> ARPAbet without stress digit, or SILENCE."""
    return SILENCE if name.upper() == "SIL" or name.startswith(NON_PHONES) else name.rstrip("012")


def build_timeline(
    phones: list[tuple[str, float, float]],
    duration: float,
    words: list[WordSpan] | None = None,
    source: str = "",
) -> PhonemeTimeline:
    """Contiguous ARPAbet timeline over ``[0, duration]`` from decoder phones.

    Times are clamped to the audio, gaps and the edges become SILENCE (a gap under one frame
    widens the phone before it instead), adjacent silences merge and empty phones go.

    Args:
        phones: ``(phoneme, start, end)`` in time order, seconds; SILENCE for pauses.
        duration: length of the input audio, seconds.
        words: word spans (clamped to the audio like the phones).
        source: how the phones were found (:attr:`PhonemeTimeline.source`).

    >>> t = build_timeline([("HH", 0.1, 0.2), ("_", 0.2, 0.3), ("AY", 0.3, 0.595)], 0.6)
    >>> [(p.phoneme, p.start, p.end) for p in t.phones]
    [('_', 0.0, 0.1), ('HH', 0.1, 0.2), ('_', 0.2, 0.3), ('AY', 0.3, 0.6)]
    """
    out: list[list] = []
    cursor = 0.0
    for ph, start, end in [*phones, (SILENCE, duration, duration)]:
        start, end = min(max(start, cursor), duration), min(end, duration)
        if start - cursor > 1e-9:  # a gap: silence, unless under a frame after a phone
            if out and (out[-1][0] == SILENCE or start - cursor < FRAME_S - 1e-9):
                out[-1][2] = start
            else:
                out.append([SILENCE, cursor, start])
        if out and out[-1][0] == SILENCE and ph == SILENCE:
            out[-1][2] = max(out[-1][2], end)
        elif end - start > 1e-9:
            out.append([ph, start, end])
        cursor = max(cursor, out[-1][2]) if out else cursor
    spans = [WordSpan(w.word, min(w.start, duration), min(w.end, duration)) for w in words or []]
    phones_out = [Phone(ph, a, b) for ph, a, b in out]
    return PhonemeTimeline(phones_out, spans, duration, "arpabet", source)
