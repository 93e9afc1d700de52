"""Companion avatar workbench: talking heads from a companion's generated images.

The public API is imported lazily so that ``import avatar`` stays cheap (no MediaPipe or
onnxruntime until a stage is used).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "AvatarIdentity",
    "CancelToken",
    "CompanionSpec",
    "LearnedMotion",
    "MeshWarpRenderer",
    "MotionTrack",
    "NeuralRenderer",
    "PhonemeTimeline",
    "Pipeline",
    "derive_identity",
    "load_companion",
    "load_renderer",
    "render_mp4",
]

_LAZY = {
    "AvatarIdentity": "avatar.identity.types",
    "CompanionSpec": "avatar.companion",
    "LearnedMotion": "avatar.motion.learned",
    "MeshWarpRenderer": "avatar.renderers.meshwarp",
    "MotionTrack": "avatar.motion.track",
    "NeuralRenderer": "avatar.renderers.neural",
    "PhonemeTimeline": "avatar.speech.timeline",
    "derive_identity": "avatar.identity.derive",
    "load_companion": "avatar.companion",
    "render_mp4": "avatar.render",
    "load_renderer": "avatar.renderers.loading",
    "Pipeline": "avatar.pipeline",
    "CancelToken": "avatar.cancel",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'avatar' has no attribute {name!r}")
