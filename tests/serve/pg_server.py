"""A throwaway PostgreSQL server for the store's tests: Debian's ``postgresql`` binaries, a
cluster in a temporary directory, listening only on a unix socket there.

PostgreSQL refuses to run as root (the sandbox and CI are root): the cluster then belongs to the
``postgres`` user and every server command runs as that user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresServer", "find_bin_dir"]


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``pg_ctl``."""
    found = [
        Path(p).parent
        for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
        if Path(p).with_name("pg_ctl").exists()
    ]
    return max(found, key=lambda p: int(p.parent.name), default=None) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A running cluster; :meth:`new_database` gives each test its own database.

    Args:
        bin_dir: where ``initdb`` and ``pg_ctl`` are.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="avatar-pg-"))  # short: socket paths < 108 B
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, user="postgres")
        self.root.chmod(0o755)
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N")
        options = f"-k {self.root} -p {self.port} -c listen_addresses='' -c fsync=off"
        self._run("pg_ctl", "start", "-w", "-D", self.data, "-l", self.root / "log", "-o", options)

    def _run(self, tool: str, *args: object) -> None:
        command = [str(self.bin_dir / tool), *map(str, args)]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}{done.stdout}{tail}")

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL of a database of this server (psycopg 3, over the unix socket)."""
        return f"postgresql+psycopg://postgres@/{dbname}?host={self.root}&port={self.port}"

    def new_database(self) -> str:
        """Create an empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(
            host=str(self.root), port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and remove the cluster."""
        try:
            self._run("pg_ctl", "stop", "-D", self.data, "-m", "immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
