"""The service's tables (SQLAlchemy 2.x ORM): tenants and their API keys, companions, sessions,
and the generated MP4s cached per session. The schema is created and changed only by the
migrations in :mod:`serve.store.migrations`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = ["ApiKey", "Base", "Companion", "Output", "Session", "Tenant", "UtcDateTime"]


class UtcDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that stores UTC and always reads back aware UTC datetimes.

    SQLite keeps no zone (it would read back naive) and PostgreSQL answers in the session's
    zone; both read back the same here. Naive datetimes are refused when written.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    """A customer: everything else belongs to exactly one tenant."""

    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiKey(Base):
    """A tenant's API key, stored as its sha256 (the key itself is shown once, never stored)."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(
        String(12)
    )  # the key's first characters, to tell keys apart
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Companion(Base):
    """A tenant's companion: its stored images and the identity derived from them."""

    __tablename__ = "companions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    images: Mapped[list[str]] = mapped_column(JSON)  # stored image paths, best first
    voice: Mapped[str | None] = mapped_column(String(64), nullable=True)
    identity_key: Mapped[str] = mapped_column(String(64))
    source_image: Mapped[int] = mapped_column(Integer)  # index of the image the avatar uses
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Session(Base):
    """The rendering context of one companion: voice, mood and frame size; expires when idle."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    companion_id: Mapped[str] = mapped_column(String(40))  # "default" or a companions.id
    voice: Mapped[str | None] = mapped_column(String(64), nullable=True)
    emotion: Mapped[str | None] = mapped_column(String(32), nullable=True)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class Output(Base):
    """A generated MP4 of a session, addressed by the content of its request (the ETag)."""

    __tablename__ = "outputs"
    __table_args__ = (UniqueConstraint("session_id", "etag"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    etag: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
