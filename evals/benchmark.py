"""The benchmark set: companions x utterances x renderers, rendered by avatar.pipeline, scored.

Each renderer is a list of Hydra overrides of ``configs/render.yaml``; each companion a name in
``configs/companion/`` or an inline spec; each utterance a text. Every clip is rendered with
:meth:`avatar.pipeline.Pipeline.render_text` (so timings are the pipeline's own), read back from
its MP4 frame by frame and measured once (:func:`~evals.features.features_from_file`: per-frame
features, never the whole clip) and scored by a fresh :class:`~evals.suite.Suite` per renderer.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avatar.companion import CompanionSpec, load_companion, load_image
from avatar.errors import AvatarError, ConfigValueError
from avatar.pipeline import Pipeline
from evals.features import ClipFeatures, features_from_file
from evals.functional.look_clips import blink_inputs
from evals.functional.viseme_agreement import COARTICULATION, viseme_inputs
from evals.suite import Suite

if TYPE_CHECKING:
    from avatar.config import PipelineFactory

log = logging.getLogger(__name__)

__all__ = ["BenchmarkItem", "ClipScore", "RendererScores", "benchmark_items", "run_benchmark"]


@dataclass(frozen=True)
class BenchmarkItem:
    """One clip to render: a renderer (name, overrides), a companion and an utterance."""

    renderer: str
    overrides: tuple[str, ...]
    companion: str
    spec: CompanionSpec
    utterance: str
    text: str

    @property
    def name(self) -> str:
        raw = f"{self.renderer}-{self.companion}-{self.utterance}"
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", raw)


@dataclass
class ClipScore:
    """One scored clip: where it is, its per-clip values and skip reasons, its features."""

    item: BenchmarkItem
    path: Path
    values: dict[str, float]
    skipped: dict[str, str]
    features: ClipFeatures
    timings: dict[str, float]


@dataclass
class RendererScores:
    """A renderer's aggregate values, skip reasons, its clips and its resolved render config."""

    name: str
    values: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    clips: list[ClipScore] = field(default_factory=list)
    render_config: dict[str, Any] = field(default_factory=dict)


def _companion(name: str, entry: str | Mapping[str, Any] | None) -> CompanionSpec:
    """A spec from a companion name or an inline mapping (``images`` entries may not be null)."""
    if isinstance(entry, str):
        return load_companion(entry)
    data = dict(entry or {})
    images = data.get("images") or []
    if any(ref is None for ref in images):
        raise AvatarError(f"companion {name}: an image is unavailable (a package file is absent)")
    missing = [r for r in images if not str(r).startswith("embedded:") and not Path(r).is_file()]
    if missing:
        raise AvatarError(f"companion {name}: image file(s) not found: {missing}")
    data.setdefault("id", name)
    data.setdefault("name", name)
    return CompanionSpec.from_dict(data)


def benchmark_items(
    companions: Mapping[str, str | Mapping[str, Any] | None],
    utterances: Mapping[str, str],
    renderers: Mapping[str, Sequence[str]],
) -> tuple[list[BenchmarkItem], dict[str, str]]:
    """Every (renderer, companion, utterance) combination, and skip reasons of companions.

    A companion whose images are unavailable (e.g. an optional package's photo) is skipped with
    a reason instead of failing the run.
    """
    if not companions or not utterances or not renderers:
        raise ValueError("a benchmark needs at least one companion, utterance and renderer")
    specs, skipped = {}, {}
    for name, entry in companions.items():
        try:
            specs[name] = _companion(name, entry)
        except AvatarError as exc:
            skipped[f"companion/{name}"] = f"skipped: {exc}"
            log.warning("companion %s skipped: %s", name, exc)
    items = [
        BenchmarkItem(r, tuple(ov), c, spec, u, text)
        for r, ov in renderers.items()
        for c, spec in specs.items()
        for u, text in utterances.items()
    ]
    return items, skipped


def reference_images(
    pipeline: Pipeline,
    spec: CompanionSpec,
    mode: str,
    *,
    max_megapixels: float,
    max_side: int,
) -> list:
    """The companion's reference images for identity metrics.

    ``image``: the images as given (read within the renderer's image limits,
    ``identity.max_image_megapixels`` and ``identity.max_image_side``). ``portrait``: each
    image's aligned source portrait, i.e. the face the renderer selects in it (the largest by
    eye distance); use it when an image holds several people, where dlib's own "largest face"
    may be someone else.
    """
    if mode == "image":
        return [
            load_image(ref, max_megapixels=max_megapixels, max_side=max_side) for ref in spec.images
        ]
    if mode != "portrait":
        raise ConfigValueError(f"benchmark.references must be 'image' or 'portrait', got {mode!r}")
    return [
        pipeline.identity(
            CompanionSpec(id=f"{spec.id}-ref{i}", name=spec.name, images=[ref])
        ).portrait
        for i, ref in enumerate(spec.images)
    ]


def run_benchmark(
    items: Sequence[BenchmarkItem],
    suite_factory: Callable[[], Suite],
    out_dir: Path,
    *,
    make_pipeline: Callable[[Sequence[str]], PipelineFactory],
    references: str,
    warmup_text: str | None,
    feature_options: Mapping[str, Any],
    on_clip: Callable[[ClipScore], None] | None = None,
) -> list[RendererScores]:
    """Renders and scores every item, one renderer at a time.

    Args:
        items: the clips to make (:func:`benchmark_items`).
        suite_factory: makes a fresh suite (one per renderer).
        out_dir: clips go to ``out_dir/clips/<renderer>-<companion>-<utterance>.mp4``.
        make_pipeline: a renderer's overrides -> its pipeline factory (the entry point's
            :func:`avatar.config.pipeline_factory`, with the run's common overrides bound);
            the factory's resolved config is recorded with the scores.
        references: ``portrait`` or ``image``, see :func:`reference_images`.
        warmup_text: rendered once per renderer and companion before the timed clips (loads
            models, precomputes per-identity warps), so speed is that of a warm session; None
            times cold starts too.
        feature_options: the ``features`` config node: keyword arguments of
            :func:`~evals.features.features_from_file` (``floor_db``, ``min_confidence``,
            ``mask_margin``).
        on_clip: called with each scored clip (plots, progress).

    Returns:
        One :class:`RendererScores` per renderer, in order of first appearance.
    """
    clips_dir = out_dir / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    by_renderer: dict[str, list[BenchmarkItem]] = {}
    for item in items:
        by_renderer.setdefault(item.renderer, []).append(item)
    out = []
    for renderer, group in by_renderer.items():
        factory = make_pipeline(group[0].overrides)
        pipeline = factory()
        scores = RendererScores(renderer, render_config=factory.config)
        motion_cfg = factory.config.get("motion") or {}
        identity_cfg = factory.config.get("identity") or {}
        limits = {
            "max_megapixels": identity_cfg.get("max_image_megapixels"),
            "max_side": identity_cfg.get("max_image_side"),
        }
        coart = {k: float(motion_cfg[k]) for k in COARTICULATION if k in motion_cfg}
        suite = suite_factory()
        if warmup_text:
            for spec in {item.spec.id: item.spec for item in group}.values():
                warm = pipeline.render_text(spec, warmup_text, clips_dir / f"warmup-{spec.id}.mp4")
                warm.path.unlink(missing_ok=True)
        for item in group:
            t0 = time.perf_counter()
            # deriving the references also caches the identity: speed is timed warm, as a
            # served session (which derives the identity once) sees it
            refs = reference_images(pipeline, item.spec, references, **limits)
            pipeline.identity(item.spec)
            result = pipeline.render_text(item.spec, item.text, clips_dir / f"{item.name}.mp4")
            timings = {
                "total_s": result.timings["total"],
                "audio_s": result.audio_seconds,
                "first_frame_s": result.timings.get("first_frame", float("nan")),
                "n_frames": float(result.n_frames),
            }
            feats = features_from_file(
                result.path, references=refs, timings=timings, **dict(feature_options)
            )
            inputs = feats.inputs() | viseme_inputs(result, coart)  # known timings: visemes
            inputs |= blink_inputs(result)  # closed lids where the renderer closed them
            values, skipped = suite.score_clip(inputs, feats.missing())
            score = ClipScore(
                item,
                result.path,
                values,
                skipped,
                feats,
                {**timings, "eval_s": time.perf_counter() - t0},
            )
            scores.clips.append(score)
            log.info(
                "%s: %d frames, %d values, %d skipped",
                item.name,
                feats.n_frames,
                len(values),
                len(skipped),
            )
            if on_clip is not None:
                on_clip(score)
        scores.values, scores.skipped = suite.compute()
        out.append(scores)
    return out
