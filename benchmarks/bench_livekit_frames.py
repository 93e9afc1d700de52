"""Published real-time frames: RGB24 (LiveKit converts to I420) against I420 made by OpenCV.

    .venv/bin/python benchmarks/bench_livekit_frames.py [--runs 5]

``serve/livekit/frames.py`` hands LiveKit RGB24 frames; WebRTC encodes I420, so LiveKit
converts each (libyuv, in its FFI, inside ``VideoSource.capture_frame``). Would an I420 frame
from ``cv2.COLOR_RGB2YUV_I420`` be cheaper? On the rendered frames of the default companion at
512 and 256 px (rendered here once), CPU ms per frame, medians of ``--runs``:

- ``convert``: the frame made, then ``frame.convert(I420)`` (a conversion through the FFI and
  back into Python), against the I420 frame made with OpenCV;
- ``capture``: the frame made and captured by a ``rtc.VideoSource`` (no room needed), the
  path the avatar's frames take;

and the PSNR of each frame read back as RGB (LiveKit's I420 -> RGB24, as ``image_of`` does)
against the frame rendered.

Measured on the 2-core machine with others' jobs running: ``convert`` favours I420 (512 px:
0.34 vs 0.16 ms; 256 px: 0.11 vs 0.05 ms), but ``convert`` also pays for copying its result
back into Python. What publishing costs, ``capture``, is no lower with I420: 0.27 vs 0.27 ms
at 512 px (0.27 vs 0.38 in another run), 0.09 vs 0.12 ms at 256 px. LiveKit's own conversion
inside the capture is cheap, and an I420 frame is copied there too, so OpenCV's conversion is
extra work. Read back, OpenCV's I420 is as good at 512 px (46.4 vs 46.3 dB) and worse at 256 px
(43.3 vs 44.4 dB: OpenCV samples chroma, libyuv averages it). So published frames stay RGB24.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np
from livekit import rtc

from serve.livekit.frames import image_of, video_frame

log = logging.getLogger("bench")
I420 = rtc.VideoBufferType.I420


def i420_frame(image: np.ndarray) -> rtc.VideoFrame:
    """An I420 ``rtc.VideoFrame`` of an (H, W, 3) uint8 RGB image, converted by OpenCV."""
    height, width = image.shape[:2]
    planes = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YUV_I420)
    return rtc.VideoFrame(width, height, I420, memoryview(planes.reshape(-1)))  # 1-D: no copy


def render(size: int) -> np.ndarray:
    """(T, S, S, 3) uint8 frames of the default companion saying a sentence."""
    from avatar.audio import Audio
    from avatar.config import compose, pipeline_from_config

    pipeline = pipeline_from_config(compose("render", [f"renderer.size={size}"]))
    speech = pipeline.speak("Good morning! I hope you slept well. Shall we go over the week?")
    motion = pipeline.motion_for(speech)
    audio = Audio(speech.audio, speech.sample_rate)
    return np.stack(list(pipeline.frames("default", motion, audio)))


def cpu_ms(frames: np.ndarray, work: Callable[[int, np.ndarray], object], runs: int) -> float:
    """Median over runs of CPU ms per frame of ``work(index, frame)``."""
    times = []
    for _ in range(runs):
        cpu = time.process_time()
        for index, frame in enumerate(frames):
            work(index, frame)
        times.append(1000 * (time.process_time() - cpu) / len(frames))
    return statistics.median(times)


def psnr(frames: np.ndarray, to_i420: Callable[..., object]) -> float:
    """PSNR (dB, RGB) against ``frames`` of their I420 frames read back by ``image_of``."""
    mse = [np.mean((image_of(to_i420(f)).astype(np.float64) - f) ** 2) for f in frames[::10]]
    return float(10 * np.log10(255.0**2 / np.mean(mse)))


# (name, the frame given to LiveKit, that frame in I420 as WebRTC takes it)
PATHS: list[tuple[str, Callable[[np.ndarray], rtc.VideoFrame], Callable[..., object]]] = [
    ("RGB24 (now)", video_frame, lambda image: video_frame(image).convert(I420)),
    ("I420 by OpenCV", i420_frame, i420_frame),
]


async def measure(sizes: tuple[int, ...], runs: int) -> None:
    for size in sizes:
        frames = render(size)
        log.info("rendered %d frames at %d px", len(frames), size)
        source = rtc.VideoSource(size, size)
        for name, make, to_i420 in PATHS:
            convert = cpu_ms(frames, lambda i, f, to_i420=to_i420: to_i420(f), runs)
            capture = cpu_ms(
                frames,
                lambda i, f, make=make, src=source: src.capture_frame(
                    make(f), timestamp_us=i * 40_000
                ),
                runs,
            )
            db = psnr(frames, to_i420)
            print(f"| {size} | {name} | {convert:.3f} | {capture:.3f} | {db:.2f} |", flush=True)
        await source.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(
        "| px | frame given to LiveKit | made + in I420, CPU ms | made + captured, CPU ms |"
        " read back, PSNR dB |"
    )
    print("|---|---|---|---|---|")
    asyncio.run(measure((512, 256), args.runs))


if __name__ == "__main__":
    main()
