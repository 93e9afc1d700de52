"""Super-resolution of small faces at identity time: cost and effect on the default companion.

    .venv/bin/python benchmarks/bench_super_resolution.py [--size 512] [--companion default]

Derives the companion's identity twice, each in a fresh child process with a cold cache (a temp
``AVATAR_CACHE_DIR``): ``identity.super_resolution=off`` and ``=auto`` (configs/render.yaml's other
identity settings). Each child reports its wall time for ``derive_identity`` and its peak RSS
(VmHWM). The parent then compares the portraits, and a third one: Real-ESRGAN's whole output
pasted in (``detail_only=False``), which the module does not use (see avatar/identity/upscale.py):

- ID-dlib (``evals.functional.identity``, < 0.6 = same person) of each portrait to the plain
  portrait and to the source image;
- sharpness on the cheeks (discs of 0.15 eye distances around landmarks 205 and 425) and on the
  whole face (the mesh's hull): variance of the Laplacian of the grey image, and
  ``texture_blur_px`` (the renderer's blur estimate: the Gaussian sigma of a sharp texture that
  looks the same; ~0.5 sharp, ~1.5 a 3x upscale).

Prints JSON. Portraits are written to ``--out`` (PNG) when given. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, sys, time
import numpy as np
from omegaconf import OmegaConf
from avatar.companion import load_companion
from avatar.config import compose
from avatar.identity.derive import IdentitySettings, derive_identity
mode, size, companion, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
node = OmegaConf.to_container(compose("render").identity, resolve=True)
settings = IdentitySettings(**{**node, "super_resolution": mode})
spec = load_companion(companion)
start = time.perf_counter()
identity = derive_identity(spec, size=size, settings=settings)
seconds = time.perf_counter() - start
np.save(out, identity.portrait)
status = open("/proc/self/status").read().split("\n")
hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
print(json.dumps({"derive_s": round(seconds, 2), "peak_rss_mib": round(hwm / 1024)}))
"""


def _derive(mode: str, size: int, companion: str, folder: Path) -> tuple[dict, Path]:
    out = folder / f"portrait-{mode}.npy"
    env = {**os.environ, "AVATAR_CACHE_DIR": str(folder / f"cache-{mode}")}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(size), companion, str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1]), out


def _sharpness(portrait, region) -> dict[str, float]:
    import cv2
    import numpy as np

    from avatar.renderers.meshwarp.mouth_colours import texture_blur_px

    grey = cv2.cvtColor(portrait, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = float(np.var(cv2.Laplacian(grey, cv2.CV_32F)[region]))
    return {"laplacian_var": round(lap, 1), "blur_px": texture_blur_px(portrait, region)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--companion", default="default")
    parser.add_argument("--threads", type=int, default=0, help="Real-ESRGAN threads (raw run)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the portraits (PNG)")
    args = parser.parse_args()

    import cv2
    import numpy as np

    from avatar.companion import load_companion, load_image
    from avatar.identity import upscale
    from avatar.identity.alignment import alignment_matrix, warp_portrait
    from avatar.identity.search import detect_faces
    from evals.functional.identity import DlibFaceEmbedder, identity_distance

    report: dict = {"size": args.size, "companion": args.companion, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        portraits = {}
        for mode in ("off", "auto"):
            report[mode], path = _derive(mode, args.size, args.companion, folder)
            portraits[mode] = np.load(path)
    spec = load_companion(args.companion)
    source = load_image(spec.images[0], max_megapixels=40, max_side=4096)
    face = detect_faces(source, max_faces=1)[0]
    matrix = alignment_matrix(face.landmarks, size=args.size)
    plain = warp_portrait(source, matrix, size=args.size)
    report["enlargement"] = round(float(np.sqrt(abs(np.linalg.det(matrix[:, :2])))), 3)
    report["same_as_plain"] = {m: bool(np.array_equal(p, plain)) for m, p in portraits.items()}
    portraits["raw_sr"] = upscale.sharp_portrait(
        source, face.landmarks, plain, matrix, threads=args.threads, detail_only=False
    )

    marks = detect_faces(plain, max_faces=1)[0]
    lm, eye = marks.landmarks, marks.eye_distance
    yy, xx = np.mgrid[: args.size, : args.size]
    cheeks = np.zeros((args.size, args.size), bool)
    for i in (205, 425):
        cheeks |= (xx - lm[i, 0]) ** 2 + (yy - lm[i, 1]) ** 2 < (0.15 * eye) ** 2
    hull = np.zeros((args.size, args.size), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(lm[:, :2].astype(np.int32)), 1)
    embedder = DlibFaceEmbedder()
    ref = {"plain": embedder.embed(plain), "source": embedder.embed(source)}
    for name, portrait in portraits.items():
        code = embedder.embed(portrait)
        row = report.setdefault(name, {})
        for other, emb in ref.items():
            dist = float(identity_distance(code, emb)[0, 0])
            row[f"id_dlib_to_{other}"] = round(dist, 3)
        row["cheeks"] = _sharpness(portrait, cheeks)
        row["face"] = _sharpness(portrait, hull.astype(bool))
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.out / f"portrait-{name}.png"), portrait[..., ::-1])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
