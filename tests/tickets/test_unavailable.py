"""`DatabaseUnavailable`, the one answer to "is the database down?": which driver errors become it
(on real SQLite files and a real PostgreSQL), and which stay what SQLAlchemy raised."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.support import services
from tests.support.services import free_port
from tickets import db
from tickets.db import create_engine_for, migrate, unavailable_reason
from tickets.errors import DatabaseUnavailable, TicketError


class _ServerError(Exception):
    """A driver error as PostgreSQL's driver reports one: with its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        self.sqlstate = sqlstate
        super().__init__(f"server said {sqlstate}\nDETAIL: more")


@pytest.mark.parametrize(("sqlstate", "unavailable"), [
    ("08006", True), ("08001", True),  # connection failure, cannot connect
    ("53300", True), ("53100", True),  # too many connections, disk full
    ("57P01", True), ("57P03", True),  # shutting down, starting up
    ("58030", True),  # I/O error
    ("40P01", True), ("40001", True),  # deadlock, serialization failure: the same transaction can pass later
    ("23505", False), ("22001", False), ("42P01", False),  # unique violation, value too long, no such table
    ("57014", False),  # a cancelled statement: someone meant it
])
def test_postgresql_states_that_mean_not_now(sqlstate: str, unavailable: bool) -> None:
    reason = unavailable_reason(_ServerError(sqlstate))
    assert (reason is not None) == unavailable
    if reason is not None:
        assert reason == f"server said {sqlstate} (SQLSTATE {sqlstate})"  # first line only


def test_lost_or_refused_connections_are_unavailable_whatever_the_error() -> None:
    assert unavailable_reason(ValueError("boom"), disconnect=True) == "connection lost (boom)"
    assert unavailable_reason(ValueError("no"), connecting=True) == "cannot connect (no)"
    assert unavailable_reason(ValueError("boom")) is None


def test_the_error_is_its_own_root_not_a_ticket_error() -> None:
    error = DatabaseUnavailable("connection lost (x)")
    assert not isinstance(error, TicketError)  # routes answer TicketError with 409; this is a 503
    assert str(error) == "the ticket database is unavailable: connection lost (x)" and error.reason.startswith("conn")


def test_sqlite_locked_by_another_process_past_the_busy_timeout(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'edgewatch.db'}"
    migrate(url)
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    other = sqlite3.connect(tmp_path / "edgewatch.db", isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    engine = create_engine_for(url)
    try:
        with pytest.raises(DatabaseUnavailable, match="database is locked") as caught, engine.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)  # the driver's error, kept
        other.execute("ROLLBACK")
        with engine.begin() as conn:  # the lock released: the same engine works again
            assert conn.exec_driver_sql("SELECT count(*) FROM tickets").scalar() == 0
    finally:
        other.close()
        engine.dispose()


def test_sqlite_errors_about_the_statement_stay_sqlalchemys(tmp_path: Path) -> None:
    path = tmp_path / "edgewatch.db"
    migrate(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        sqlite3.connect(path, timeout=0).execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as busy:
        assert unavailable_reason(busy) == "database is locked"
    finally:
        holder.close()
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        with pytest.raises(sa.exc.OperationalError, match="no such table"), engine.begin() as conn:
            conn.exec_driver_sql("SELECT * FROM no_such_table")
    finally:
        engine.dispose()


def test_a_refused_connection_is_unavailable() -> None:
    engine = create_engine_for(f"postgresql://nobody@127.0.0.1:{free_port()}/none",
                               connect_args={"connect_timeout": 2})
    try:
        with pytest.raises(DatabaseUnavailable, match="cannot connect"), engine.connect():
            pass
    finally:
        engine.dispose()


def test_statement_errors_are_not_translated(engine: Engine) -> None:
    with pytest.raises(sa.exc.DBAPIError) as caught, engine.begin() as conn:
        conn.exec_driver_sql("SELECT * FROM no_such_table")
    assert not isinstance(caught.value, DatabaseUnavailable)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO customers (id, name) VALUES (1, 'a')")
        conn.exec_driver_sql("INSERT INTO customers (id, name) VALUES (1, 'b')")


@pytest.mark.postgres
def test_a_connection_the_server_drops_is_unavailable_and_the_pool_recovers(
    postgres_server: services.Postgres,
) -> None:
    engine = create_engine_for(postgres_server.url)
    admin = create_engine_for(postgres_server.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with admin.connect() as a:
                a.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
            with pytest.raises(DatabaseUnavailable) as caught:
                conn.exec_driver_sql("SELECT 1")
            assert "connection lost" in caught.value.reason or "57P01" in caught.value.reason
        with engine.connect() as conn:  # the next checkout gets a fresh connection
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()
        admin.dispose()
