"""Media files and codecs (PyAV): audio files, MP4 (H.264 + AAC) writing and reading, probing,
and output paths checked before any work.

In-memory audio and resampling live in :mod:`avatar.audio`.
"""

from avatar.media.audio_files import load_audio, read_audio, write_wav
from avatar.media.mp4_reader import (
    VideoClip,
    VideoStream,
    iter_video_frames,
    probe_mp4,
    read_mp4,
)
from avatar.media.mp4_writer import EncoderSettings, Mp4Writer, write_mp4
from avatar.media.outputs import check_output_path

__all__ = [
    "EncoderSettings",
    "Mp4Writer",
    "VideoClip",
    "VideoStream",
    "check_output_path",
    "iter_video_frames",
    "load_audio",
    "probe_mp4",
    "read_audio",
    "read_mp4",
    "write_mp4",
    "write_wav",
]
