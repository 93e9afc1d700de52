"""MP4 encoding benchmark: libx264 settings and the RGB -> I420 path, per frame, on real renders.

    .venv/bin/python benchmarks/bench_encoder.py [--size 512|256] [--runs 3]

Renders about 8 s of the default companion once (identity from the warm cache), then writes
the same frames and speech through :class:`avatar.media.Mp4Writer` once per candidate setting,
``--runs`` times, and prints two tables:

1. Colour: the old path (RGB frames converted by libswscale inside ``encode``) against the
   new one (:func:`avatar.media.rgb_to_i420`, OpenCV) on saturated bars, a gradient, solid
   colours and rendered frames: PSNR of the decoded RGB frames between the two paths and
   against the frames given, with today's settings; and of the conversions alone (no encoder,
   converted back to RGB by libswscale).
2. Encoders: ms per frame of wall and CPU time (process time, all threads; medians of the
   runs; from opening the writer to closing it, the AAC encoding of the speech included: the
   same in every row), file size, and PSNR of the decoded video against the rendered frames,
   both over RGB (the decoder's RGB against the frames given: conversion + coding loss) and
   over luma Y (decoded Y against the frames' BT.601 Y: the coding loss alone), each from the
   MSE over the whole clip.

Chosen default (``configs/render.yaml`` ``encoder:``): veryfast, crf 20, threads 1, no tune,
``x264_params: me=dia``. Measured on the 2-core machine while others' jobs ran (so CPU time
is the steadier figure), medians of 5, 193 frames (7.7 s):

- 512 px: before (RGB into ``encode``, converted by libswscale; libx264's own threads, i.e. 2
  sliced) 4.31 ms CPU a frame, 168 KB of video, 39.57 dB RGB, 44.77 dB Y; now 3.52 ms, 165 KB,
  39.60 dB RGB, 44.72 dB Y: 0.79 ms (18 %) less, 21 % less without the 0.49 ms of AAC that
  every row carries.
- 256 px: 1.84 -> 1.50 ms, 74 -> 70 KB, 37.52 -> 37.53 dB RGB.

Where it comes from: the OpenCV conversion handed over without a copy (4.31 -> 3.67 ms at 512
px, libx264 unchanged; the conversions alone 0.78 vs 0.19 ms); one libx264 thread instead of
two sliced ones (-0.1 ms CPU here, -0.9 ms in a quieter run, files 2-5 % smaller: slices cost
bits; the renderer holds the other core, so a second encoder thread only competes with it);
``me=dia`` (-0.05 ms at 512 px, nothing at 256, a KB smaller). Not taken, though cheaper:
``subme=1`` (-0.6 ms at 512 px but +13 % size at the same PSNR: a trade, not a saving),
superfast (-0.6 ms but 2.8x the size; at crf 25, +26 % size and 0.4 dB worse), ultrafast (7x
the size), tune zerolatency (2.3x the size: no look-ahead or B-frames; the stream writer still
adds it, for latency) and fastdecode (+11 % size, -0.15 dB Y, for 0.06 ms).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from avatar.media import EncoderSettings, Mp4Writer, iter_video_frames, rgb_to_i420

TEXT = (
    "Good morning! I hope you slept well. Today we could go over your plans for the week, "
    "or just talk for a while."
)
log = logging.getLogger("bench")

TODAY = EncoderSettings(
    crf=20, preset="veryfast", threads=0, tune=None, x264_params="", audio_bitrate=128000
)
T1 = dataclasses.replace(TODAY, threads=1)
CANDIDATES: list[tuple[str, EncoderSettings, bool]] = [  # (label, settings, via libswscale)
    ("before: veryfast, threads auto, RGB via swscale", TODAY, True),
    ("veryfast, threads auto (I420 from here on)", TODAY, False),
    ("veryfast, threads 2", dataclasses.replace(TODAY, threads=2), False),
    ("veryfast, threads 1", T1, False),
    *(
        (f"{p}, threads 1", dataclasses.replace(T1, preset=p), False)
        for p in ("ultrafast", "superfast", "faster", "fast")
    ),
    ("superfast crf 25, threads 1", dataclasses.replace(T1, preset="superfast", crf=25), False),
    *(
        (f"veryfast, threads 1, tune {t}", dataclasses.replace(T1, tune=t), False)
        for t in ("zerolatency", "fastdecode", "fastdecode,zerolatency")
    ),
    *(
        (f"veryfast, threads 1, {x}", dataclasses.replace(T1, x264_params=x), False)
        for x in (
            "me=dia",
            "subme=1",
            "me=dia:subme=1",
            "partitions=i8x8,i4x4",
            "bframes=0",
            "aq-mode=0",
        )
    ),
    (
        "veryfast crf 19, threads 1, me=dia:subme=1",
        dataclasses.replace(T1, crf=19, x264_params="me=dia:subme=1"),
        False,
    ),
    ("veryfast crf 21, threads 1", dataclasses.replace(T1, crf=21), False),
    (
        "veryfast, threads 2, me=dia",
        dataclasses.replace(TODAY, threads=2, x264_params="me=dia"),
        False,
    ),
]


class SwscaleWriter(Mp4Writer):
    """The writer as it was: RGB frames into ``encode``, converted by libswscale there."""

    def write_frame(self, frame_rgb: np.ndarray) -> None:
        self._encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format="rgb24"))


def render(size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(T, S, S, 3) uint8 frames, (N,) float32 speech and its rate, of the default companion."""
    from avatar.audio import Audio
    from avatar.config import compose, pipeline_from_config

    pipeline = pipeline_from_config(compose("render", [f"renderer.size={size}"]))
    speech = pipeline.speak(TEXT)
    motion = pipeline.motion_for(speech)
    audio = Audio(speech.audio, speech.sample_rate)
    frames = np.stack(list(pipeline.frames("default", motion, audio)))
    log.info("rendered %d frames at %d px (%.2f s of speech)", len(frames), size, speech.duration)
    return frames, speech.audio, speech.sample_rate


def encode(
    path: Path,
    frames: np.ndarray,
    audio: np.ndarray,
    rate: int,
    settings: EncoderSettings,
    swscale: bool,
) -> tuple[float, float]:
    """Write one MP4; (wall, CPU) seconds from opening the writer to closing it."""
    writer_type = SwscaleWriter if swscale else Mp4Writer
    size = (frames.shape[2], frames.shape[1])
    wall, cpu = time.perf_counter(), time.process_time()
    with writer_type(path, fps=25, size=size, sample_rate=rate, encoder=settings) as writer:
        writer.write_audio(audio)
        writer.write_frames(frames)
    return time.perf_counter() - wall, time.process_time() - cpu


def psnr(mse: float) -> float:
    """PSNR in dB of 8-bit images with mean squared error ``mse``."""
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def decoded_psnr(path: Path, frames: np.ndarray) -> tuple[float, float]:
    """(RGB, Y) PSNR of the MP4's decoded frames against ``frames``, over the whole clip."""
    rgb_se = y_se = 0.0
    for (decoded, _), frame in zip(iter_video_frames(path), frames, strict=True):
        rgb_se += np.mean((decoded.astype(np.float32) - frame) ** 2)
    with av.open(str(path)) as container:
        for vf, frame in zip(container.decode(video=0), frames, strict=True):
            y = vf.to_ndarray(format="yuv420p")[: frame.shape[0]].astype(np.float32)
            y_se += np.mean((y - rgb_to_i420(frame)[: frame.shape[0]]) ** 2)
    return psnr(rgb_se / len(frames)), psnr(y_se / len(frames))


def video_kb(path: Path) -> float:
    """Size of the MP4's video packets, KB (the file less the AAC and the container)."""
    with av.open(str(path)) as container:
        return sum(p.size for p in container.demux(video=0)) / 1024


def aac_ms_per_frame(audio: np.ndarray, rate: int, n_frames: int) -> float:
    """CPU ms per video frame of AAC-encoding ``audio`` alone (in every row's figures)."""
    cpu = time.process_time()
    codec = av.CodecContext.create("aac", "w")
    codec.sample_rate, codec.layout, codec.bit_rate = rate, "mono", TODAY.audio_bitrate
    codec.format, codec.time_base = "fltp", Fraction(1, rate)
    codec.open()
    step = codec.frame_size
    for start in range(0, len(audio), step):
        frame = av.AudioFrame.from_ndarray(audio[None, start : start + step], "fltp", "mono")
        frame.sample_rate, frame.pts = rate, start
        codec.encode(frame)
    codec.encode(None)
    return 1000 * (time.process_time() - cpu) / n_frames


def encoder_table(frames: np.ndarray, audio: np.ndarray, rate: int, runs: int, tmp: Path) -> None:
    times: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(CANDIDATES))}
    for run in range(runs):  # rounds over all settings, so load from elsewhere hits them alike
        for i, (_, settings, swscale) in enumerate(CANDIDATES):
            times[i].append(encode(tmp / f"c{i}.mp4", frames, audio, rate, settings, swscale))
        log.info("round %d/%d of %d settings done", run + 1, runs, len(CANDIDATES))
    aac = aac_ms_per_frame(audio.astype(np.float32), rate, len(frames))
    print(
        f"\n{len(frames)} frames at {frames.shape[1]} px; ms/frame include the AAC encoding of"
        f" the speech, {aac:.2f} ms CPU/frame alone; KB: the video stream"
    )
    print("| setting | wall ms/frame | CPU ms/frame | video KB | PSNR RGB dB | PSNR Y dB |")
    print("|---|---|---|---|---|---|")
    for i, (label, _, _) in enumerate(CANDIDATES):
        path = tmp / f"c{i}.mp4"
        wall = 1000 * statistics.median(t[0] for t in times[i]) / len(frames)
        cpu = 1000 * statistics.median(t[1] for t in times[i]) / len(frames)
        rgb_db, y_db = decoded_psnr(path, frames)
        kb = video_kb(path)
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {kb:.0f} | {rgb_db:.2f} | {y_db:.2f} |")


def colour_frames(frames: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Named test frames at the renders' size: bars, a gradient, solid colours, renders."""
    size = frames.shape[1]
    colours = [
        (255, 0, 0),
        (0, 255, 0),
        (0, 0, 255),
        (255, 255, 0),
        (0, 255, 255),
        (255, 0, 255),
        (255, 255, 255),
        (0, 0, 0),
    ]
    bars = np.zeros((size, size, 3), np.uint8)
    for i, c in enumerate(colours):
        bars[:, i * size // 8 : (i + 1) * size // 8] = c
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    x, y = np.meshgrid(ramp, ramp)
    out = [("bars", bars), ("gradient", np.stack([x, y, 255 - x], -1).round().astype(np.uint8))]
    out += [(f"solid {c}", np.full((size, size, 3), c, np.uint8)) for c in colours[:3]]
    out += [("solid skin", np.full((size, size, 3), (200, 150, 120), np.uint8))]
    return out + [(f"render {i}", frames[i]) for i in range(0, len(frames), len(frames) // 4)]


_SWSCALE = VideoReformatter()  # one, as the encoder's: a fresh one per frame costs 0.5 ms more
CONVERSIONS = {  # RGB (H, W, 3) -> the yuv420p frame libx264 gets, before and now
    "PyAV copy + swscale": lambda rgb: _SWSCALE.reformat(
        av.VideoFrame.from_ndarray(rgb, format="rgb24"), format="yuv420p"
    ),
    "rgb_to_i420, no copy": lambda rgb: av.VideoFrame.from_numpy_buffer(
        rgb_to_i420(rgb), "yuv420p"
    ),
}


def conversion_ms(frames: np.ndarray, runs: int) -> dict[str, float]:
    """CPU ms per frame of each conversion (RGB array -> yuv420p VideoFrame), median of runs."""
    out = {}
    for name, convert in CONVERSIONS.items():
        times = []
        for _ in range(runs):
            cpu = time.process_time()
            for frame in frames:
                convert(frame)
            times.append(time.process_time() - cpu)
        out[name] = 1000 * statistics.median(times) / len(frames)
    return out


def colour_table(frames: np.ndarray, runs: int, tmp: Path) -> None:
    named = colour_frames(frames)
    test = np.stack([f for _, f in named])
    decoded = {}
    for swscale in (True, False):
        path = tmp / f"colour{int(swscale)}.mp4"
        encode(path, test, np.zeros(16000, np.float32), 16000, TODAY, swscale)
        decoded[swscale] = [f for f, _ in iter_video_frames(path)]

    def db(a: np.ndarray, b: np.ndarray) -> str:
        return f"{psnr(float(np.mean((a.astype(np.float64) - b) ** 2))):.2f}"

    print(
        "\nColour: RGB PSNR dB. Encoded with today's settings (veryfast crf 20) the old way"
        " (swscale in encode) and the new (rgb_to_i420), decoded; and each conversion alone,"
        " back to RGB by swscale as a decoder does"
    )
    print(
        "| frame | encoded: old vs new | given vs old | given vs new | alone: swscale vs"
        " rgb_to_i420 | given vs swscale | given vs rgb_to_i420 |"
    )
    print("|---|---|---|---|---|---|---|")
    for (name, frame), old, new in zip(named, decoded[True], decoded[False], strict=True):
        back = {k: f(frame).to_ndarray(format="rgb24") for k, f in CONVERSIONS.items()}
        cells = [db(old, new), db(frame, old), db(frame, new)]
        cells += [db(*back.values())] + [db(frame, b) for b in back.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")
    costs = conversion_ms(frames, runs)
    print(
        "\nConversion cost, CPU ms/frame (RGB array -> yuv420p frame): "
        + ", ".join(f"{k} {v:.2f}" for k, v in costs.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, choices=(512, 256), default=512)
    parser.add_argument("--runs", type=int, default=3, help="encodes per setting (median)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    frames, audio, rate = render(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        colour_table(frames, args.runs, Path(tmp))
        encoder_table(frames, audio, rate, args.runs, Path(tmp))


if __name__ == "__main__":
    main()
