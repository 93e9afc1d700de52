"""Time and peak memory of refusing image bombs and of reading and deriving from 30 MP images.

    .venv/bin/python benchmarks/bench_image_limits.py [--runs 3] [--bomb-runs 50]

Writes into a temp dir: a 65-byte PNG declaring 100000 x 100000, a real 9000 x 9000 PNG (81 MP,
1-bit, compressed to 10 kB), a 6708 x 4472 (30 MP) photo-like image holding the astronaut scaled up
(as JPEG and PNG), and a 30 MP face-less JPEG (smooth texture). Each case runs in a fresh child
process that imports and warms up first (the landmarker loaded), then resets its peak RSS
(``/proc/self/clear_refs``) and runs the case ``--runs`` times; the peak is the child's VmHWM
minus its RSS before the case. ``decode-full`` is what ``load_image`` did before the limits: one
unreduced ``cv2.imdecode``. Identity settings are ``configs/render.yaml``'s (40 MP, 4096 px),
without the cache. Prints JSON: median seconds and peak MiB per case. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

log = logging.getLogger("bench")
W30, H30 = 6708, 4472


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, idat: bytes, bit_depth: int, colour_type: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
    return head + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def write_inputs(folder: Path) -> dict[str, Path]:
    """The test images (see the module docstring), by name."""
    import cv2
    import numpy as np

    from avatar.companion import EMBEDDED_ASTRONAUT, load_image

    paths = {name: folder / name for name in ("bomb.png", "real81mp.png")}
    paths["bomb.png"].write_bytes(_png(100_000, 100_000, zlib.compress(b""), 8, 2))
    comp = zlib.compressobj(9)
    row = bytes(1 + 9000 // 8)
    idat = b"".join(comp.compress(row) for _ in range(9000)) + comp.flush()
    paths["real81mp.png"].write_bytes(_png(9000, 9000, idat, 1, 0))
    astronaut = load_image(EMBEDDED_ASTRONAUT, max_megapixels=1, max_side=512)
    photo = np.full((H30, W30, 3), 90, np.uint8)
    x0 = (W30 - H30) // 2
    photo[:, x0 : x0 + H30] = cv2.resize(astronaut, (H30, H30), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 256, (45, 67, 3), np.uint8), (W30, H30), cv2.INTER_CUBIC)
    for name, image in (("photo30mp", photo), ("noface30mp", texture)):
        for suffix in (".jpg", ".png") if name == "photo30mp" else (".jpg",):
            paths[name + suffix] = folder / (name + suffix)
            params = [cv2.IMWRITE_JPEG_QUALITY, 92] if suffix == ".jpg" else []
            cv2.imwrite(str(paths[name + suffix]), image[..., ::-1], params)
    return paths


CASES = {
    "refuse bomb.png (100000x100000 declared)": ("load", "bomb.png"),
    "refuse real81mp.png (9000x9000)": ("load", "real81mp.png"),
    "decode-full photo30mp.jpg (before)": ("decode-full", "photo30mp.jpg"),
    "decode-full photo30mp.png (before)": ("decode-full", "photo30mp.png"),
    "load_image photo30mp.jpg": ("load", "photo30mp.jpg"),
    "load_image photo30mp.png": ("load", "photo30mp.png"),
    "derive_identity photo30mp.jpg": ("derive", "photo30mp.jpg"),
    "derive_identity photo30mp.png": ("derive", "photo30mp.png"),
    "derive_identity noface30mp.jpg (no face)": ("derive", "noface30mp.jpg"),
}


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(kind: str, path: Path, runs: int) -> dict:
    """Runs one case ``runs`` times in this process; returns its figures."""
    import cv2
    import numpy as np
    from omegaconf import OmegaConf

    from avatar.companion import CompanionSpec, load_image
    from avatar.config import compose
    from avatar.errors import AvatarError
    from avatar.identity.derive import IdentitySettings, derive_identity

    node = OmegaConf.to_container(compose("render").identity, resolve=True)
    settings = IdentitySettings(**{**node, "use_cache": False})  # type: ignore[arg-type]
    limits = {"max_megapixels": settings.max_image_megapixels, "max_side": settings.max_image_side}
    warm = CompanionSpec(id="warm", name="Warm", images=["embedded:astronaut"])
    derive_identity(warm, size=256, settings=settings)  # loads the landmarker

    def once() -> str:
        try:
            if kind == "decode-full":
                img = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_UNCHANGED)
                return f"{img.shape[1]}x{img.shape[0]}"
            if kind == "load":
                img = load_image(path, **limits)
                return f"{img.shape[1]}x{img.shape[0]}"
            spec = CompanionSpec(id="bench", name="Bench", images=[str(path)])
            ident = derive_identity(spec, size=256, settings=settings)
            return f"identity from image {ident.source_index + 1}"
        except AvatarError as exc:
            return f"{type(exc).__name__}: {str(exc)[:160]}"

    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _rss_kib("VmRSS")
    times, outcome = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        outcome = once()
        times.append(time.perf_counter() - t0)
    return {
        "median_s": round(statistics.median(times), 6),
        "runs": runs,
        "peak_mib": round((_rss_kib("VmHWM") - before) / 1024, 1),
        "outcome": outcome,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bomb-runs", type=int, default=50)
    hidden = {"nargs": 3, "metavar": ("KIND", "PATH", "RUNS"), "help": argparse.SUPPRESS}
    parser.add_argument("--child", **hidden)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.child:
        kind, path, runs = args.child
        print(json.dumps(child(kind, Path(path), int(runs))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_inputs(Path(tmp))
        sizes = {name: p.stat().st_size for name, p in paths.items()}
        report: dict[str, object] = {"file_bytes": sizes}
        for label, (kind, name) in CASES.items():
            runs = args.bomb_runs if name in ("bomb.png", "real81mp.png") else args.runs
            cmd = [sys.executable, __file__, "--child", kind, str(paths[name]), str(runs)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            report[label] = json.loads(done.stdout.strip().splitlines()[-1])
            log.warning("%s: %s", label, report[label])
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
