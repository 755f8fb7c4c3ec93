"""Declarative base, naming convention and shared mixins."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, MetaData, String, TypeDecorator, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, declared_attr, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class EnumText(TypeDecorator):
    """A StrEnum stored as its value in a plain VARCHAR (adding a member needs no migration).

    Reading gives the member, so ``Complaint.status`` is a ``Status``; writing checks the value
    against the enum, so a misspelt status never reaches the database.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int):
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return self.enum(value).value

    def process_result_value(self, value: Any, dialect: Any) -> StrEnum | None:
        if value is None:
            return None
        return self.enum(value)

    @property
    def python_type(self) -> type:
        return self.enum


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class InstitutionScoped:
    """Marks a row as owned by one institution; reach it only through organisation.scope."""

    @declared_attr
    def institution_id(cls) -> Mapped[int]:
        return mapped_column(Integer, ForeignKey("institution.id"), index=True)


def insert_unless_present(session: Session, model: type, conflict_columns: list[str], values: dict[str, Any]) -> bool:
    """INSERT one row, or nothing when a row with the same ``conflict_columns`` (a unique constraint) exists;
    True when the row was inserted. One statement (ON CONFLICT DO NOTHING), so two workers racing on the same
    row never fail: the database's one dialect-specific statement, kept here."""
    table = model.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        statement: Any = postgresql.insert(table).values(**values).on_conflict_do_nothing(
            index_elements=conflict_columns)
    else:
        statement = sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict_columns)
    # RETURNING, not the row count: with an implicit RETURNING the count is not reported on PostgreSQL.
    return session.execute(statement.returning(*table.primary_key.columns)).first() is not None


def lock_for_transaction(session: Session, namespace: str, keys: Iterable[str]) -> None:
    """Serialise a check-then-insert across workers: hold a transaction-scoped lock on each key (PostgreSQL
    advisory locks, taken in sorted order so two workers never deadlock) until the caller commits or rolls back.
    A second worker asking for the same key waits, then sees what the first one committed. SQLite has a single
    writer, so there is nothing to take."""
    if session.get_bind().dialect.name != "postgresql":
        return
    numbers = sorted({advisory_key(namespace, key) for key in keys})
    if numbers:  # one statement, the locks taken in the array's (sorted) order
        session.execute(text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) "
                             "WITH ORDINALITY AS t(k, i) ORDER BY i"), {"keys": numbers})


def advisory_key(namespace: str, key: str) -> int:
    """A stable signed 64-bit number for a lock's name (the same in every process, unlike hash())."""
    digest = hashlib.blake2b(f"{namespace}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
