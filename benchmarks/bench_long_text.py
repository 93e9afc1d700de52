"""Long texts scale linearly: peak memory, first frame and real-time factor of ``avatar-render
text_file=...`` on a ~10-second and a ~10-minute text.

    .venv/bin/python benchmarks/bench_long_text.py [--seconds 10 600] [--size 256] [--runs 1]
                                                   [--workdir DIR] [--override KEY=VALUE ...]

Each text is made of varied sentences repeated in a shuffled order (seeded) to about
``seconds`` of speech (the voice speaks ~16 characters per second), written to a file and
rendered by a fresh ``avatar-render text_file=<file>`` process (``long_text.max_text_chars``
raised to fit). A first, untimed render of a short text makes sure the identity is cached.
Peak RSS is the child's own ``ru_maxrss`` (``os.wait4``: what ``resource.getrusage(
RUSAGE_CHILDREN)`` reports for a process with that one child); the first frame is the one the
CLI logs ("first frame X s after process start"), the real-time factor the CLI's (end-to-end
wall of the render call per second of audio); wall is the whole process. Prints JSON
(medians over ``--runs``) with the 10-minute/10-second RSS ratio.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SENTENCES = [
    "Good morning, I hope you slept well and the day is treating you kindly so far.",
    "Today we could go over your plans for the week, or just talk for a while.",
    "I was thinking about the trip you mentioned, the mountains sound lovely.",
    "The weather should be kind to you, with clear skies and a gentle breeze.",
    "Tell me what you would like to see first, and we can make a plan together.",
    "Did you ever finish that book about the lighthouse keeper and his dog?",
    "I remember you said the ending surprised you, which made me curious.",
    "Sometimes a quiet evening with a cup of tea is exactly what we need.",
    "Your garden must be full of colour now that spring has finally arrived.",
    "How are the tomatoes doing? Last time they were just little green buds.",
    "If you want, I can remind you about the appointment on Thursday afternoon.",
    "It is perfectly fine to take a break when things feel a bit too much.",
    "Learning a new language takes patience, but every day counts.",
    "Shall we practise a few phrases before your friends come to visit?",
    "I find the sound of rain on the window strangely comforting, don't you?",
    "Walking by the river in the morning is a wonderful way to clear your head.",
    "You mentioned your sister is moving to a new city next month.",
    "That must be exciting and a little sad at the same time.",
    "Whatever you decide, I will be here to listen and help where I can.",
    "Let us take it one step at a time, there is no hurry at all.",
]
CHARS_PER_SECOND = 16.0  # hibari "heart" at speed 1.0, measured on this text
log = logging.getLogger("bench")


def make_text(seconds: float, seed: int = 0) -> str:
    """About ``seconds`` of speech: the sentences, reshuffled on every pass."""
    rng, parts, n = random.Random(seed), [], 0
    while n < seconds * CHARS_PER_SECOND:
        batch = SENTENCES[:]
        rng.shuffle(batch)
        for sentence in batch:
            parts.append(sentence)
            n += len(sentence) + 1
            if n >= seconds * CHARS_PER_SECOND:
                break
    return " ".join(parts)


def render_once(text_file: Path, out: Path, overrides: list[str], workdir: Path) -> dict:
    """One ``avatar-render`` process: exit code, peak RSS (MB), wall, and what the CLI logs."""
    cli = Path(sys.executable).with_name("avatar-render")
    argv = [str(cli), f"text_file={text_file}", f"out={out}", *overrides]
    argv.append(f"hydra.run.dir={workdir / 'hydra' / out.stem}")
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        stdout.seek(0)
        stderr.seek(0)
        logged = stdout.read().decode(errors="replace")
        errors = stderr.read().decode(errors="replace").strip().splitlines()[-3:]
    code = os.waitstatus_to_exitcode(status)
    first = re.search(r"first frame ([0-9.]+) s after process start", logged)
    rtf = re.search(r"([0-9.]+) s of audio, real-time factor ([0-9.]+)", logged)
    return {
        "exit_code": code,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "first_frame_s": float(first.group(1)) if first else None,
        "audio_s": float(rtf.group(1)) if rtf else None,
        "real_time_factor": float(rtf.group(2)) if rtf else None,
        "wall_s": round(wall, 2),
        "stderr_tail": errors if code else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 600.0])
    parser.add_argument("--size", type=int, default=256, help="renderer.size")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep the texts and MP4s here")
    parser.add_argument("--override", nargs="*", default=[], help="more avatar-render overrides")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report: dict = {"size": args.size, "runs": args.runs, "cases": {}}
    with tempfile.TemporaryDirectory(prefix="bench_long_text_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        texts = {seconds: make_text(seconds) for seconds in args.seconds}
        limit = max(len(t) for t in texts.values()) + 1
        overrides = [f"renderer.size={args.size}", f"long_text.max_text_chars={limit}"]
        overrides += args.override
        warm = workdir / "warm.txt"
        warm.write_text("Hello there.", encoding="utf-8")
        render_once(warm, workdir / "warm.mp4", overrides, workdir)  # the identity is cached
        for seconds, text in texts.items():
            text_file = workdir / f"text{seconds:g}s.txt"
            text_file.write_text(text, encoding="utf-8")
            log.info("rendering %s: %d characters", text_file.name, len(text))
            out = workdir / f"text{seconds:g}s.mp4"
            runs = [render_once(text_file, out, overrides, workdir) for _ in range(args.runs)]
            report["cases"][f"{seconds:g}s"] = {
                "characters": len(text),
                "audio_s": runs[-1]["audio_s"],
                "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in runs),
                "first_frame_s_median": statistics.median(r["first_frame_s"] or 0 for r in runs),
                "real_time_factor_median": statistics.median(
                    r["real_time_factor"] or 0 for r in runs
                ),
                "wall_s_median": statistics.median(r["wall_s"] for r in runs),
                "exit_codes": [r["exit_code"] for r in runs],
                "stderr_tail": runs[-1]["stderr_tail"],
            }
    cases = list(report["cases"].values())
    if len(cases) >= 2 and cases[0]["peak_rss_mb_median"]:
        ratio = cases[-1]["peak_rss_mb_median"] / cases[0]["peak_rss_mb_median"]
        report["peak_rss_ratio_longest_to_shortest"] = round(ratio, 3)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
