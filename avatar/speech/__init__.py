"""Speech: TTS backends, aligners and the PhonemeTimeline they all produce."""

from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline, WordSpan

__all__ = ["SILENCE", "Phone", "PhonemeTimeline", "WordSpan"]
