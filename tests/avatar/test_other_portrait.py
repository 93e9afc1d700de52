"""A different real portrait (a photo shipped by the insightface wheel) works the same way.

The photo holds several people: the default policy takes the largest face and warns, and
``identity.multiple_faces=refuse`` refuses it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest

from avatar.companion import CompanionSpec
from avatar.config import compose, pipeline_from_config
from avatar.errors import FaceNotFoundError
from avatar.identity.derive import derive_identity
from avatar.identity.search import detect_faces

_spec = importlib.util.find_spec("insightface")
PHOTO = Path(_spec.origin).parent / "data" / "images" / "t1.jpg" if _spec else None
pytestmark = pytest.mark.skipif(
    PHOTO is None or not PHOTO.exists(), reason="insightface sample photo absent (make install)"
)


def test_largest_face_is_animated(tmp_path, caplog, render_config_overrides):
    cfg = compose("render", [*render_config_overrides, "motion.seed=1"])
    pipeline = pipeline_from_config(cfg)
    spec = CompanionSpec(id="other", name="Other", images=[str(PHOTO)])
    with caplog.at_level(logging.WARNING):
        result = pipeline.render_text(spec, "Hello there. How are you today?", tmp_path / "o.mp4")
    assert "using the largest" in caplog.text
    from avatar.media import read_mp4

    clip = read_mp4(result.path)
    assert clip.frames.shape[1:] == (256, 256, 3)
    for frame in clip.frames[::15]:
        faces = detect_faces(frame, max_faces=1)
        assert faces, "MediaPipe finds the face in the rendered frame"
    # resting frames (the first, before speech starts) have a closed mouth
    lm = detect_faces(clip.frames[0], max_faces=1)[0].landmarks
    gap = np.linalg.norm(lm[13, :2] - lm[14, :2]) / np.linalg.norm(lm[33, :2] - lm[263, :2])
    assert gap < 0.06


def test_refuse_policy(tmp_path, identity_settings):
    spec = CompanionSpec(id="other", name="Other", images=[str(PHOTO)])
    settings = dataclasses.replace(identity_settings, cache_dir=tmp_path, multiple_faces="refuse")
    with pytest.raises(FaceNotFoundError, match="faces"):
        derive_identity(spec, size=256, settings=settings)
    assert not any(tmp_path.rglob("*.npz"))
