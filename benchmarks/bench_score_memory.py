"""Peak memory and wall time of ``python -m evals.score`` on long clips (115 s and 10 minutes).

    .venv/bin/python benchmarks/bench_score_memory.py [--seconds 115 600] [--size 512]
                                                      [--source-seconds 20] [--runs 1]
                                                      [--workdir DIR]

Renders about ``--source-seconds`` of speech with the pipeline (default companion, ``--size``
px), then writes its frames and audio repeated to each length with :class:`avatar.media.Mp4Writer`
into a temp dir, and scores every clip in a fresh ``python -m evals.score video=...`` process.
Peak RSS is that child's own ``ru_maxrss`` (``os.wait4``: the figure
``resource.getrusage(RUSAGE_CHILDREN)`` reports for a process with that one child); wall time
is the child's. Prints JSON (medians over ``--runs``). ``--workdir`` keeps the clips and reuses
them on the next run (same clips before and after a change).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEXT = (
    "Good morning! I hope you slept well. Today we could go over your plans for the week, "
    "or just talk for a while. Whatever you prefer is fine with me. ... "
    "I was thinking about the trip you mentioned. The mountains sound lovely this time of "
    "year, and the weather should be kind to you. Tell me what you would like to see first, "
    "and we can make a plan together."
)
log = logging.getLogger("bench")


def render_source(size: int, seconds: float, workdir: Path) -> Path:
    """A pipeline render of the default companion at ``size`` px, about ``seconds`` long."""
    from avatar.config import compose, pipeline_from_config

    cfg = compose("render", [f"renderer.size={size}", f"identity.cache_dir={workdir / 'cache'}"])
    pipeline = pipeline_from_config(cfg)
    text, out = TEXT, workdir / "source.mp4"
    while True:
        result = pipeline.render_text("default", text, out)
        if result.audio_seconds >= 0.8 * seconds:
            return out
        text = f"{text} {TEXT}"


def repeat_clip(source: Path, seconds: float, out: Path) -> Path:
    """``source``'s frames and audio repeated to ``seconds`` (whole frames), streamed to disk."""
    from avatar.media import EncoderSettings, Mp4Writer, iter_video_frames, read_mp4

    clip = read_mp4(source, with_frames=False)
    n_total = round(seconds * clip.fps)
    spf = clip.sample_rate / clip.fps
    h, w = next(iter_video_frames(source))[0].shape[:2]
    encoder = EncoderSettings(
        crf=23, preset="veryfast", threads=1, tune=None, x264_params="", audio_bitrate=128000
    )
    written = 0
    with Mp4Writer(
        out, fps=clip.fps, size=(w, h), sample_rate=clip.sample_rate, encoder=encoder
    ) as writer:
        while written < n_total:
            k = min(clip.n_frames, n_total - written)
            for i, (frame, _) in enumerate(iter_video_frames(source)):
                if i == k:
                    break
                writer.write_frame(frame)
            writer.write_audio(clip.audio[: round(k * spf)])
            written += k
    return out


def score_once(video: Path) -> dict:
    """Peak RSS (MB) and wall seconds of one ``python -m evals.score video=...`` process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "evals.score", f"video={video}"], stdout=out, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
    return {
        "exit_code": proc.returncode,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "wall_s": round(wall, 1),
        "stderr_tail": tail if proc.returncode else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[115.0, 600.0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--source-seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the clips here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from avatar.media import probe_mp4

    report: dict = {"size": args.size, "runs": args.runs, "cases": {}}
    with tempfile.TemporaryDirectory(prefix="bench_score_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        source = workdir / "source.mp4"
        if not source.is_file():
            render_source(args.size, args.source_seconds, workdir)
        for seconds in args.seconds:
            video = workdir / f"clip{seconds:g}s.mp4"
            if not video.is_file():
                repeat_clip(source, seconds, video)
            log.info("scoring %s (%.0f MB)", video.name, video.stat().st_size / 2**20)
            runs = [score_once(video) for _ in range(args.runs)]
            report["cases"][f"{seconds:g}s"] = {
                "frames": probe_mp4(video)["n_video_frames"],
                "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in runs),
                "wall_s_median": statistics.median(r["wall_s"] for r in runs),
                "exit_codes": [r["exit_code"] for r in runs],
                "stderr_tail": runs[-1]["stderr_tail"],
            }
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
