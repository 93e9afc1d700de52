"""Store: the service's database behind one interface (SQLAlchemy; SQLite or PostgreSQL).

Every read and write that touches a tenant's data takes the tenant's id, so a query can never
return another tenant's row. API keys are kept as sha256 digests: a key is shown once when it
is made and can only be checked afterwards. Methods are synchronous and thread-safe (one
SQLAlchemy session per call); the API calls them from its thread pool.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, delete, event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from avatar.errors import ConfigValueError
from serve.store.models import ApiKey, Companion, Output, Session, Tenant

log = logging.getLogger(__name__)

__all__ = ["Conflict", "Store", "hash_key", "new_id", "utc_now"]

T = TypeVar("T")
MIGRATIONS = Path(__file__).with_name("migrations")
KEY_PREFIX_CHARS = 8
"""A key's first characters, stored in clear to tell keys apart (``revoke-key PREFIX``)."""
_MIGRATION_LOCK = 0x61766174  # PostgreSQL advisory lock id of the migrations ("avat")
_BATCH = 500  # ids per IN (...) clause


class Conflict(Exception):
    """A row with this unique value exists already (e.g. a tenant name)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A new random id such as ``ses_3f9c...`` (16 random bytes, hex)."""
    return f"{prefix}_{secrets.token_hex(16)}"


def hash_key(key: str) -> str:
    """sha256 hex digest of an API key (keys are 32 random bytes: no salt or stretching needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 (DBAPI connection)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Store:
    """The database at ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent; run at every start).

        Replicas starting together migrate one at a time: the first takes a lock (PostgreSQL:
        an advisory lock; SQLite: the write lock) for its transaction, the others then find
        nothing left to do.
        """
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            _lock_for_migration(conn)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[OrmSession]:
        with self._sessions.begin() as orm:
            yield orm

    # -- tenants and keys ------------------------------------------------------------------

    def create_tenant(self, name: str) -> Tenant:
        """A new tenant; raises :class:`Conflict` if the name is taken, ConfigValueError if it
        is blank, over 100 characters, or holds ``:`` or ``,`` (``AVATAR_API_KEYS`` syntax)."""
        if not name.strip() or name != name.strip() or len(name) > 100 or set(name) & {":", ","}:
            raise ConfigValueError(
                f"tenant name {name!r}: use 1 to 100 characters without ':' or ',' "
                "and no leading or trailing spaces"
            )
        tenant = Tenant(id=new_id("ten"), name=name, created_at=utc_now())
        try:
            with self._tx() as orm:
                orm.add(tenant)
        except IntegrityError:
            raise Conflict(f"a tenant named {name!r} exists already") from None
        return tenant

    def list_tenants(self) -> list[Tenant]:
        with self._tx() as orm:
            return list(orm.scalars(select(Tenant).order_by(Tenant.name)))

    def tenant_by_name(self, name: str) -> Tenant | None:
        with self._tx() as orm:
            return orm.scalar(select(Tenant).where(Tenant.name == name))

    def add_key(self, tenant_id: str, key: str | None = None) -> str:
        """Store a key for the tenant (a new random one when None); returns the key."""
        key = key or f"ak_{secrets.token_urlsafe(32)}"
        row = ApiKey(
            id=new_id("key"),
            tenant_id=tenant_id,
            key_hash=hash_key(key),
            prefix=key[:KEY_PREFIX_CHARS],
            created_at=utc_now(),
        )
        try:
            with self._tx() as orm:
                orm.add(row)
        except IntegrityError:
            raise Conflict("this key is in use already") from None
        return key

    def revoke_key(self, key_or_prefix: str) -> int:
        """Revoke a key, given whole or by its first 8 characters; returns how many (0 or 1).

        A whole key revokes only itself (other keys may share its first characters). A prefix
        that matches several active keys raises :class:`Conflict`: give the whole key.
        """
        with self._tx() as orm:
            active = select(ApiKey).where(ApiKey.revoked_at.is_(None))
            rows = orm.scalars(active.where(ApiKey.key_hash == hash_key(key_or_prefix))).all()
            if not rows and len(key_or_prefix) == KEY_PREFIX_CHARS:
                rows = orm.scalars(active.where(ApiKey.prefix == key_or_prefix)).all()
                if len(rows) > 1:
                    raise Conflict(
                        f"{len(rows)} active keys start with {key_or_prefix!r}: give the whole key"
                    )
            for row in rows:
                row.revoked_at = utc_now()
            return len(rows)

    def seed(self, keys: dict[str, str]) -> None:
        """Make sure each tenant exists and holds its key (``AVATAR_API_KEYS`` at start)."""
        for name, key in keys.items():
            tenant = self.tenant_by_name(name)
            if tenant is None:
                try:
                    tenant = self.create_tenant(name)
                except Conflict:  # another replica made it meanwhile
                    tenant = self.tenant_by_name(name)
            assert tenant is not None
            if self.tenant_for_key(key) is None:
                try:
                    self.add_key(tenant.id, key)
                except Conflict:
                    log.warning("AVATAR_API_KEYS: the key of %s is revoked or another's", name)

    def tenant_for_key(self, key: str) -> Tenant | None:
        """The tenant holding this (unrevoked) key, or None."""
        with self._tx() as orm:
            return orm.scalar(
                select(Tenant)
                .join(ApiKey, ApiKey.tenant_id == Tenant.id)
                .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
            )

    # -- companions ------------------------------------------------------------------------

    def add_companion(self, companion: Companion) -> Companion:
        with self._tx() as orm:
            orm.add(companion)
        return companion

    def companion(self, tenant_id: str, companion_id: str) -> Companion | None:
        with self._tx() as orm:
            return orm.scalar(
                select(Companion).where(
                    Companion.tenant_id == tenant_id, Companion.id == companion_id
                )
            )

    def companions(self, tenant_id: str) -> list[Companion]:
        with self._tx() as orm:
            rows = orm.scalars(
                select(Companion)
                .where(Companion.tenant_id == tenant_id)
                .order_by(Companion.created_at)
            )
            return list(rows)

    def delete_companion(
        self, tenant_id: str, companion_id: str
    ) -> tuple[Companion, list[Session]] | None:
        """Delete the companion, its sessions and their cached outputs.

        Returns:
            The companion and its deleted sessions (the caller removes their files), or None
            when the tenant has no such companion.
        """
        with self._tx() as orm:
            row = orm.scalar(
                select(Companion).where(
                    Companion.tenant_id == tenant_id, Companion.id == companion_id
                )
            )
            if row is None:
                return None
            sessions = list(
                orm.scalars(
                    select(Session).where(
                        Session.tenant_id == tenant_id, Session.companion_id == companion_id
                    )
                )
            )
            _delete_sessions(orm, [s.id for s in sessions])
            orm.delete(row)
            return row, sessions

    # -- sessions --------------------------------------------------------------------------

    def add_session(self, session: Session) -> Session:
        with self._tx() as orm:
            orm.add(session)
        return session

    def session(
        self, tenant_id: str, session_id: str, *, now: datetime | None = None
    ) -> Session | None:
        """The tenant's session if it exists and has not expired."""
        now = now or utc_now()
        with self._tx() as orm:
            row = orm.scalar(
                select(Session).where(Session.tenant_id == tenant_id, Session.id == session_id)
            )
            if row is None or row.expires_at <= now:  # aware UTC (UtcDateTime)
                return None
            return row

    def touch_session(self, session_id: str, idle_ttl_s: float) -> datetime:
        """Mark the session used now; returns its new expiry."""
        now = utc_now()
        expires = now + timedelta(seconds=idle_ttl_s)
        with self._tx() as orm:
            row = orm.get(Session, session_id)
            if row is not None:
                row.last_used_at, row.expires_at = now, expires
        return expires

    def delete_session(self, tenant_id: str, session_id: str) -> Session | None:
        with self._tx() as orm:
            row = orm.scalar(
                select(Session).where(Session.tenant_id == tenant_id, Session.id == session_id)
            )
            if row is not None:
                _delete_sessions(orm, [session_id])
            return row

    def expired_sessions(self, now: datetime | None = None) -> list[Session]:
        """Sessions past their expiry (any tenant), not deleted."""
        now = now or utc_now()
        with self._tx() as orm:
            return list(orm.scalars(select(Session).where(Session.expires_at <= now)))

    def delete_expired(self, now: datetime | None = None) -> list[Session]:
        """Delete the sessions past their expiry (any tenant) and their cached outputs.

        On PostgreSQL, rows another transaction holds (a replica sweeping too, a request
        touching the session right then) are skipped (``FOR UPDATE SKIP LOCKED``); SQLite has
        one writer at a time. Returns the deleted sessions: the caller removes their files.
        """
        now = now or utc_now()
        with self._tx() as orm:
            rows = list(
                orm.scalars(
                    select(Session)
                    .where(Session.expires_at <= now)
                    .with_for_update(skip_locked=True)
                )
            )
            _delete_sessions(orm, [row.id for row in rows])
            return rows

    def existing_sessions(self, session_ids: list[str]) -> set[str]:
        """Which of ``session_ids`` have a row (any tenant, expired or not)."""
        found: set[str] = set()
        with self._tx() as orm:
            for start in range(0, len(session_ids), _BATCH):
                chunk = session_ids[start : start + _BATCH]
                found.update(orm.scalars(select(Session.id).where(Session.id.in_(chunk))))
        return found

    # -- cached outputs --------------------------------------------------------------------

    def output(self, session_id: str, etag: str) -> Output | None:
        with self._tx() as orm:
            return orm.scalar(
                select(Output).where(Output.session_id == session_id, Output.etag == etag)
            )

    def add_output(self, output: Output) -> Output:
        """Record a cached MP4; an identical one recorded meanwhile wins (returned instead)."""
        try:
            with self._tx() as orm:
                orm.add(output)
        except IntegrityError:
            existing = self.output(output.session_id, output.etag)
            if existing is None:
                raise
            return existing
        return output

    def outputs(self, session_id: str) -> list[Output]:
        """A session's cached MP4s, oldest first."""
        with self._tx() as orm:
            rows = orm.scalars(
                select(Output).where(Output.session_id == session_id).order_by(Output.created_at)
            )
            return list(rows)

    def delete_output(self, output_id: str) -> None:
        with self._tx() as orm:
            orm.execute(delete(Output).where(Output.id == output_id))


def _delete_sessions(orm: OrmSession, session_ids: list[str]) -> None:
    """Delete sessions and their outputs (explicitly: no reliance on the driver's cascades)."""
    for start in range(0, len(session_ids), _BATCH):
        chunk = session_ids[start : start + _BATCH]
        orm.execute(delete(Output).where(Output.session_id.in_(chunk)))
        orm.execute(delete(Session).where(Session.id.in_(chunk)))


def _lock_for_migration(conn: Connection) -> None:
    """Hold a database-wide lock until ``conn``'s transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # pysqlite would begin only at the first write
