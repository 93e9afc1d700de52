"""``render_mp4``: one call from a script or notebook to an MP4, with the project's config.

The pipeline for a set of overrides is composed and built on the first call and reused by the
next ones (from any thread), so repeated calls cost only the render.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from avatar.cancel import CancelToken
from avatar.companion import CompanionSpec
from avatar.config import companion_from_config, pipeline_factory
from avatar.pipeline import Pipeline, RenderResult

__all__ = ["render_mp4"]

_BUILT: dict[tuple[str, ...], tuple[Pipeline, CompanionSpec]] = {}
_LOCK = threading.Lock()


def _pipeline(overrides: tuple[str, ...]) -> tuple[Pipeline, CompanionSpec]:
    """The pipeline and configured companion of ``overrides`` (built once per override set)."""
    with _LOCK:
        if overrides not in _BUILT:
            factory = pipeline_factory(overrides)
            _BUILT[overrides] = (factory(), companion_from_config(factory.config))
        return _BUILT[overrides]


def render_mp4(
    text: str,
    out: str | Path,
    *,
    companion: str | CompanionSpec = "default",
    overrides: Sequence[str] = (),
    cancel: CancelToken | None = None,
) -> RenderResult:
    """Render ``companion`` saying ``text`` to ``out`` with the project's configuration.

    Args:
        text: what the companion says (inline emotion tags such as ``[smile]`` allowed).
        out: MP4 path to write.
        companion: ``"default"`` (the configured companion, including ``companion.*``
            overrides), a name from ``configs/companion/``, a YAML path, or a spec.
        overrides: Hydra override strings of ``configs/render.yaml`` (``"motion.seed=3"``).
        cancel: stops the render before its next frame; nothing is written.
    """
    pipeline, configured = _pipeline(tuple(overrides))
    chosen = configured if isinstance(companion, str) and companion == "default" else companion
    return pipeline.render_text(chosen, text, out, cancel=cancel)
