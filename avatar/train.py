"""Training entry point (Hydra): ``python -m avatar.train experiment=audio2motion``.

Everything is built from ``configs/train.yaml`` with ``hydra.utils.instantiate``; nothing below
:func:`train` sees a ``DictConfig``. With ``export_ckpt`` set, the best checkpoint is also written
as a small inference-only file (network weights + config) with the resolved run config beside it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from avatar.entry_errors import anticipated, report

log = logging.getLogger(__name__)


def _instantiate_all(node: DictConfig | None) -> list[Any]:
    """Every ``_target_`` child of a group such as ``callbacks`` or ``logger`` (null: none)."""
    if not node:
        return []
    return [instantiate(c) for c in node.values() if isinstance(c, DictConfig) and "_target_" in c]


def _wandb_dirs(output_dir: str) -> None:
    """Keep W&B's files in the run directory, not the home directory (offline unless set)."""
    os.environ.setdefault("WANDB_MODE", "offline")
    subdirs = {
        "WANDB_DIR": "",
        "WANDB_CACHE_DIR": "wandb-cache",
        "WANDB_DATA_DIR": "wandb-data",
        "WANDB_CONFIG_DIR": "wandb-config",
    }
    for var, sub in subdirs.items():
        path = Path(output_dir) / sub
        path.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault(var, str(path))


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit (and test) the configured model; returns the final metrics and the built objects."""
    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg.torch_threads))
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    targets = [str(c.get("_target_", "")) for c in (cfg.get("logger") or {}).values()]
    if any("wandb" in t.lower() for t in targets):
        _wandb_dirs(cfg.paths.output_dir)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = _instantiate_all(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for lg in loggers:
        lg.log_hyperparams(resolved)
    objects = dict(cfg=cfg, datamodule=datamodule, model=model, trainer=trainer)

    started = time.perf_counter()
    if cfg.get("train"):
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    fit_s = time.perf_counter() - started
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if cfg.get("test"):
        trainer.test(model=model, datamodule=datamodule, ckpt_path=best or None)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
    metrics["time/fit_s"] = fit_s
    log.info("fit took %.1f s; best checkpoint %s; metrics %s", fit_s, best or "-", metrics)

    if cfg.get("export_ckpt"):
        from avatar.checkpoint import export_checkpoint

        src = best or str(Path(cfg.paths.output_dir) / "last.ckpt")
        if not best:
            trainer.save_checkpoint(src)
        dst = export_checkpoint(src, cfg.export_ckpt)
        dst.with_suffix(".yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)))
        size_mb = dst.stat().st_size / 1e6
        log.info("exported %s (%.2f MB) and %s", dst, size_mb, dst.with_suffix(".yaml"))
    return metrics, objects


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry: train, and return ``optimized_metric`` for sweeps. Bad input or
    configuration (a missing data folder, a checkpoint that does not fit) exits 2 with one line
    (:mod:`avatar.entry_errors`); anything else is a bug and shows its traceback."""
    try:
        metrics, _ = train(cfg)
    except Exception as exc:
        if anticipated(exc) is None:
            raise
        sys.exit(report(exc))
    name = cfg.get("optimized_metric")
    return metrics.get(name) if name else None


if __name__ == "__main__":
    main()
