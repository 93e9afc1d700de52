"""Speech: TTS backends, the voice registry, aligners and the PhonemeTimeline they all produce."""

from avatar.speech.aligner import PocketsphinxAligner
from avatar.speech.flite_tts import FliteTTS
from avatar.speech.hibari_tts import HibariTTS
from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline, WordSpan
from avatar.speech.tts import Speech, TextToSpeech
from avatar.speech.voices import Voices

__all__ = [
    "SILENCE",
    "FliteTTS",
    "HibariTTS",
    "Phone",
    "PocketsphinxAligner",
    "PhonemeTimeline",
    "Speech",
    "TextToSpeech",
    "Voices",
    "WordSpan",
]
