"""ServeState: what one running app holds: settings, the store, one pipeline per frame size,
the render pool, metrics and the file areas under ``var_dir``.

Pipelines are built from a :class:`~avatar.config.PipelineFactory` (made at the entry point)
on first use of a size and shared by every request (they are thread-safe); their identity
cache lives in ``var_dir/identity``.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

from avatar.companion import CompanionSpec, load_companion
from avatar.pipeline import Pipeline
from serve.metrics import Metrics
from serve.problems import Problem
from serve.render_pool import RenderPool
from serve.settings import ServeSettings
from serve.store import Companion, Session, Store, utc_now

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_COMPANION", "PipelineMaker", "ServeState"]

DEFAULT_COMPANION = "default"
"""The embedded companion every tenant has (``configs/companion/default.yaml``)."""


class PipelineMaker:
    """Protocol of :class:`avatar.config.PipelineFactory`: ``maker(size=...) -> Pipeline``."""

    def __call__(self, *, size: int | None = None) -> Pipeline:  # pragma: no cover - protocol
        raise NotImplementedError


class ServeState:
    """The app's shared objects (``app.state.serve``)."""

    def __init__(self, settings: ServeSettings, store: Store, make_pipeline: PipelineMaker) -> None:
        self.settings = settings
        self.store = store
        self.metrics = Metrics()
        self.pool = RenderPool(settings.limits, on_change=self.metrics.pool_changed)
        self._make_pipeline = make_pipeline
        self._pipelines: dict[int, Pipeline] = {}
        self._lock = threading.Lock()
        self.companions_dir = settings.var_dir / "companions"
        self.outputs_dir = settings.var_dir / "outputs"
        self.default_companion = load_companion(DEFAULT_COMPANION)
        self.ready = False

    def pipeline(self, size: int) -> Pipeline:
        """The shared pipeline rendering ``size`` x ``size`` frames (built on first use)."""
        if size not in self.settings.sizes:
            raise Problem(422, f"size must be one of {list(self.settings.sizes)}, got {size}")
        with self._lock:
            if size not in self._pipelines:
                self._pipelines[size] = self._make_pipeline(size=size)
            return self._pipelines[size]

    def close_pipelines(self) -> None:
        """Stop the pipelines' render worker processes (at shutdown)."""
        with self._lock:
            pipelines = list(self._pipelines.values())
        for pipeline in pipelines:
            pipeline.close()

    def spec(self, tenant_id: str, companion_id: str) -> CompanionSpec:
        """The companion's spec, or a 404 :class:`Problem` (also for another tenant's)."""
        if companion_id == DEFAULT_COMPANION:
            return self.default_companion
        row = self.store.companion(tenant_id, companion_id)
        if row is None:
            raise Problem(404, f"no companion {companion_id!r}", kind="not-found")
        return companion_spec(row)

    def session(self, tenant_id: str, session_id: str) -> Session:
        """The tenant's live session, or a 404 :class:`Problem`."""
        row = self.store.session(tenant_id, session_id)
        if row is None:
            raise Problem(404, f"no session {session_id!r} (or it expired)", kind="not-found")
        return row

    def session_dir(self, session: Session) -> Path:
        return self.outputs_dir / session.tenant_id / session.id

    def remove_session_files(self, session: Session) -> None:
        """Remove a (deleted) session's generated files."""
        shutil.rmtree(self.session_dir(session), ignore_errors=True)

    def sweep_expired(self) -> int:
        """Delete expired sessions and their files, and the files of sessions that no longer
        exist (a process stopped between deleting a row and its files); returns how many
        expired sessions were removed."""
        expired = self.store.delete_expired(utc_now())
        for row in expired:
            self.remove_session_files(row)
        orphans = self._remove_orphan_session_files()
        if expired or orphans:
            log.info("removed %d expired session(s), %d orphan folder(s)", len(expired), orphans)
        return len(expired)

    def _remove_orphan_session_files(self) -> int:
        """Remove ``outputs/<tenant>/<session>`` folders whose session has no row."""
        folders = [d for t in _subdirs(self.outputs_dir) for d in _subdirs(t)]
        if not folders:
            return 0
        live = self.store.existing_sessions([d.name for d in folders])
        orphans = [d for d in folders if d.name not in live]
        for folder in orphans:
            shutil.rmtree(folder, ignore_errors=True)
        return len(orphans)


def _subdirs(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir()]
    except OSError:  # not made yet
        return []


def companion_spec(row: Companion) -> CompanionSpec:
    """The CompanionSpec of a stored companion (its images as stored, best first)."""
    return CompanionSpec(id=row.id, name=row.name, images=list(row.images), voice=row.voice)
