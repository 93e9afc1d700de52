"""Media files and codecs (PyAV): audio files, MP4 (H.264 + AAC) writing (files, and fragmented
streams) and reading, probing, and output paths checked before any work.

In-memory audio and resampling live in :mod:`avatar.audio`.
"""

from avatar.media.audio_files import load_audio, read_audio, write_wav
from avatar.media.mp4_reader import (
    VideoClip,
    VideoStream,
    iter_video_frames,
    mp4_boxes,
    probe_mp4,
    read_mp4,
)
from avatar.media.mp4_stream import (
    FRAGMENT_SECONDS,
    Mp4Sink,
    Mp4StreamWriter,
    check_mp4_output,
    open_mp4,
)
from avatar.media.mp4_writer import EncoderSettings, Mp4Encoding, Mp4Writer, write_mp4
from avatar.media.outputs import check_output_path
from avatar.media.yuv import rgb_to_i420

__all__ = [
    "FRAGMENT_SECONDS",
    "EncoderSettings",
    "Mp4Encoding",
    "Mp4Sink",
    "Mp4StreamWriter",
    "Mp4Writer",
    "VideoClip",
    "VideoStream",
    "check_mp4_output",
    "check_output_path",
    "iter_video_frames",
    "load_audio",
    "mp4_boxes",
    "open_mp4",
    "probe_mp4",
    "read_audio",
    "read_mp4",
    "rgb_to_i420",
    "write_mp4",
    "write_wav",
]
