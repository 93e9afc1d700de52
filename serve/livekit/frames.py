"""Conversions between the core's arrays and LiveKit's ``rtc`` frames.

Audio published by the avatar is mono int16 PCM; video frames are RGB24 images of the
renderer's size (LiveKit converts them to I420 for the encoder: no more CPU per captured frame
than handing it I420 made by OpenCV, and better chroma at 256 px; see
``benchmarks/bench_livekit_frames.py``).
"""

from __future__ import annotations

import numpy as np
from livekit import rtc


def video_frame(image: np.ndarray) -> rtc.VideoFrame:
    """An ``rtc.VideoFrame`` (RGB24) of an (H, W, 3) uint8 RGB image."""
    height, width = image.shape[:2]
    data = np.ascontiguousarray(image).tobytes()
    return rtc.VideoFrame(width, height, rtc.VideoBufferType.RGB24, data)


def audio_frame(samples: np.ndarray, sample_rate: int) -> rtc.AudioFrame:
    """An ``rtc.AudioFrame`` of (S,) int16 mono samples at ``sample_rate`` Hz."""
    samples = np.ascontiguousarray(samples, np.int16)
    return rtc.AudioFrame(samples.tobytes(), sample_rate, 1, len(samples))


def mono_float(frame: rtc.AudioFrame) -> np.ndarray:
    """(S,) float32 mono in [-1, 1] of an int16 ``rtc.AudioFrame`` (channels averaged)."""
    pcm = np.frombuffer(frame.data, np.int16).reshape(-1, frame.num_channels)
    return (pcm.astype(np.float32).mean(axis=1) / 32768.0).astype(np.float32)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """(S,) float audio in [-1, 1] as int16 PCM (clipped)."""
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


def image_of(frame: rtc.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8 RGB of any ``rtc.VideoFrame`` (converted if it is not RGB24)."""
    rgb24 = rtc.VideoBufferType.RGB24
    rgb = frame if frame.type == rgb24 else frame.convert(rgb24)
    return np.frombuffer(rgb.data, np.uint8).reshape(rgb.height, rgb.width, 3).copy()
