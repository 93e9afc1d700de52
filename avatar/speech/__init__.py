"""Speech: TTS backends, aligners and the PhonemeTimeline they all produce."""

from avatar.speech.aligner import PocketsphinxAligner
from avatar.speech.hibari_tts import HibariTTS
from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline, WordSpan
from avatar.speech.tts import Speech, TextToSpeech

__all__ = [
    "SILENCE",
    "HibariTTS",
    "Phone",
    "PocketsphinxAligner",
    "PhonemeTimeline",
    "Speech",
    "TextToSpeech",
    "WordSpan",
]
