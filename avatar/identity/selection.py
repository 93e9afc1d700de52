"""Choosing the source image: score each image's face for frontalness, neutrality, mouth and size.

Every score is in [0, 1], higher is better; the total is their weighted sum. The best source for a
talking head looks into the camera with a relaxed, closed mouth and has enough pixels that the
aligned portrait is not a blurry upscale.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from avatar.identity.landmarker import FaceObservation
from avatar.identity.masks import CLOSED_GAP
from avatar.identity.topology import LIP_INNER_BOTTOM, LIP_INNER_TOP

log = logging.getLogger(__name__)

WEIGHTS = {"frontal": 0.35, "neutral": 0.2, "mouth_closed": 0.2, "size": 0.25}
"""Weight of each score in the total."""
POSE_SCALE_DEG = (20.0, 20.0, 30.0)
"""(yaw, pitch, roll) at which frontalness drops to exp(-1/2); roll is undone by alignment."""
OPEN_GAP = 0.15
"""Inner-lip gap, as a fraction of the outer-eye distance, at which mouth_closed reaches 0."""
EXPRESSION_WEIGHTS = {"smile": 0.3, "jaw_open": 0.25, "blink": 0.3, "brow_inner_up": 0.15}
"""Weights of the expression blendshapes that count against neutrality."""


def mouth_gap_ratio(face: FaceObservation) -> float:
    """Inner-lip gap (landmarks 13 to 14) divided by the outer-eye distance."""
    marks = face.landmarks
    gap = float(np.linalg.norm(marks[LIP_INNER_TOP, :2] - marks[LIP_INNER_BOTTOM, :2]))
    return gap / max(face.eye_distance, 1e-6)


def _expression(face: FaceObservation) -> dict[str, float]:
    b = face.blendshapes
    return {
        "smile": (b.get("mouthSmileLeft", 0.0) + b.get("mouthSmileRight", 0.0)) / 2,
        "jaw_open": b.get("jawOpen", 0.0),
        "blink": (b.get("eyeBlinkLeft", 0.0) + b.get("eyeBlinkRight", 0.0)) / 2,
        "brow_inner_up": b.get("browInnerUp", 0.0),
    }


def score_face(face: FaceObservation, *, target_eye_px: float) -> dict:
    """Scores one face as a portrait source.

    Args:
        face: the observation in source-image pixels.
        target_eye_px: outer-eye distance the aligned portrait will have, pixels.

    Returns:
        JSON-ready dict: ``score`` (weighted total), the four scores ``frontal``, ``neutral``,
        ``mouth_closed``, ``size``, the measurements behind them and a readable ``reason``.
    """
    yaw, pitch, roll = face.pose
    frontal = math.exp(
        -0.5 * sum((a / s) ** 2 for a, s in zip(face.pose, POSE_SCALE_DEG, strict=True))
    )
    expr = _expression(face)
    neutral = 1.0 - min(1.0, sum(EXPRESSION_WEIGHTS[k] * v for k, v in expr.items()))
    gap = mouth_gap_ratio(face)
    mouth_closed = 1.0 - min(1.0, gap / OPEN_GAP)
    size = min(1.0, face.eye_distance / target_eye_px)
    scores = {"frontal": frontal, "neutral": neutral, "mouth_closed": mouth_closed, "size": size}
    total = sum(WEIGHTS[k] * v for k, v in scores.items())
    reason = (
        f"pose yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f} deg (frontal {frontal:.2f}); "
        f"smile {expr['smile']:.2f} jaw {expr['jaw_open']:.2f} blink {expr['blink']:.2f} "
        f"brow {expr['brow_inner_up']:.2f} (neutral {neutral:.2f}); "
        f"mouth {'open' if gap >= CLOSED_GAP else 'closed'}, gap {gap:.2f} x eye distance "
        f"({mouth_closed:.2f}); eye distance {face.eye_distance:.0f} px for "
        f"{target_eye_px:.0f} wanted (size {size:.2f})"
    )
    return {
        "score": round(total, 4),
        **{k: round(v, 4) for k, v in scores.items()},
        "yaw": round(yaw, 2),
        "pitch": round(pitch, 2),
        "roll": round(roll, 2),
        "mouth_gap_ratio": round(gap, 4),
        "eye_distance_px": round(face.eye_distance, 2),
        "reason": reason,
    }


def select_source(
    faces: list[FaceObservation | None],
    *,
    target_eye_px: float,
    paths: list[str],
    problems: list[str | None],
) -> tuple[int, list[dict]]:
    """Picks the image whose face scores highest.

    Args:
        faces: per image, its chosen face, or None when the image is unusable.
        target_eye_px: outer-eye distance of the aligned portrait, pixels.
        paths: per image, its display path.
        problems: per image, why it is unusable (None for usable ones).

    Returns:
        (index of the best image, per-image dicts in image order). Unusable images get
        ``score`` None and their problem as ``reason``.

    Raises:
        ValueError: no image has a face (callers raise a more specific error first).
    """
    rows: list[dict] = []
    for i, (face, path) in enumerate(zip(faces, paths, strict=True)):
        row = {"index": i, "path": path, "usable": face is not None}
        if face is None:
            row.update(score=None, reason=problems[i] or "unusable")
        else:
            row.update(score_face(face, target_eye_px=target_eye_px))
        rows.append(row)
    usable = [r for r in rows if r["usable"]]
    if not usable:
        raise ValueError("no image has a usable face")
    best = max(usable, key=lambda r: r["score"])  # first one wins a tie
    for row in rows:
        row["chosen"] = row is best
    log.info(
        "source image %d of %d (%s) chosen, score %.2f: %s",
        best["index"] + 1,
        len(rows),
        best["path"],
        best["score"],
        best["reason"],
    )
    for row in rows:
        if row is not best:
            shown = "unusable" if row["score"] is None else f"score {row['score']:.2f}"
            log.info("  image %d (%s) %s: %s", row["index"] + 1, row["path"], shown, row["reason"])
    return int(best["index"]), rows
