"""A throwaway JupyterLab server for the browser test of the notebooks (tests/test_lab_browser.py).

The server runs this interpreter's ``jupyterlab`` (the venv's, so the ``python3`` kernel is the
venv's ipykernel) on 127.0.0.1 at a free port with a known token, serving a scratch folder; its
Jupyter config, data and runtime folders are scratch folders too, so neither the user's settings
nor kernelspecs nor workspaces take part, and JupyterLab neither asks about nor fetches news.
Its log goes to a file whose last lines failures quote.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["LabServer"]

# JupyterLab's settings for a test: every cell in the DOM (no windowing, so a locator finds the
# last cell's output without scrolling), no news and no update checks (nothing leaves the machine,
# no notification over the notebook)
USER_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
NEVER_CHECK = "jupyterlab.handlers.announcements.NeverCheckForUpdate"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LabServer:
    """``jupyter lab`` serving ``root_dir``; :meth:`stop` shuts its kernels and itself down.

    Args:
        root_dir: the folder JupyterLab serves (notebooks are opened relative to it).
        home: a scratch folder for Jupyter's config, data and runtime files and the log.
        env: extra environment variables for the server and so its kernels (``SMOKE=1``...).
    """

    def __init__(self, root_dir: Path, home: Path, env: dict[str, str] | None = None) -> None:
        self.root_dir = Path(root_dir)
        if not self.root_dir.is_dir():
            raise FileNotFoundError(f"LabServer: root_dir {self.root_dir} is not a folder")
        self.home = Path(home)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.home / "jupyter-lab.log"
        config = self.home / "config"
        for name, settings in USER_SETTINGS.items():
            path = config / "lab" / "user-settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(settings))
        full_env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_DATA_DIR": str(self.home / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.home / "runtime"),
            "IPYTHONDIR": str(self.home / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "0",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.news_url=None",
            f"--LabApp.check_for_updates_class={NEVER_CHECK}",
            "--MultiKernelManager.default_kernel_name=python3",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self._log = self.log_path.open("wb")
        # its own process group: kernels it starts go with it if it must be killed
        self.process = subprocess.Popen(
            command,
            cwd=self.root_dir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    # -- the REST API ------------------------------------------------------------------------

    def api(self, path: str, method: str = "GET", timeout: float = 10.0) -> Any:
        """``/api/<path>`` with the token; the decoded JSON (None for an empty answer)."""
        request = urllib.request.Request(
            f"{self.url}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method in ("POST", "DELETE") else None,
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float = 120.0) -> dict[str, Any]:
        """Poll ``/api/status`` until it answers; the status. Raises naming the log's tail."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {self.process.returncode} before answering "
                    f"/api/status:\n{self.log_tail()}"
                )
            try:
                return self.api("status", timeout=2.0)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"jupyter lab did not answer {self.url}/api/status in {timeout:.0f} s:\n"
                        f"{self.log_tail()}"
                    ) from None
                time.sleep(0.2)

    def lab_url(self, notebook: str) -> str:
        """The URL that opens ``notebook`` (relative to root_dir) in JupyterLab."""
        return f"{self.url}/lab/tree/{notebook}?token={self.token}"

    def kernels(self) -> list[dict[str, Any]]:
        """The running kernels (``id``, ``name``, ``execution_state``...)."""
        return self.api("kernels")

    def kernel_commands(self) -> list[list[str]]:
        """The command lines of the server's child processes (its kernels; Linux's /proc)."""
        tasks = Path(f"/proc/{self.process.pid}/task").glob("*/children")
        children = [pid for task in tasks for pid in task.read_text().split()]
        commands = []
        for child in children:
            try:
                raw = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:  # gone meanwhile
                continue
            commands.append([a.decode(errors="replace") for a in raw.split(b"\0") if a])
        return commands

    def log_tail(self, lines: int = 40) -> str:
        """The server log's last ``lines`` lines (kernel output that reaches it included)."""
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    # -- shutting down -----------------------------------------------------------------------

    def stop(self, timeout: float = 15.0) -> None:
        """Shut the kernels down, then the server (``/api/shutdown``); kill the group if need be."""
        try:
            if self.process.poll() is None:
                try:
                    for kernel in self.kernels():
                        self.api(f"kernels/{kernel['id']}", method="DELETE", timeout=timeout)
                    self.api("shutdown", method="POST", timeout=timeout)
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    pass  # not answering: the signals below
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._signal(signal.SIGTERM)
                    try:
                        self.process.wait(timeout=5.0)
                    except subprocess.TimeoutExpired:
                        self._signal(signal.SIGKILL)
                        self.process.wait(timeout=5.0)
            else:  # the server is gone: anything it left in its group goes too
                self._signal(signal.SIGKILL)
        finally:
            self._log.close()

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, sig)  # the group this server leads (start_new_session)
        except ProcessLookupError:
            pass
