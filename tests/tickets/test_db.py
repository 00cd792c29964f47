"""The database layer: migrations, append-only guards, UTC times, and the one-open-ticket rule
holding across concurrent sessions (two collectors racing) on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import rows
from tests.tickets.test_service import transition
from tickets.clock import ManualClock
from tickets.db import DatabaseError, alembic_config, create_engine_for, default_database_url, migrate
from tickets.errors import DatabaseUnavailable
from tickets.models import AuditEntry, Device, Ticket, TicketNote
from tickets.service import TicketService


def test_migrate_is_idempotent_and_reaches_head(engine: Engine) -> None:
    migrate(engine)
    migrate(engine)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
    tables = set(sa.inspect(engine).get_table_names())
    assert {"tickets", "clocks", "audit_entries", "outbox", "devices", "rule_states", "dead_letters",
            "api_tokens", "settings", "customers", "contacts", "staff_groups", "staff_members"} <= tables


def test_migrations_go_down_and_up_again(engine: Engine) -> None:
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert "tickets" not in sa.inspect(engine).get_table_names()
    migrate(engine)
    assert "scheduled_for" not in {c["name"] for c in sa.inspect(engine).get_columns("clocks")}


def test_migrate_accepts_a_url(tmp_path: Path) -> None:
    url = default_database_url(tmp_path / "data")
    assert url == f"sqlite:///{tmp_path / 'data' / 'edgewatch.db'}"
    migrate(url)
    engine = create_engine_for(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


@pytest.mark.parametrize(("url", "reason"), [("mysql://x/y", "unsupported backend 'mysql'"),
                                             ("not a url", "not a valid SQLAlchemy URL")])
def test_bad_database_urls_are_named(url: str, reason: str) -> None:
    with pytest.raises(DatabaseError, match=reason):
        create_engine_for(url)


def test_times_are_stored_and_read_as_utc(sessions: sessionmaker[Session]) -> None:
    beijing = timezone(timedelta(hours=8))
    seen = datetime(2026, 3, 1, 20, 30, tzinfo=beijing)
    with sessions.begin() as s:
        s.add(Device(id="gw-9", last_seen_at=seen))
    with sessions() as s:
        stored = s.get_one(Device, "gw-9").last_seen_at
        assert stored == seen and stored is not None and stored.utcoffset() == timedelta(0)
    with sessions() as s, pytest.raises(StatementError, match="naive datetime"):
        s.add(Device(id="gw-10", last_seen_at=datetime(2026, 3, 1, 12, 0)))
        s.flush()


def test_tickets_and_audit_rows_cannot_be_deleted_or_rewritten(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "red", 95.0))
        assert ticket is not None
        service.add_note(s, ticket.id, "desk", "called the customer")
    for statement in ("DELETE FROM tickets", "DELETE FROM audit_entries", "UPDATE audit_entries SET actor = 'x'",
                      "UPDATE ticket_notes SET text = 'x'", "DELETE FROM ticket_notes"):
        with sessions() as s, pytest.raises(DBAPIError, match="edgewatch keeps"):
            s.execute(sa.text(statement))
    with sessions() as s:
        assert len(rows(s, Ticket)) == 1 and rows(s, AuditEntry) and len(rows(s, TicketNote)) == 1


def test_the_database_refuses_a_second_open_ticket_for_the_same_key(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        s.add(Device(id="gw-1"))
        s.add(Ticket(device_id="gw-1", kind="on_site", level="red", priority=1, title="a", open_key="gw-1/cpu"))
    with sessions() as s, pytest.raises(IntegrityError):
        s.add(Ticket(device_id="gw-1", kind="on_site", level="red", priority=1, title="b", open_key="gw-1/cpu"))
        s.flush()
    with sessions.begin() as s:  # closed tickets (open_key NULL) are as many as history has
        for n in range(3):
            s.add(Ticket(device_id="gw-1", kind="on_site", level="red", priority=1, title=f"old {n}"))


def test_two_collectors_racing_on_one_device_and_metric_open_one_ticket(
    engine: Engine, sessions: sessionmaker[Session], clock: ManualClock, fleet: dict[str, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Collector A opens the ticket and holds its transaction; collector B, racing, must attach to it."""
    caplog.set_level("INFO", logger="tickets.opening")
    a_service, b_service = TicketService(clock=clock), TicketService(clock=clock)
    a_inserted, b_started, results = threading.Event(), threading.Event(), {}

    def collector_a() -> None:
        with sessions.begin() as s:
            ticket = a_service.on_transition(s, transition("raised", "orange", 71.0))
            assert ticket is not None
            results["a"] = ticket.id
            a_inserted.set()
            b_started.wait(5)
            threading.Event().wait(0.3)  # B is now blocked on A's row (PostgreSQL) or write lock (SQLite)

    def collector_b() -> None:
        a_inserted.wait(5)
        b_started.set()
        with sessions.begin() as s:
            ticket = b_service.on_transition(s, transition("raised", "red", 95.0, seq=4))
            assert ticket is not None
            results["b"] = ticket.id

    threads = [threading.Thread(target=collector_a), threading.Thread(target=collector_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not any(t.is_alive() for t in threads)
    assert results["a"] == results["b"]
    with sessions() as s:
        [ticket] = rows(s, Ticket)
        # B's red attached to A's orange ticket and escalated it instead of opening a second one.
        assert (ticket.open_key, ticket.level, ticket.kind) == ("gw-0001/cpu_percent", "red", "on_site")
    if engine.dialect.name == "postgresql":
        # B's insert really collided with A's (SQLite's write lock makes B wait before it looks).
        assert "opened concurrently by another process" in caplog.text


def test_sqlite_writer_queue_is_first_come_first_served_and_survives_timeouts() -> None:
    from tickets.db import _WriterQueue

    queue = _WriterQueue()
    queue.acquire(1)
    queue.acquire(1)  # re-entrant for the holding thread
    order: list[str] = []
    started = {name: threading.Event() for name in "BC"}

    def writer(name: str) -> None:
        started[name].set()
        queue.acquire(5)
        order.append(name)
        queue.release()

    b = threading.Thread(target=writer, args=("B",))
    b.start()
    started["B"].wait(5)
    threading.Event().wait(0.05)  # B is queued before C
    c = threading.Thread(target=writer, args=("C",))
    c.start()
    started["C"].wait(5)
    with pytest.raises(DatabaseUnavailable, match="other writers of this process"):
        _acquire_elsewhere(queue, timeout=0.05)
    queue.release()
    queue.release()
    b.join(5)
    c.join(5)
    assert order == ["B", "C"]
    queue.acquire(0.1)  # the abandoned place in the queue was skipped
    queue.release()


def _acquire_elsewhere(queue: object, timeout: float) -> None:
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            queue.acquire(timeout)  # type: ignore[attr-defined]
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=attempt)
    t.start()
    t.join(5)
    if errors:
        raise errors[0]
