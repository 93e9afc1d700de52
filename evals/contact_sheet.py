"""A contact sheet of the face: every mouth shape, blink and emotion, enlarged, on three portraits.

    python -m evals.contact_sheet [out=out/look.png] [portraits=default,photo,cartoon]
                                  [RENDER_OVERRIDE ...]     (e.g. renderer.size=256)

For each portrait (:mod:`evals.look_portraits`) it renders one frame per pose of
:data:`POSES` with the configured renderer and lays out three rows: the face, the mouth
enlarged and the eyes enlarged. The first column is the aligned source portrait. The sheet is
written as a PNG; ``make look`` writes ``out/look.png``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from avatar.cache_root import cache_root
from avatar.companion import CompanionSpec
from avatar.entry_errors import report
from avatar.errors import OutputPathError
from avatar.identity import topology as topo
from avatar.media.outputs import check_output_path
from avatar.motion.emotion import EXPRESSION_TARGETS
from avatar.motion.track import CHANNELS, MOUTH_CHANNELS
from avatar.motion.visemes import VISEME_TARGETS
from avatar.sample_portraits import LOOK_PORTRAITS, look_portraits

log = logging.getLogger(__name__)

__all__ = ["POSES", "contact_sheet", "crop_boxes", "main", "pose_values"]

TILE = 128
"""Side of a face or mouth tile in the sheet, pixels (the eyes tile is half as high)."""
_LABEL_H = 18


def _poses() -> dict[str, dict[str, float]]:
    poses: dict[str, dict[str, float]] = {"rest": {}}
    for name, target in VISEME_TARGETS.items():
        if name != "sil":
            poses[name] = dict(zip(MOUTH_CHANNELS, target, strict=True))
    poses["wide"] = {"jaw_open": 1.0, "lip_open": 0.8}
    poses["blink"] = {"blink_l": 1.0, "blink_r": 1.0}
    poses["half-blink"] = {"blink_l": 0.5, "blink_r": 0.5}
    for name, target in EXPRESSION_TARGETS.items():
        if target:
            poses[name] = dict(target)
    return poses


POSES: dict[str, dict[str, float]] = _poses()
"""Pose name -> channel values (others 0): rest, the visemes, a wide-open jaw, a blink and a
half blink, the emotions at intensity 1."""


def pose_values(poses: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    """(len(poses), len(CHANNELS)) float32 channel values, one row per pose."""
    out = np.zeros((len(poses), len(CHANNELS)), np.float32)
    for row, pose in enumerate(poses.values()):
        for channel, value in pose.items():
            out[row, CHANNELS.index(channel)] = value
    return out


def _square(cx: float, cy: float, side: float, size: int) -> tuple[int, int, int, int]:
    half = 0.5 * min(side, size)
    x0 = int(round(min(max(cx - half, 0.0), size - 2 * half)))
    y0 = int(round(min(max(cy - half, 0.0), size - 2 * half)))
    return x0, y0, x0 + int(2 * half), y0 + int(2 * half)


def crop_boxes(landmarks: np.ndarray, size: int) -> dict[str, tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) boxes of the face, mouth and eyes in portrait pixels.

    Args:
        landmarks: (478, 2+) rest landmarks in portrait pixels.
        size: portrait side S.

    The mouth box is square, 1.8 mouth widths wide and lowered to hold an open jaw; the eyes
    box is twice as wide as high and holds both eyes and brows.
    """
    pts = np.asarray(landmarks, np.float64)[:, :2]
    oval = pts[topo.FACE_OVAL]
    face = _square(*oval.mean(axis=0), 1.15 * np.ptp(oval, axis=0).max(), size)
    left, right = pts[topo.MOUTH_CORNER_L], pts[topo.MOUTH_CORNER_R]
    width = float(np.linalg.norm(left - right))
    mouth_centre = pts[topo.LIPS_OUTER].mean(axis=0) + [0.0, 0.25 * width]
    mouth = _square(*mouth_centre, 1.8 * width, size)
    eyes = pts[topo.EYE_L + topo.EYE_R]
    span = 1.35 * float(np.ptp(eyes[:, 0]))
    cx, cy = eyes.mean(axis=0) - [0.0, 0.05 * span]
    x0, y0, x1, _ = _square(cx, cy, span, size)
    y0 = int(round(min(max(cy - span / 4, 0.0), size - span / 2)))
    return {"face": face, "mouth": mouth, "eyes": (x0, y0, x1, y0 + (x1 - x0) // 2)}


def _tile(frame: np.ndarray, box: tuple[int, int, int, int], width: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    crop = frame[y0:y1, x0:x1]
    height = max(1, round(width * (y1 - y0) / max(x1 - x0, 1)))
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC)


def _label(text: str, width: int) -> np.ndarray:
    bar = np.full((_LABEL_H, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def portrait_block(
    portrait: np.ndarray, frames: np.ndarray, landmarks: np.ndarray, names: Sequence[str]
) -> np.ndarray:
    """One portrait's rows: labels, faces, mouths, eyes; (H, TILE * (1 + T), 3) uint8 RGB.

    Args:
        portrait: (S, S, 3) uint8 RGB aligned source.
        frames: (T, S, S, 3) uint8 RGB renders, one per name.
        landmarks: (478, 2+) rest landmarks of the portrait.
        names: the T pose names.
    """
    boxes = crop_boxes(landmarks, portrait.shape[0])
    columns = []
    for name, image in zip(["source", *names], [portrait, *frames], strict=True):
        parts = [_label(name, TILE)] + [_tile(image, boxes[k], TILE) for k in boxes]
        columns.append(np.concatenate(parts, axis=0))
    block = np.concatenate(columns, axis=1)
    block[:, TILE - 1] = 0  # a line after the source column
    return block


def contact_sheet(
    overrides: Sequence[str] = (), portraits: Sequence[str] = LOOK_PORTRAITS
) -> np.ndarray:
    """The sheet as (H, W, 3) uint8 RGB: one block per portrait, stacked.

    Args:
        overrides: render-config overrides (``renderer.size=256``, ...).
        portraits: names from :data:`LOOK_PORTRAITS`.

    Raises:
        ConfigValueError: an unknown portrait name. AvatarError: a portrait cannot be used.
    """
    from avatar.config import compose, pipeline_from_config
    from avatar.errors import ConfigValueError

    unknown = sorted(set(portraits) - set(LOOK_PORTRAITS))
    if unknown:
        raise ConfigValueError(f"unknown portraits {unknown}; known: {list(LOOK_PORTRAITS)}")
    cfg = compose("render", [*overrides, "render_processes=0"])
    pipeline = pipeline_from_config(cfg)
    refs = look_portraits(cache_root(cfg.identity.cache_dir) / "look-portraits")
    values = pose_values(POSES)
    blocks = []
    try:
        for name in portraits:
            spec = CompanionSpec(id=f"look-{name}", name=name, images=[refs[name]])
            resolved = pipeline.resolve(spec)
            frames = pipeline.renderer.render_chunk(resolved.prepared, values)
            identity = resolved.identity
            block = portrait_block(identity.portrait, frames, identity.landmarks, list(POSES))
            blocks.append(np.concatenate([_label(name, block.shape[1]), block], axis=0))
    finally:
        pipeline.close()
    return np.concatenate(blocks, axis=0)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: writes the sheet (``out=``, default out/look.png); 2 on bad input."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out, portraits, overrides = "out/look.png", list(LOOK_PORTRAITS), []
    for arg in sys.argv[1:] if argv is None else argv:
        key, _, value = arg.partition("=")
        if key == "out":
            out = value
        elif key == "portraits":
            portraits = [v for v in value.split(",") if v]
        else:
            overrides.append(arg)
    try:
        out = check_output_path(out, suffix=".png", key="out")  # before any work
        sheet = contact_sheet(overrides, portraits)
        write_png(out, sheet)
    except Exception as exc:  # bad input: one line and 2; a bug: its traceback and 1
        return report(exc)
    log.info("contact sheet %dx%d: %s", sheet.shape[1], sheet.shape[0], out)
    return 0


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write (H, W, 3) uint8 RGB as a PNG at ``path`` whole or not at all (a hidden temporary
    file beside it, renamed when complete).

    Raises:
        OutputPathError: the PNG could not be encoded or written.
    """
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputPathError(f"out={path}: the sheet could not be encoded as a PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(data.tobytes())
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OutputPathError(f"out={path}: cannot write the sheet: {exc.strerror or exc}") from exc


if __name__ == "__main__":
    sys.exit(main())
