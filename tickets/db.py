"""The ticket database: engines for SQLite and PostgreSQL, migrations, sessions.

SQLite (the default, one file in the data directory) is tuned for one writer process and many
readers: WAL, a busy timeout, foreign keys on, and every transaction opened with `BEGIN IMMEDIATE`
so that a read-then-write transaction never fails half-way with "database is locked" (it waits
for the write lock up front instead). PostgreSQL is reached through psycopg 3.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DatabaseError(Exception):
    """The ticket database URL is wrong or the database cannot be prepared."""


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir) / 'edgewatch.db'}"


def _normalise(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"database URL {url!r} is not a valid SQLAlchemy URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend in {"postgresql", "postgres"}:
        # psycopg 3 is the driver edgewatch installs; plain `postgresql://` means it too.
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed
    raise DatabaseError(f"database URL {url!r}: unsupported backend {backend!r}; use sqlite:// or postgresql://")


def create_engine_for(url: str, **kwargs: Any) -> Engine:
    """An engine for `url` (SQLite or PostgreSQL) with edgewatch's connection settings applied."""
    parsed = _normalise(url)
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, **kwargs)
    database = parsed.database or ""
    in_memory = database in {"", ":memory:"} or "mode=memory" in str(parsed)
    if in_memory:
        # One shared connection, or every session would see its own empty database.
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    else:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    engine = sa.create_engine(parsed, **kwargs)
    _tune_sqlite(engine, wal=not in_memory)
    return engine


def _tune_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module; `_on_begin` issues BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (the caller often renders them afterwards)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: sa.Connection | None = None) -> Any:
    """An Alembic configuration for the migrations in this package (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine_or_url: Engine | str) -> None:
    """Bring the schema to the latest revision (`alembic upgrade head`); safe to run again.

    On PostgreSQL an advisory lock serialises processes migrating the same database at once; on
    SQLite `BEGIN IMMEDIATE` does the same.
    """
    from alembic import command

    engine = create_engine_for(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7426570)")
            command.upgrade(alembic_config(connection), "head")
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()
    logger.debug("ticket database migrated to head")
