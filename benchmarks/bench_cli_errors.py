"""How fast ``avatar-render`` refuses bad input and stops on a signal (fresh processes).

    .venv/bin/python benchmarks/bench_cli_errors.py [--runs 3] [--size 128]

Prints JSON: per bad input, the median wall seconds of a whole ``avatar-render`` process that
exits 2 (process start included), next to a process that only imports the CLI and a good
render of a short text for scale; and
the median seconds from SIGTERM (sent once the hidden temp MP4 exists) to the process's exit,
with its exit code and whether anything was left beside the output.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXE = str(Path(sys.executable).with_name("avatar-render"))
LONG = "This long sentence keeps the companion talking for a good while. " * 8


def timed(args: list[str], exe: tuple[str, ...] = (EXE,)) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run([*exe, *args], capture_output=True, text=True)
    return time.perf_counter() - t0, proc.returncode


def stop_with_sigterm(common: list[str], outdir: Path) -> tuple[float, int, list[str]]:
    proc = subprocess.Popen(
        [EXE, *common, f"text={LONG.strip()}", f"out={outdir / 'o.mp4'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not list(outdir.glob(".o.mp4.*.part.mp4")) and proc.poll() is None:
        time.sleep(0.005)
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait()
    return time.perf_counter() - t0, code, sorted(p.name for p in outdir.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "a_dir").mkdir()
        common = [f"hydra.run.dir={work / 'hydra'}", f"identity.cache_dir={work / 'cache'}"]
        common.append(f"renderer.size={args.size}")
        cases = {
            "good render (text=Hi.)": ["text=Hi.", f"out={work / 'ok.mp4'}"],
            "out is a directory": [f"out={work / 'a_dir'}"],
            "empty out": ["out="],
            "crf 99": ["encoder.crf=99", f"out={work / 'x.mp4'}"],
            "emotion with listen": ["emotion=happy", "listen=a.wav", f"out={work / 'x.mp4'}"],
        }
        report: dict = {"runs": args.runs, "size": args.size, "exit_seconds_median": {}}
        timed([*common, *cases["good render (text=Hi.)"]])  # warm the identity cache
        importing = (sys.executable, "-c", "import avatar.cli")
        for name, case in {"only importing avatar.cli": [], **cases}.items():
            exe = importing if not case else (EXE,)
            results = [timed([*common, *case] if case else [], exe) for _ in range(args.runs)]
            report["exit_seconds_median"][name] = {
                "seconds": round(statistics.median(r[0] for r in results), 3),
                "exit_code": results[0][1],
            }
        stops = []
        for i in range(args.runs):
            outdir = work / f"sig{i}"
            outdir.mkdir()
            stops.append(stop_with_sigterm(common, outdir))
        report["sigterm_to_exit_seconds_median"] = round(statistics.median(s[0] for s in stops), 3)
        report["sigterm_exit_codes"] = sorted({s[1] for s in stops})
        report["sigterm_left_beside_output"] = sorted({n for s in stops for n in s[2]})
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
