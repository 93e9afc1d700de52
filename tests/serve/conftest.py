"""Fixtures of the service tests: an app over a temporary ``var_dir`` (SQLite), two tenants, an
httpx client on the app (ASGI, lifespan run), small frame sizes so renders stay fast.

Async tests run on anyio's pytest plugin: mark them ``pytest.mark.anyio`` (asyncio backend).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from serve.app import create_app
from serve.config import load

KEYS = {"alpha": "alpha-key-0123456789", "beta": "beta-key-0123456789"}
"""Two tenants seeded through AVATAR_API_KEYS."""


def auth(tenant: str) -> dict[str, str]:
    """The Authorization header of a seeded tenant."""
    return {"Authorization": f"Bearer {KEYS[tenant]}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def serve_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a staging deployment sets: seeded keys, no LiveKit, no database URL."""
    monkeypatch.setenv("AVATAR_API_KEYS", ",".join(f"{t}:{k}" for t, k in KEYS.items()))
    for name in ("AVATAR_DATABASE_URL", "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_app(serve_env: None, tmp_path: Path, identity_cache: Path) -> Callable[..., object]:
    """``make_app(*overrides, **settings_changes)``: an app over ``tmp_path/var`` (sizes 128 and
    256, default 128; the session's identity cache shared)."""

    def make(*overrides: str, **changes: object):  # noqa: ANN202
        settings, factory = load(
            [
                f"var_dir={tmp_path / 'var'}",
                "sizes=[128,256]",
                "default_size=128",
                f"render_overrides=['identity.cache_dir={identity_cache}']",
                *overrides,
            ]
        )
        if changes:
            settings = dataclasses.replace(settings, **changes)
        return create_app(settings, factory)

    return make


@pytest.fixture
async def client(make_app) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    """An httpx client on a fresh app (its lifespan run: migrated, keys seeded)."""
    app = make_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://avatar.test") as c:
            yield c


# -- live servers on loopback (demo page, README curls, soak) --------------------------------
# (appended: the module's imports above belong to the fixtures before)
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402

DEMO_KEY = "demo-key-0123456789"
"""The ``demo`` tenant's key: the Makefile's AVATAR_API_KEYS default, used by the README."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(url: str, deadline_s: float, alive: Callable[[], bool]) -> None:
    """Poll ``url + /healthz`` until it answers 200; fail after ``deadline_s`` or if not alive."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if not alive():
            pytest.fail(f"the server at {url} stopped before answering /healthz")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server at {url} did not answer /healthz within {deadline_s:g} s")


_DEPLOYMENT_ENV = ("AVATAR_DATABASE_URL", "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")


@dataclasses.dataclass
class LiveServer:
    """A server listening on 127.0.0.1: ``url``; ``pid`` and ``log`` for a subprocess."""

    url: str
    var_dir: Path
    pid: int | None = None
    log: Path | None = None


@pytest.fixture
def live_server(make_app) -> Iterator[Callable[..., LiveServer]]:  # noqa: ANN001
    """``live_server(*overrides, **settings_changes)``: the app of :func:`make_app` (128 px) on
    uvicorn in a thread, on a free loopback port; stopped after the test."""
    import uvicorn

    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(*overrides: str, **changes: object) -> LiveServer:
        app = make_app(*overrides, **changes)
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="live-server", daemon=True)
        thread.start()
        running.append((server, thread))
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, 30.0, thread.is_alive)
        return LiveServer(url=url, var_dir=app.state.serve.settings.var_dir)

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def serve_process(tmp_path: Path, identity_cache: Path) -> Iterator[Callable[..., LiveServer]]:
    """``serve_process(*overrides, env=None)``: ``make serve``'s command (``python -m serve
    port=N var_dir=...``) as a subprocess over ``tmp_path/live-var``, seeded with the demo key
    and the two test tenants; waits (up to 30 s) for ``/healthz``. Stopped with SIGTERM after
    the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*overrides: str, env: dict[str, str] | None = None) -> LiveServer:
        port = free_port()
        var_dir = tmp_path / f"live-var-{len(started)}"
        log = tmp_path / f"live-server-{len(started)}.log"
        keys = ",".join([f"demo:{DEMO_KEY}", *(f"{t}:{k}" for t, k in KEYS.items())])
        environ = {k: v for k, v in os.environ.items() if k not in _DEPLOYMENT_ENV}
        environ.update({"AVATAR_API_KEYS": keys, **(env or {})})
        command = [
            sys.executable,
            "-m",
            "serve",
            f"port={port}",
            f"var_dir={var_dir}",
            f"render_overrides=['identity.cache_dir={identity_cache}']",
            *overrides,
        ]
        with log.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environ)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, 30.0, lambda: proc.poll() is None)
        return LiveServer(url=url, var_dir=var_dir, pid=proc.pid, log=log)

    yield start
    stop_processes(started, timeout_s=30)


def stop_processes(procs: list[subprocess.Popen], *, timeout_s: float) -> None:
    """SIGTERM each process, then SIGKILL the ones still running after ``timeout_s``."""
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- PostgreSQL: the store's tests on a real server (tests/serve/pg_server.py) ----------------
from collections.abc import Generator  # noqa: E402

from tests.serve.pg_server import PostgresServer, find_bin_dir  # noqa: E402


@pytest.fixture(scope="session")
def postgres() -> Generator[PostgresServer, None, None]:
    """A PostgreSQL server of Debian's ``postgresql`` package for the whole test session, in a
    temporary directory (unix socket only); skipped when the binaries are absent."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL binaries absent (/usr/lib/postgresql/*/bin): "
            "apt-get install postgresql (make install does)"
        )
    server = PostgresServer(bin_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once on SQLite (in ``tmp_path``) and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


# -- companions' images and apps opened by hand (restart, isolation) --------------------------
import contextlib  # noqa: E402
from collections.abc import AsyncGenerator  # noqa: E402


@pytest.fixture(scope="session")
def astronaut_png() -> bytes:
    """scikit-image's astronaut (512 x 512 RGB) written to PNG: an upload with a usable face."""
    import cv2

    from avatar.companion import EMBEDDED_ASTRONAUT, load_image
    from tests.settings import image_limits

    rgb = load_image(EMBEDDED_ASTRONAUT, **image_limits())
    ok, png = cv2.imencode(".png", rgb[..., ::-1])
    assert ok
    return png.tobytes()


@pytest.fixture
def open_app(make_app):  # noqa: ANN001, ANN201
    """``async with open_app(*overrides, **changes) as (client, state):`` an app of
    :func:`make_app` with its lifespan run, an httpx client on it and its ``ServeState``;
    opening it again on the same ``tmp_path`` is a restart."""

    @contextlib.asynccontextmanager
    async def open_(*overrides: str, **changes: object) -> AsyncGenerator[tuple, None]:
        app = make_app(*overrides, **changes)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://avatar.test") as c:
                yield c, app.state.serve

    return open_


# -- generate: apps whose renderer is wrapped (counting, slow, failing), in process or on
# -- loopback (tests/serve/test_generate*.py)
import copy  # noqa: E402


@pytest.fixture
def make_wrapped_app(serve_env: None, tmp_path: Path, identity_cache: Path):  # noqa: ANN201
    """``make_wrapped_app(wrap, *overrides, limits=None, **changes)``: an app as
    :func:`make_app` makes it, whose pipelines render through ``wrap(renderer)`` (the configured
    renderer wrapped, e.g. in ``tests.fakes.SlowRenderer``), built with
    ``avatar.config.pipeline_from_config(cfg, renderer=...)``; ``limits`` are keyword changes of
    ``settings.limits`` (a frozen dataclass)."""
    from hydra.utils import instantiate

    from avatar.config import pipeline_from_config

    def make(wrap, *overrides: str, limits: dict | None = None, **changes: object):  # noqa: ANN001, ANN202
        settings, factory = load(
            [
                f"var_dir={tmp_path / 'var'}",
                "sizes=[128,256]",
                "default_size=128",
                f"render_overrides=['identity.cache_dir={identity_cache}']",
                *overrides,
            ]
        )
        if limits:
            changes["limits"] = dataclasses.replace(settings.limits, **limits)
        if changes:
            settings = dataclasses.replace(settings, **changes)

        def make_pipeline(*, size: int | None = None):  # noqa: ANN202
            config = copy.deepcopy(factory.config)
            if size is not None:
                config["renderer"]["size"] = int(size)
            return pipeline_from_config(config, renderer=wrap(instantiate(config["renderer"])))

        return create_app(settings, make_pipeline)

    return make


@contextlib.asynccontextmanager
async def opened(app) -> AsyncGenerator[httpx.AsyncClient, None]:  # noqa: ANN001
    """An httpx client on ``app`` in process, its lifespan run (``app.state.serve`` is its
    state)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://avatar.test") as c:
            yield c


@contextlib.contextmanager
def on_loopback(app) -> Iterator[str]:  # noqa: ANN001
    """``app`` on a real uvicorn server in a thread, on a free 127.0.0.1 port; yields its URL."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="loopback-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.config.port}"
    try:
        wait_until_healthy(url, 30.0, thread.is_alive)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def leftovers(var_dir: Path) -> list[str]:
    """Files under ``var_dir`` that a failed or cancelled render must not leave: MP4s, partial
    MP4s (``*.part.mp4``) and temporary uploads (``.upload.*``), as paths relative to it."""
    found = [p for p in var_dir.rglob("*") if p.is_file()]
    bad = [p for p in found if p.suffix == ".mp4" or ".part" in p.name or ".upload" in p.name]
    return sorted(str(p.relative_to(var_dir)) for p in bad)
