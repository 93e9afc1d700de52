"""RGB -> I420 (yuv420p) for the H.264 encoder, with OpenCV: BT.601, limited range.

libx264 takes yuv420p. Handed RGB frames, PyAV copies each into an ``rgb24`` frame and
libswscale converts it inside ``encode``: 0.78 ms of CPU a 512 px frame (0.23 ms at 256 px) on
the 2-core machine. ``cv2.COLOR_RGB2YUV_I420``, its array wrapped without a copy
(``av.VideoFrame.from_numpy_buffer``), takes 0.19 ms (0.06 ms).

Same colours: both use BT.601 with Y in 16..235 and chroma in 16..240 (what FFmpeg assumes for
an untagged yuv420p stream, as libx264's output is); Y agrees within 1 level and the chroma of
flat colours exactly. Chroma siting differs: OpenCV takes each 2x2 block's chroma from its
top-left pixel, where libswscale averages (pixel pairs across, four rows down). So colour detail
finer than 2 pixels aliases (a one-pixel red line on an odd row or column loses its colour)
and a steep colour ramp shifts by up to half a pixel. Rendered faces converted alone and back
to RGB by libswscale score 43.2 dB against the frames given (libswscale's own conversion:
43.65 dB; at 256 px 41.4 against 42.5). After H.264 coding the difference is gone: the 193
frames of ``benchmarks/bench_encoder.py`` at crf 20 decode to 39.60 dB RGB (the old path:
39.57 dB; at 256 px 37.54 against 37.52), and saturated colour bars come out better (51.1 dB
against 49.2). A 2x2-mean chroma (``cv2.resize`` + YCrCb) scored 43.9 dB alone, but in the
encoding loop it cost as much as libswscale, so it is not used.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["i420_shape", "rgb_to_i420"]


def i420_shape(width: int, height: int) -> tuple[int, int]:
    """(rows, cols) of the I420 array of a (W, H) frame (W, H even): (H * 3 / 2, W)."""
    return height * 3 // 2, width


def rgb_to_i420(rgb: np.ndarray) -> np.ndarray:
    """The I420 planes of an RGB image, as ``av.VideoFrame.from_ndarray(.., "yuv420p")`` takes.

    Args:
        rgb: (H, W, 3) uint8 RGB, H and W even.

    Returns:
        (H * 3 / 2, W) uint8, C-contiguous: rows 0..H-1 are Y (16..235); then U (Cb) and V
        (Cr), each (H/2, W/2) in 16..240, laid one after the other in the remaining rows.
        Chroma is each 2x2 block's top-left pixel's (see the module docstring).

    >>> i420 = rgb_to_i420(np.full((4, 6, 3), (255, 0, 0), np.uint8))
    >>> i420.shape, int(i420[0, 0]), int(i420[4, 0]), int(i420[5, 3])  # Y, U, V of pure red
    ((6, 6), 82, 90, 240)
    """
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
