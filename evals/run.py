"""The eval runner: render the benchmark, score it with a suite, log it, compare with a baseline.

    python -m evals.run suite=nightly [benchmark=default] [baseline=PATH] [weights.strict=true]

Writes ``results.json`` (flat metrics ``<renderer>/<group>/<metric>``, skip reasons, directions,
per-clip values, regressions) and ``clips.csv`` in the Hydra run directory, plus the clips,
plots, and an offline W&B run (``wandb/offline-run-*``). Exits 3 when a metric regressed past
its suite threshold against the baseline (``fail_on_regression``), 2 on bad input: bad
arguments, a ``baseline=`` that is absent or not a results file (both checked before anything
is rendered, and before Hydra makes the run directory), weights a strict run requires are
absent, or any other anticipated error (one line on stderr). A bug exits 1 with its traceback.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hydra
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from avatar.config import PipelineFactory, compose, pipeline_factory
from avatar.entry_errors import report
from avatar.errors import AvatarError, ConfigValueError, WeightsMissingError
from avatar.quiet import quiet_native_logs
from evals.benchmark import ClipScore, RendererScores, benchmark_items, run_benchmark
from evals.compare import compare, load_baseline
from evals.loggers import NullLogger, ResultsLogger
from evals.plots import plot_sync
from evals.results import side_by_side, table, text_table, write_csv, write_json
from evals.suite import Suite
from evals.weights import external_status, load_registry, set_active_registry

log = logging.getLogger(__name__)

__all__ = ["REGRESSION_EXIT", "SuiteSpec", "cli", "main", "pkg_file", "run", "suite_spec"]

REGRESSION_EXIT = 3
"""Exit code of a run in which a metric regressed past its threshold against ``baseline=``
(not 1, which is a bug's, nor 2, bad input's)."""

_CLIP_COLUMNS = ("renderer", "companion", "utterance", "path", "n_frames", "audio_s", "face_rate")


def pkg_file(package: str, relpath: str) -> str | None:
    """Path of a file shipped inside an installed package, found without importing it (or None).

    Registered as the ``${pkg_file:package,path}`` config resolver.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / relpath
    return str(path) if path.is_file() else None


OmegaConf.register_new_resolver("pkg_file", pkg_file, replace=True)


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


def _clip_row(score: ClipScore) -> dict[str, Any]:
    item = score.item
    row: dict[str, Any] = {
        "renderer": item.renderer,
        "companion": item.companion,
        "utterance": item.utterance,
        "path": str(score.path),
        "n_frames": score.features.n_frames,
        "audio_s": round(score.timings["audio_s"], 3),
        "face_rate": score.features.track.detection_rate,
    }
    return row | score.values


@dataclass
class SuiteSpec:
    """The suite part of the config: groups, thresholds, external weights, a metric factory."""

    groups: list[str]
    thresholds: dict[str, Any]
    external: dict[str, str]
    factory: Callable[[], Suite]


def suite_spec(suite_cfg: DictConfig) -> SuiteSpec:
    """The ``suite`` node of an eval config, checked: its groups, thresholds and external
    weights keyed ``group/metric``, and a factory of fresh :class:`Suite` objects."""
    groups = list(suite_cfg)
    for g in groups:
        unknown = set(suite_cfg[g]) - {"metrics", "thresholds", "external"}
        if unknown or "metrics" not in suite_cfg[g]:
            raise ConfigValueError(f"suite.{g}: needs 'metrics'; unknown keys {sorted(unknown)}")

    def keyed(part: str) -> dict[str, Any]:
        return {
            f"{g}/{k}": v for g in groups for k, v in (_plain(suite_cfg[g].get(part)) or {}).items()
        }

    def factory() -> Suite:
        return Suite(
            {g: {n: instantiate(m) for n, m in suite_cfg[g].metrics.items()} for g in groups}
        )

    external = {k: str(v) for k, v in keyed("external").items()}
    return SuiteSpec(groups, keyed("thresholds"), external, factory)


def _log_results(
    logger: ResultsLogger,
    out_dir: Path,
    results: dict[str, Any],
    scores: list[RendererScores],
    plots: dict[str, Path],
    exit_code: int,
) -> None:
    """Config, metrics, the per-clip table, videos, plots and results.json to the logger."""
    logger.start(out_dir, {"eval": results["config"], "render": results["render_config"]})
    n_regressions = float(len(results["baseline"]["regressions"]))
    logger.log_metrics(results["metrics"] | {"regressions": n_regressions})
    logger.log_table("clips", *table(results["clips"], _CLIP_COLUMNS))
    for renderer in scores:
        for clip in renderer.clips:
            caption = f"{clip.item.renderer} / {clip.item.companion} / {clip.item.utterance}"
            logger.log_video(f"videos/{clip.item.name}", clip.path, caption)
            if clip.item.name in plots:
                logger.log_image(f"plots/{clip.item.name}", plots[clip.item.name], caption)
    logger.save_file(out_dir / "results.json")
    logger.finish(exit_code=exit_code)


def run(cfg: DictConfig, out_dir: Path) -> int:
    """Runs the configured suite on the configured benchmark; returns the process exit code.

    Raises:
        BaselineNotFound, BaselineFormatError: ``baseline`` is absent or not a results file
            (before anything is rendered or written).
    """
    t0 = time.perf_counter()
    baseline = load_baseline(cfg.baseline) if cfg.baseline else None
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = suite_spec(cfg.suite)
    probe = spec.factory()
    directions = probe.directions()
    compare({}, {}, spec.thresholds, directions)  # fails fast on a threshold for no metric
    registry = load_registry(_plain(cfg.weights))
    set_active_registry(registry)  # metrics loading external weights resolve them here
    try:
        skipped = external_status(spec.external, registry, implemented=probe.keys())
    except WeightsMissingError as exc:
        log.error("strict run: %s", exc)
        return 2
    bench = _plain(cfg.benchmark)
    items, item_skips = benchmark_items(
        bench["companions"], bench["utterances"], bench["renderers"]
    )
    skipped |= item_skips
    plots: dict[str, Path] = {}

    def on_clip(score: ClipScore) -> None:
        f, name = score.features, score.item.name
        if f.envelope is None:  # no audio: nothing to plot against
            return
        lag = score.values.get("lipsync/av_offset")
        png = plot_sync(
            f.aperture,
            f.envelope,
            f.fps,
            out_dir / "plots" / f"{name}.png",
            title=name,
            offset_frames=lag,
        )
        if png is not None:
            plots[name] = png

    scores = run_benchmark(
        items,
        spec.factory,
        out_dir,
        make_pipeline=_pipeline_maker(bench["render_overrides"]),
        references=bench["references"],
        warmup_text=bench["warmup_text"],
        feature_options=_plain(cfg.features),
        on_clip=on_clip,
    )
    metrics = {f"{r.name}/{k}": v for r in scores for k, v in r.values.items()}
    skipped |= {f"{r.name}/{k}": v for r in scores for k, v in r.skipped.items()}
    regressions = []
    if baseline is not None:
        regressions = compare(metrics, baseline, spec.thresholds, directions)
        for reg in regressions:
            log.error("regression: %s", reg)
    code = REGRESSION_EXIT if regressions and cfg.fail_on_regression else 0
    results = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "suite": spec.groups,
        "metrics": metrics,
        "skipped": skipped,
        "directions": directions,
        "thresholds": spec.thresholds,
        "baseline": {"path": cfg.baseline, "regressions": [r.as_dict() for r in regressions]},
        "clips": [_clip_row(c) for r in scores for c in r.clips],
        "wall_s": round(time.perf_counter() - t0, 1),
        "config": _plain(cfg),
        "render_config": {r.name: r.render_config for r in scores},
    }
    write_json(out_dir / "results.json", results)
    write_csv(out_dir / "clips.csv", results["clips"], _CLIP_COLUMNS)
    names = [r.name for r in scores]
    compared = side_by_side(metrics, names)
    write_csv(out_dir / "renderers.csv", compared, ["metric", *names])
    if len(names) > 1:
        log.info("renderers side by side:\n%s", text_table(compared, ["metric", *names]))
    logger: ResultsLogger = NullLogger()
    if cfg.results_logger:  # results_logger=null: files only
        group = cfg.results_logger.get("group") or "+".join(spec.groups)
        logger = instantiate(cfg.results_logger, group=group)
    _log_results(logger, out_dir, results, scores, plots, code)
    log.info(
        "results: %s (%d metrics, %d skipped, %d regressions, %.0f s)",
        out_dir / "results.json",
        len(metrics),
        len(skipped),
        len(regressions),
        time.perf_counter() - t0,
    )
    return code


def _pipeline_maker(common: Sequence[str]) -> Callable[[Sequence[str]], PipelineFactory]:
    """A renderer's overrides -> its pipeline factory, after the run's ``common`` overrides."""
    return lambda overrides: pipeline_factory([*common, *overrides])


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Hydra entry: runs in the Hydra run directory's output folder and exits with run's code."""
    from hydra.core.hydra_config import HydraConfig

    try:
        code = run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except AvatarError as exc:
        code = report(exc)
    if code:
        sys.exit(code)


def cli(argv: Sequence[str] | None = None) -> int:
    """``python -m evals.run``: arguments and ``baseline=`` are checked before Hydra starts.

    Config errors (an unknown key, a bad value) and a baseline that is absent or not a results
    file print one line on stderr and return 2 before Hydra makes its run directory. Arguments
    with Hydra flags (``-m``, ``--cfg``, ...) go to Hydra unchecked.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    with quiet_native_logs() as native:
        if not any(a.startswith("-") for a in args):
            try:
                cfg = compose("eval", args)
                native.verbose = bool(cfg.verbose)
                if cfg.baseline:
                    load_baseline(cfg.baseline)
            except (AvatarError, HydraException, OmegaConfBaseException) as exc:
                return report(exc)
        argv0, sys.argv = sys.argv, [sys.argv[0], *args]  # Hydra reads its arguments there
        try:
            main()
        finally:
            sys.argv = argv0
    return 0


if __name__ == "__main__":
    sys.exit(cli())
