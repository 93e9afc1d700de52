"""Where eval results go besides the run directory: W&B (offline only) or nowhere.

The runner talks to a :class:`ResultsLogger`; :class:`WandbLogger` writes an offline W&B run
inside the eval's run directory (``<run dir>/wandb/offline-run-*``; sync it later with
``wandb sync``), :class:`NullLogger` drops everything. ``wandb`` is imported only when a
:class:`WandbLogger` starts, and every ``WANDB_*_DIR`` points into the run directory so nothing
is written to the home directory.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from avatar.errors import ConfigValueError

log = logging.getLogger(__name__)

__all__ = ["NullLogger", "ResultsLogger", "WandbLogger"]

_MODES = ("offline", "disabled")
_DIR_VARS = (
    "WANDB_DIR",
    "WANDB_CACHE_DIR",
    "WANDB_DATA_DIR",
    "WANDB_CONFIG_DIR",
    "WANDB_ARTIFACT_DIR",
)


class ResultsLogger(Protocol):
    """What the runner logs: config, metrics, a per-clip table, videos, images, files."""

    def start(self, save_dir: Path, config: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float | None]) -> None: ...

    def log_table(
        self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None: ...

    def log_video(self, key: str, path: Path, caption: str) -> None: ...

    def log_image(self, key: str, path: Path, caption: str) -> None: ...

    def save_file(self, path: Path) -> None: ...

    def finish(self, exit_code: int = 0) -> None: ...

    @property
    def run_dir(self) -> Path | None: ...


class NullLogger:
    """Logs nothing (``logger=null`` runs and tests)."""

    def start(self, save_dir: Path, config: Mapping[str, Any]) -> None:
        del save_dir, config

    def log_metrics(self, metrics: Mapping[str, float | None]) -> None:
        del metrics

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        del key, columns, rows

    def log_video(self, key: str, path: Path, caption: str) -> None:
        del key, path, caption

    def log_image(self, key: str, path: Path, caption: str) -> None:
        del key, path, caption

    def save_file(self, path: Path) -> None:
        del path

    def finish(self, exit_code: int = 0) -> None:
        del exit_code

    @property
    def run_dir(self) -> Path | None:
        return None


class WandbLogger:
    """An offline W&B run in the eval's run directory.

    Args:
        project: W&B project name.
        mode: ``offline`` (default runs) or ``disabled``; the ``WANDB_MODE`` environment
            variable, when set, wins (tests set ``disabled``). Online is refused: runs here have
            no network; upload with ``wandb sync <run dir>/wandb/offline-run-*``.
        name: run name (None: W&B picks one).
        group: W&B group (e.g. the suite name).
        tags: W&B tags.
        max_videos: sample videos logged per run (the first clips).
    """

    def __init__(
        self,
        *,
        project: str,
        mode: str,
        name: str | None,
        group: str | None,
        tags: Sequence[str],
        max_videos: int,
    ) -> None:
        if mode not in _MODES:
            raise ConfigValueError(f"logger.mode must be one of {_MODES} (offline), got {mode!r}")
        if max_videos < 0:
            raise ConfigValueError(f"logger.max_videos must be >= 0, got {max_videos}")
        self.project, self.mode, self.name, self.group = project, mode, name, group
        self.tags, self.max_videos = list(tags), int(max_videos)
        self._run: Any = None
        self._videos = 0

    def start(self, save_dir: Path, config: Mapping[str, Any]) -> None:
        """Opens the run; all W&B files go under ``save_dir``."""
        save_dir = Path(save_dir).resolve()
        save_dir.mkdir(parents=True, exist_ok=True)
        for var in _DIR_VARS:
            os.environ[var] = str(save_dir)
        mode = os.environ.get("WANDB_MODE") or self.mode
        if mode not in _MODES:
            raise ConfigValueError(f"WANDB_MODE={mode!r}: evals log offline only ({_MODES})")
        import wandb

        self._run = wandb.init(
            project=self.project,
            mode=mode,
            dir=str(save_dir),
            name=self.name,
            group=self.group,
            tags=self.tags,
            config=dict(config),
            settings=wandb.Settings(silent=True),
        )
        log.info("W&B %s run in %s", mode, self.run_dir)

    def log_metrics(self, metrics: Mapping[str, float | None]) -> None:
        clean = {k: v for k, v in metrics.items() if v is not None and math.isfinite(v)}
        self._run.log(clean)

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        import wandb

        self._run.log({key: wandb.Table(columns=list(columns), data=[list(r) for r in rows])})

    def log_video(self, key: str, path: Path, caption: str) -> None:
        if self._videos >= self.max_videos:
            return
        import wandb

        self._videos += 1
        self._run.log({key: wandb.Video(str(path), format="mp4", caption=caption)})

    def log_image(self, key: str, path: Path, caption: str) -> None:
        import wandb

        self._run.log({key: wandb.Image(str(path), caption=caption)})

    def save_file(self, path: Path) -> None:
        """Copies ``path`` into the run's ``files/`` (synced with the run; a baseline source)."""
        if self.run_dir is not None:
            shutil.copy2(path, self.run_dir / "files" / Path(path).name)

    def finish(self, exit_code: int = 0) -> None:
        if self._run is not None:
            self._run.finish(exit_code=exit_code)
            self._run = None

    @property
    def run_dir(self) -> Path | None:
        """The W&B run directory (``.../wandb/offline-run-*``), None when disabled or closed."""
        if self._run is None or getattr(self._run, "disabled", False) or not self._run.dir:
            return None
        return Path(self._run.dir).parent
