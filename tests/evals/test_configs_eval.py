"""configs/eval.yaml: every suite option composes and instantiates; thresholds name real metrics."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from avatar.companion import configs_dir
from avatar.config import compose
from evals.compare import compare
from evals.suite import Suite

SUITES = sorted(p.stem for p in (configs_dir() / "suite").glob("*.yaml"))


@pytest.mark.parametrize("option", SUITES)
def test_suite_option_instantiates(option: str) -> None:
    cfg = compose("eval", [f"suite={option}"])
    suite = Suite(
        {g: {n: instantiate(m) for n, m in cfg.suite[g].metrics.items()} for g in cfg.suite}
    )
    thresholds = {f"{g}/{k}": v for g in cfg.suite for k, v in cfg.suite[g].thresholds.items()}
    assert thresholds, "every suite sets regression thresholds"
    compare({}, {}, thresholds, suite.directions())  # raises on a threshold for no metric


def test_nightly_is_every_group() -> None:
    cfg = compose("eval", ["suite=nightly"])
    assert set(cfg.suite) == {"lipsync", "identity", "stability", "speed", "look"}
    assert cfg.suite.lipsync.external.lse == "syncnet_v2"


def test_benchmarks_and_logger_compose() -> None:
    from evals.run import pkg_file  # registers the ${pkg_file:...} resolver

    for path in (configs_dir() / "benchmark").glob("*.yaml"):
        cfg = compose("eval", [f"benchmark={path.stem}"])
        assert cfg.benchmark.companions and cfg.benchmark.utterances and cfg.benchmark.renderers
    assert instantiate(compose("eval").results_logger).mode == "offline"
    assert pkg_file("not_a_package_here", "x") is None
