"""``avatar-admin``: keys it makes work against the app, revoked ones stop working at once, and
mistakes exit 2 with one ``error:`` line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from serve import admin

PROBLEM = "application/problem+json"


@pytest.fixture
def admin_db(serve_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The database ``avatar-admin`` and the app share (``AVATAR_DATABASE_URL``, set after the
    app fixtures clear the deployment's environment)."""
    url = f"sqlite:///{tmp_path / 'admin' / 'avatar.db'}"
    monkeypatch.setenv("AVATAR_DATABASE_URL", url)
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    assert os.environ["AVATAR_DATABASE_URL"].startswith("sqlite:////")  # never the cwd's var/
    code = admin.run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.anyio
async def test_created_keys_work_and_revoked_ones_stop(admin_db, open_app, capsys):
    code, out, err = run(capsys, "create-tenant", "acme")
    assert (code, err) == (0, "") and out.count("\n") == 1
    key = out.strip()
    assert key.startswith("ak_") and len(key) > 40
    async with open_app(database_url=admin_db) as (client, _state):
        bearer = {"Authorization": f"Bearer {key}"}
        listed = await client.get("/v1/companions", headers=bearer)
        assert listed.status_code == 200 and listed.json()[0]["id"] == "default"

        code, second, _ = run(capsys, "add-key", "acme")
        other = {"Authorization": f"Bearer {second.strip()}"}
        assert code == 0 and (await client.get("/v1/companions", headers=other)).status_code == 200

        assert run(capsys, "revoke-key", key) == (0, "", "revoked\n")
        refused = await client.get("/v1/companions", headers=bearer)
        assert refused.status_code == 401 and refused.headers["content-type"] == PROBLEM
        assert refused.headers["www-authenticate"].startswith("Bearer ")
        assert (await client.get("/v1/companions", headers=other)).status_code == 200

        assert run(capsys, "revoke-key", second.strip()[:8]) == (0, "", "revoked\n")
        assert (await client.get("/v1/companions", headers=other)).status_code == 401

    code, out, _ = run(capsys, "list-tenants")
    assert code == 0 and out.split() == ["acme", "alpha", "beta"]  # the app seeded two


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ("revoke-key", "ak_no-such-key-0123456789"),
            "error: ConfigValueError: no active key matches",
        ),
        (("add-key", "nobody"), "error: ConfigValueError: no tenant named 'nobody'"),
        (("create-tenant", "a:b"), "error: ConfigValueError: tenant name 'a:b': use 1 to 100"),
    ],
)
def test_mistakes_exit_2_with_one_error_line(admin_db, capsys, argv, line):
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and err.startswith(line), err


def test_the_console_script_refuses_a_duplicate_tenant(tmp_path: Path):
    script = Path(sys.executable).with_name("avatar-admin")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "serve.admin"]
    env = {**os.environ, "AVATAR_DATABASE_URL": f"sqlite:///{tmp_path / 'avatar.db'}"}
    first = subprocess.run(
        [*command, "create-tenant", "acme"], capture_output=True, text=True, env=env
    )
    assert first.returncode == 0 and first.stdout.startswith("ak_"), first.stderr
    again = subprocess.run(
        [*command, "create-tenant", "acme"], capture_output=True, text=True, env=env
    )
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.splitlines() == ["error: Conflict: a tenant named 'acme' exists already"]


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql+psycopg://admin:pw-secret@127.0.0.1:1/avatar", "connection"),
        ("nosuchdb://x", "Can't load plugin"),
    ],
)
def test_an_unusable_database_is_one_error_line_without_the_password(
    monkeypatch, capsys, url, needle
):
    monkeypatch.setenv("AVATAR_DATABASE_URL", url)
    code = admin.run(["list-tenants"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "") and len(err.splitlines()) == 1
    assert err.startswith("error: database ") and needle in err and "pw-secret" not in err
