"""``avatar-admin``: manage tenants and API keys in the service's database.

    avatar-admin create-tenant NAME      # prints the new tenant's first API key (shown once)
    avatar-admin add-key NAME            # another key for the tenant
    avatar-admin revoke-key KEY|PREFIX   # revoke a key (whole, or its first 8 characters when
                                         # no other active key starts with them)
    avatar-admin list-tenants

The database is ``AVATAR_DATABASE_URL`` (default ``sqlite:///var/avatar.db``, as the service).
Errors (a taken name, an unknown key, an unreachable database) print one ``error:`` line on
stderr and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from avatar.errors import ConfigValueError
from serve.store import Conflict, Store

__all__ = ["main"]


def _url() -> str:
    return os.environ.get("AVATAR_DATABASE_URL") or "sqlite:///var/avatar.db"


def _shown(url: str) -> str:
    """The URL without its password (or a placeholder when it does not parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<not a database URL>"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar-admin", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create-tenant", help="make a tenant and its first key").add_argument("name")
    sub.add_parser("add-key", help="another key for a tenant").add_argument("name")
    sub.add_parser("revoke-key", help="revoke a key").add_argument("key")
    sub.add_parser("list-tenants", help="tenant names")
    return parser


def run(argv: list[str]) -> int:
    """Run one admin command; returns the exit code."""
    args = _parser().parse_args(argv)
    store: Store | None = None
    try:
        store = Store(_url())
        store.migrate()
        if args.command == "create-tenant":
            tenant = store.create_tenant(args.name)
            sys.stdout.write(store.add_key(tenant.id) + "\n")  # the key: shown once
        elif args.command == "add-key":
            tenant = store.tenant_by_name(args.name)
            if tenant is None:
                raise ConfigValueError(f"no tenant named {args.name!r}")
            sys.stdout.write(store.add_key(tenant.id) + "\n")
        elif args.command == "revoke-key":
            if store.revoke_key(args.key) == 0:
                raise ConfigValueError("no active key matches")
            sys.stderr.write("revoked\n")
        else:
            for tenant in store.list_tenants():
                sys.stdout.write(tenant.name + "\n")
    except (Conflict, ConfigValueError) as exc:
        sys.stderr.write(f"error: {type(exc).__name__}: {exc}\n")
        return 2
    except SQLAlchemyError as exc:  # a bad URL or a database that does not answer
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"error: database {_shown(_url())}: {first}\n")
        return 2
    finally:
        if store is not None:
            store.close()
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
