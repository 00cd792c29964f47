"""The ticket database: engines for SQLite and PostgreSQL, migrations, sessions.

SQLite (the default, one file in the data directory) is tuned for one writer process and many
readers: WAL, a busy timeout, foreign keys on, and every transaction opened with `BEGIN IMMEDIATE`
so that a read-then-write transaction never fails half-way with "database is locked" (it waits
for the write lock up front instead). PostgreSQL is reached through psycopg 3.

Every engine made here translates the driver's "cannot serve this now" errors (connection refused
or lost, server shutting down, out of resources, SQLite locked or unopenable...) into the one
`tickets.errors.DatabaseUnavailable` (`unavailable_reason` decides), so no caller inspects
SQLAlchemy's exceptions to learn whether the database is down.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from common.files import private_file
from tickets.errors import DatabaseUnavailable

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
        engine = sa.create_engine(parsed, **kwargs)
        event.listen(engine, "handle_error", _translate, retval=True)
        return engine
    database = parsed.database or ""
    in_memory = database in {"", ":memory:"} or "mode=memory" in str(parsed)
    queue = _WriterQueue() if in_memory else _queue_for(str(Path(database).resolve()))
    connect_args = {"check_same_thread": False, "factory": _queued_connection_class(queue)}
    connect_args.update(kwargs.pop("connect_args", {}))
    kwargs["connect_args"] = connect_args
    if in_memory:
        # One shared connection, or every session would see its own empty database.
        kwargs.setdefault("poolclass", StaticPool)
    else:
        private_file(Path(database))  # 0600 in a 0700 directory: it holds customers' contacts
    engine = sa.create_engine(parsed, **kwargs)
    _tune_sqlite(engine, wal=not in_memory)
    event.listen(engine, "handle_error", _translate, retval=True)
    return engine


# PostgreSQL SQLSTATEs (a class is its first two characters) after which the same transaction can
# succeed later: connection exceptions (08), insufficient resources (53: too many connections, disk
# full, out of memory), system errors (58: I/O), the server shutting down or starting up (57P01-03),
# and a transaction the server aborted to resolve a deadlock or a serialization conflict (40001,
# 40P01): nothing about the statement is wrong, so it is not the caller's error either.
_PG_CLASSES = ("08", "53", "58")
_PG_STATES = ("57P01", "57P02", "57P03", "40001", "40P01")
# SQLite primary result codes: BUSY and LOCKED (another connection holds the lock past the busy
# timeout), IOERR, FULL, CANTOPEN (the file or its directory cannot be opened, e.g. a missing mount).
_SQLITE_CODES = {5: "busy", 6: "locked", 10: "I/O error", 13: "disk full", 14: "cannot open the file"}


def unavailable_reason(error: BaseException, *, disconnect: bool = False, connecting: bool = False) -> str | None:
    """Why the database cannot serve a transaction now, or None when `error` is about the
    statement or its data (a constraint, a bad value, a missing table), which waiting won't fix.

    `disconnect`: SQLAlchemy's dialect judged the connection lost; `connecting`: the error came
    while opening a connection (refused, timed out, the server not accepting logins yet).
    """
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if disconnect:
        return f"connection lost ({text})"
    if connecting:
        return f"cannot connect ({text})"
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return text if code is not None and code & 0xFF in _SQLITE_CODES else None
    state = getattr(error, "sqlstate", None)
    if isinstance(state, str) and (state[:2] in _PG_CLASSES or state in _PG_STATES):
        return f"{text} (SQLSTATE {state})"
    return None


def _translate(ctx: ExceptionContext) -> BaseException | None:
    """The one translation point (`handle_error`, chained): a driver error meaning "not now"
    becomes `DatabaseUnavailable`; everything else goes on as SQLAlchemy raised it."""
    error = ctx.original_exception
    if ctx.is_pre_ping or not isinstance(error, ctx.dialect.loaded_dbapi.Error):
        # A pre-ping's lost connection is the pool's to replace; exit exceptions (KeyboardInterrupt,
        # cancellation), which SQLAlchemy also counts as disconnects, must pass untouched.
        return None
    reason = unavailable_reason(error, disconnect=ctx.is_disconnect, connecting=ctx.connection is None)
    return None if reason is None else DatabaseUnavailable(reason)


class _WriterQueue:
    """First come, first served hand-over of SQLite's single write lock among this process's threads.

    SQLite lets one transaction write at a time and makes the others poll with growing sleeps (up
    to 100 ms each), in no particular order: a thread committing batch after batch can keep a
    clock's breach waiting until the busy timeout gives up. Queueing here hands the lock over the
    moment it is free, in arrival order. Re-entrant per thread (a nested transaction on a second
    connection then waits on SQLite itself, as it would without the queue).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0
        self._abandoned: set[int] = set()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self, timeout: float) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            ticket = self._next
            self._next += 1
            deadline = time.monotonic() + timeout
            while self._serving != ticket or self._owner is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._abandoned.add(ticket)
                    self._advance()
                    raise DatabaseUnavailable(
                        f"database is locked: other writers of this process held it for {timeout:g} s")
                self._cond.wait(remaining)
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._cond:
            self._depth -= 1
            if self._depth > 0:
                return
            self._owner = None
            self._serving += 1
            self._advance()
            self._cond.notify_all()

    def _advance(self) -> None:
        while self._serving in self._abandoned:
            self._abandoned.discard(self._serving)
            self._serving += 1
        self._cond.notify_all()


# One queue per database file for the whole process: the lock it stands for (SQLite's file lock)
# is process-wide too, whichever engine a component created.
_QUEUES: dict[str, _WriterQueue] = {}
_QUEUES_LOCK = threading.Lock()


def _queue_for(path: str) -> _WriterQueue:
    with _QUEUES_LOCK:
        return _QUEUES.setdefault(path, _WriterQueue())


def _queued_connection_class(queue: _WriterQueue) -> type[sqlite3.Connection]:
    class QueuedConnection(sqlite3.Connection):
        """Releases its place in the writer queue once COMMIT or ROLLBACK has really happened."""

        holds = False

        def begin_write(self) -> None:
            queue.acquire(SQLITE_BUSY_TIMEOUT_MS / 1000)
            self.holds = True

        def release_write(self) -> None:
            if self.holds:
                self.holds = False
                queue.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self.release_write()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self.release_write()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self.release_write()

    return QueuedConnection


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
        raw = connection.connection.dbapi_connection
        queued = hasattr(raw, "begin_write")
        if queued:
            raw.begin_write()  # type: ignore[union-attr]
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if queued:
                raw.release_write()  # type: ignore[union-attr]
            raise


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


def _sqlite_pragma(connection: sa.Connection, pragma: str) -> None:
    # Straight to the driver: through SQLAlchemy the statement would first begin a transaction,
    # inside which SQLite ignores `foreign_keys`.
    connection.connection.dbapi_connection.execute(f"PRAGMA {pragma}")  # type: ignore[union-attr]


def migrate(engine_or_url: Engine | str) -> None:
    """Bring the schema to the latest revision (`alembic upgrade head`); safe to run again.

    On PostgreSQL an advisory lock serialises processes migrating the same database at once; on
    SQLite `BEGIN IMMEDIATE` does the same.
    """
    from alembic import command

    engine = create_engine_for(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # SQLite alters a column by rebuilding its table; dropping the old copy of a table
                # other rows refer to (devices, under tickets) fails with foreign keys on. They are
                # switched off for the migration (only possible outside a transaction) and the
                # references checked before it commits.
                _sqlite_pragma(connection, "foreign_keys=OFF")
            try:
                with connection.begin():
                    if not sqlite:
                        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7426570)")
                    command.upgrade(alembic_config(connection), "head")
                    if sqlite:
                        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                        if broken:
                            raise DatabaseError(f"migrating left rows referring to nothing: {broken[:5]}")
            finally:
                if sqlite:
                    _sqlite_pragma(connection, "foreign_keys=ON")
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()
    logger.debug("ticket database migrated to head")
