"""The HTTP API from a notebook: ``python -m serve`` as a subprocess on loopback, with its own
temporary state and a generated API key, and a small client for it.

    with local_api(sizes=(256,)) as api, api.client() as http:
        sid = http.post("/v1/sessions", json={"companion_id": "default"}).json()["id"]
        reply = generate(http, sid, "Hello there.")
        reply.save("hello.mp4")

A notebook that keeps the server across cells uses ``api = LocalAPI.start(...)`` and
``api.stop()`` at the end. The server is stopped at interpreter exit too (``atexit``) and, on
Linux, when the thread that started it dies (``PR_SET_PDEATHSIG``), so a crashed or killed
kernel leaves no server behind. The repository's ``var/`` is never used: the state lives in a
fresh temporary folder, removed on stop.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from avatar.cache_root import cache_root

log = logging.getLogger(__name__)

__all__ = ["LocalAPI", "Reply", "free_port", "generate", "local_api", "samples"]

LOOPBACK = "127.0.0.1"
_DEPLOYMENT_ENV = ("AVATAR_DATABASE_URL", "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
"""Environment a deployment sets; a lab server drops it (SQLite in its own folder, no LiveKit)."""
_OWN_KEYS = ("host", "port", "var_dir", "render_overrides")
"""Overrides :class:`LocalAPI` sets itself (passed as arguments instead)."""
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS's choice)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when its parent thread dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # looked up here: the child only calls it
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class LocalAPI:
    """One ``python -m serve`` process on 127.0.0.1 (make it with :meth:`start`).

    Attributes:
        url: base URL, ``http://127.0.0.1:<port>``.
        key: the API key of ``tenant`` (generated; never printed by the server).
        tenant: the tenant seeded through ``AVATAR_API_KEYS``.
        var_dir: the server's state (SQLite database, uploads, MP4 cache).
        log_path: the server's stdout and stderr.
        pid: the server's process id.
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        *,
        url: str,
        key: str,
        tenant: str,
        workdir: Path,
        var_dir: Path,
    ) -> None:
        self._proc = proc
        self.url, self.key, self.tenant = url, key, tenant
        self._workdir = workdir
        self.var_dir = var_dir
        self.log_path = workdir / "server.log"
        self.pid = proc.pid
        self._exit_hook = self.stop
        atexit.register(self._exit_hook)

    @classmethod
    def start(
        cls,
        *overrides: str,
        sizes: Sequence[int] | None = None,
        tenant: str = "lab",
        key: str | None = None,
        identity_cache: str | Path | None = None,
        render_overrides: Sequence[str] = (),
        ready_timeout_s: float = 60.0,
        env: Mapping[str, str] | None = None,
    ) -> LocalAPI:
        """Start the server and wait until ``/readyz`` answers 200.

        Args:
            overrides: Hydra overrides of ``configs/serve.yaml`` (``limits.workers=1``); not
                ``host``, ``port``, ``var_dir`` or ``render_overrides`` (set here).
            sizes: frame sizes served (the first is the default size); None: the config's.
            tenant, key: the seeded tenant and its key (default: a random 32-character key).
            identity_cache: where derived identities are cached; None: the workbench's cache
                (``$AVATAR_CACHE_DIR`` or ``~/.cache/companion-avatar``), shared with the
                other notebooks, so the default companion is derived once.
            render_overrides: ``configs/render.yaml`` overrides of the served pipelines.
            ready_timeout_s: how long to wait for ``/readyz``, seconds.
            env: extra environment variables for the server.

        Raises:
            ValueError: an override this class sets itself, a bad size, tenant or key.
            RuntimeError: the server exited before it was ready (the message holds its log).
            TimeoutError: not ready within ``ready_timeout_s`` (the server is stopped).
        """
        args = _serve_args(overrides, sizes, identity_cache, render_overrides)
        key = secrets.token_urlsafe(24) if key is None else key
        if not tenant or any(c in tenant for c in ":,") or len(key) < 8 or "," in key:
            raise ValueError("tenant must be a name without ':' or ',' and key 8+ characters")
        workdir = Path(tempfile.mkdtemp(prefix="avatar-lab-"))
        var_dir = workdir / "var"
        port = free_port()
        environ = {k: v for k, v in os.environ.items() if k not in _DEPLOYMENT_ENV}
        environ.update({"AVATAR_API_KEYS": f"{tenant}:{key}", **(env or {})})
        command = [sys.executable, "-m", "serve", f"host={LOOPBACK}", f"port={port}"]
        command += [f"var_dir={var_dir}", *args]
        with (workdir / "server.log").open("wb") as out:
            proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environ,
                preexec_fn=_die_with_parent(),  # noqa: PLW1509 - only prctl, looked up before
            )
        url = f"http://{LOOPBACK}:{port}"
        api = cls(proc, url=url, key=key, tenant=tenant, workdir=workdir, var_dir=var_dir)
        try:
            api._wait_ready(ready_timeout_s)
        except BaseException:
            api.stop()
            raise
        log.info("serve on %s (pid %d, state in %s)", api.url, api.pid, var_dir)
        return api

    def _wait_ready(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"python -m serve exited with {self._proc.returncode} before it was ready; "
                    f"its log:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            if time.monotonic() > end:
                raise TimeoutError(
                    f"python -m serve did not answer {self.url}/readyz within {timeout_s:g} s; "
                    f"its log:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    @property
    def running(self) -> bool:
        """Whether the server process is still alive."""
        return self._proc.poll() is None

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization: Bearer <key>`` header."""
        return {"Authorization": f"Bearer {self.key}"}

    def client(self, *, timeout_s: float = 120.0) -> httpx.Client:
        """An httpx client on :attr:`url` sending the key (close it, or use ``with``)."""
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout_s)

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server's log ('' once it is removed)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM the server (SIGKILL after ``timeout_s``), remove its folder; its exit code.

        Safe to call twice; the second call returns the same code.
        """
        proc = self._proc
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("serve (pid %d) ignored SIGTERM for %g s: killed", proc.pid, timeout_s)
                proc.kill()
                proc.wait()
        atexit.unregister(self._exit_hook)
        shutil.rmtree(self._workdir, ignore_errors=True)
        return proc.returncode

    def __enter__(self) -> LocalAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"stopped ({self._proc.returncode})"
        return f"LocalAPI({self.url}, tenant={self.tenant!r}, {state})"


def _serve_args(
    overrides: Sequence[str],
    sizes: Sequence[int] | None,
    identity_cache: str | Path | None,
    render_overrides: Sequence[str],
) -> list[str]:
    """The Hydra overrides of ``python -m serve`` besides host, port and var_dir."""
    for item in (*overrides, *render_overrides):
        if not isinstance(item, str):
            raise ValueError(f"overrides are strings like 'limits.workers=1', got {item!r}")
    for item in overrides:
        name = item.lstrip("+~").split("=", 1)[0].strip()
        if name in _OWN_KEYS:
            raise ValueError(f"LocalAPI sets {name!r} itself; pass it as an argument, not {item!r}")
    args = list(overrides)
    if sizes is not None:
        chosen = [int(s) for s in sizes]
        if not chosen or any(s <= 0 for s in chosen):
            raise ValueError(f"sizes must be positive frame sides, got {list(sizes)!r}")
        args += [f"sizes=[{','.join(map(str, chosen))}]", f"default_size={chosen[0]}"]
    cache = cache_root(identity_cache)
    render = [f"identity.cache_dir={cache}", *render_overrides]
    bad = [r for r in render if "'" in r or "\\" in r]
    if bad:
        raise ValueError(f"render overrides cannot hold quotes or backslashes: {bad!r}")
    args.append("render_overrides=[" + ",".join(f"'{r}'" for r in render) + "]")
    return args


@contextlib.contextmanager
def local_api(*overrides: str, **options: Any) -> Iterator[LocalAPI]:
    """:meth:`LocalAPI.start` as a context manager: the server is stopped on leaving."""
    api = LocalAPI.start(*overrides, **options)
    try:
        yield api
    finally:
        api.stop()


@dataclass(frozen=True)
class Reply:
    """One generate response.

    Attributes:
        status: HTTP status.
        seconds: wall-clock from sending the request to the last byte, seconds.
        content_type: the response's media type (``video/mp4``, ``application/problem+json``).
        body: the response body (the MP4's bytes on success).
        etag: the video's ETag (sha256 of what it depends on; identical requests share it).
    """

    status: int
    seconds: float
    content_type: str
    body: bytes
    etag: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.content_type.startswith("video/mp4")

    @property
    def problem(self) -> dict[str, Any] | None:
        """The problem+json body (type, title, status, detail) of an error, else None."""
        if not self.content_type.startswith("application/problem+json"):
            return None
        return json.loads(self.body)

    def save(self, path: str | Path) -> Path:
        """Write the MP4 to ``path`` (folders made); raises ValueError for an error reply."""
        if not self.ok:
            raise ValueError(f"no MP4 to save: status {self.status}, {self.problem}")
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(self.body)
        return out


def generate(client: httpx.Client, session_id: str, text: str, **fields: Any) -> Reply:
    """``POST /v1/sessions/{session_id}/generate`` with JSON ``{text, **fields}`` (``emotion``,
    ``emotion_intensity``), timed; errors come back as a :class:`Reply` too."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    t0 = time.perf_counter()
    response = client.post(f"/v1/sessions/{session_id}/generate", json={"text": text, **fields})
    seconds = time.perf_counter() - t0
    kind = response.headers.get("content-type", "")
    etag = response.headers.get("etag")
    return Reply(
        response.status_code, seconds, kind, response.content, etag.strip('"') if etag else None
    )


def samples(metrics_text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples named ``name`` (e.g. ``avatar_render_seconds_sum``) of a Prometheus
    exposition (``GET /metrics``), as ``(labels, value)`` pairs."""
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(metrics_text)
        for s in family.samples
        if s.name == name
    ]
