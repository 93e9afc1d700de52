"""What a room received, as an MP4 in publish time (for ``serve.simulate`` and the tests).

The video is resampled onto a constant frame rate by capture time: slot k (time
``t0 + k / fps``, ``t0`` the first frame's capture) shows the latest frame captured by the
slot's middle, so a late frame shows as a repeated one and a dropped frame as a skip, as a
viewer would see them. The audio is the published stream cut at ``t0``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from avatar.media.mp4_writer import EncoderSettings, Mp4Writer
from serve.livekit.local_room import PublishedRecording


def aligned_audio(recording: PublishedRecording, t0: float) -> np.ndarray:
    """(S,) int16 published audio from publish time ``t0`` on (zeros before it started)."""
    samples = recording.audio_samples()
    shift = int(round((t0 - recording.audio_start()) * recording.sample_rate))
    if shift >= 0:
        return samples[shift:]
    return np.concatenate([np.zeros(-shift, np.int16), samples])


def slot_frames(recording: PublishedRecording, fps: float, n_slots: int) -> Iterator[np.ndarray]:
    """The frame shown in each of ``n_slots`` constant-rate slots from the first capture."""
    times = np.array([t for t, _ in recording.video])
    t0 = times[0]
    for k in range(n_slots):
        index = int(np.searchsorted(times, t0 + (k + 0.5) / fps, side="right")) - 1
        yield recording.video[max(index, 0)][1]


def write_published_mp4(
    recording: PublishedRecording, path: str | Path, *, fps: float, encoder: EncoderSettings
) -> Path:
    """Write the recording to ``path`` (H.264 + AAC), from the first video frame on.

    Returns:
        ``path``. Raises ValueError when nothing was published.
    """
    if not recording.video:
        raise ValueError("no video was published")
    t0 = recording.video[0][0]
    audio = aligned_audio(recording, t0)  # the stream runs on after the last frame
    n_slots = max(int(np.floor(len(audio) / recording.sample_rate * fps)), 1)
    height, width = recording.video[0][1].shape[:2]
    with Mp4Writer(
        path, fps=fps, size=(width, height), sample_rate=recording.sample_rate, encoder=encoder
    ) as writer:
        n_samples = int(round(n_slots / fps * recording.sample_rate))
        writer.write_audio(audio[:n_samples].astype(np.float32) / 32768.0)
        writer.write_frames(slot_frames(recording, fps, n_slots))
    return Path(path)
