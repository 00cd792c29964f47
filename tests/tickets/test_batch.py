"""The collector's batch of ticket changes (`TicketService.on_transitions`) against the per-change calls.

The same sequence of changes is applied one change at a time (each in its savepoint, as the
collector did before) to one database and as one batch to a twin database of the same backend;
the tickets, clocks, notes, audit entries and outbox messages must come out the same. Then the
cases the batch has to get right on its own: another process opening the same ticket meanwhile,
a change that fails, and a database that fails mid-batch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import rules
from rules.predict import Change as WarningChange
from rules.predict import PredictiveEvent, WarningKind
from tests.tickets.conftest import _pg_database, rows
from tickets.batch import Alert, Change, Offline, Online
from tickets.clock import ManualClock
from tickets.db import create_engine_for, migrate, session_factory
from tickets.errors import DatabaseUnavailable
from tickets.models import (
    AuditEntry,
    Clock,
    Contact,
    Customer,
    Device,
    OutboxMessage,
    StaffGroup,
    StaffMember,
    Ticket,
    TicketNote,
)
from tickets.service import TicketService

T0 = 1_764_072_000.0


def alert(event: str, severity: str, device: str, value: float, seq: int, metric: str = "cpu_percent") -> Alert:
    t = rules.Transition(rules.Event(event), rules.Severity(severity), device, metric, seq, T0 + seq, value, 60.0, 90.0)
    return Alert(t, [(T0 + seq - 1, value - 1), (T0 + seq, value)])


def warning(change: str, device: str, seq: int) -> PredictiveEvent:
    return PredictiveEvent(WarningChange(change), WarningKind.TREND, device, "mem_percent", T0 + seq, 55.0, 60.0,
                           expected_at=T0 + seq + 3600, uncertainty=600.0, confidence=0.8, score=0.1)


def sequence() -> list[Change]:
    """Everything the collector hands over, with the awkward cases in one batch."""
    at = datetime.fromtimestamp(T0, UTC)
    return [
        alert("raised", "orange", "gw-0001", 71.0, 3),
        alert("escalated", "red", "gw-0001", 95.0, 4),       # the same ticket, upgraded in the batch
        alert("raised", "red", "rt-0002", 95.0, 1, "latency_ms"),
        alert("cleared", "red", "gw-0001", 40.0, 9),         # told to everyone told of the opening
        alert("raised", "red", "gw-0001", 96.0, 12),         # back again: recurred on the open ticket
        alert("raised", "orange", "new-0003", 70.0, 3),      # a device the registry does not know yet
        warning("raised", "gw-0001", 5),
        alert("cleared", "orange", "gw-9999", 30.0, 4),      # no ticket open: nothing happens
        warning("withdrawn", "gw-0001", 8),
        Offline("rt-0002", at),
        Online("rt-0002", at + timedelta(minutes=5)),
        Offline("gw-0001", at + timedelta(minutes=6)),
    ]


def populate(sessions: sessionmaker[Session]) -> None:
    """A customer with ops contacts, the staff groups, a red response team with an on-call rota."""
    with sessions.begin() as s:
        acme = Customer(name="Acme Water")
        s.add(acme)
        s.flush()
        s.add_all([
            Contact(customer_id=acme.id, name="Li Wei", channel="email", address="ops@acme.test", role="ops"),
            Contact(customer_id=acme.id, name="Acme robot", channel="webhook", address="http://127.0.0.1:9/hook",
                    role="ops"),
        ])
        for level in ("junior", "mid", "senior", "supervisor"):
            s.add(StaffGroup(name=f"{level} engineers", level=level, channel="email", address=f"{level}@desk.test"))
        team = StaffGroup(name="red team", level="red", channel="email", address="red@desk.test")
        s.add(team)
        s.flush()
        s.add(StaffMember(group_id=team.id, name="wang", channel="email", address="wang@desk.test"))
        s.add(Device(id="gw-0001", device_class="gateway", customer_id=acme.id, state="online", name="Pump house"))
        s.add(Device(id="rt-0002", device_class="router", customer_id=acme.id, state="online"))


SKIP = {"id", "updated_at"}  # updated_at: the per-change path's later UPDATEs stamp the wall clock


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for model in (Ticket, Clock, TicketNote, AuditEntry, OutboxMessage, Device):
            table: Any = model.__table__
            if model is Device:
                keep = [table.c.id, table.c.customer_id, table.c.state]
            else:
                keep = [c for c in table.c if c.name not in SKIP]
                # SQL NULL and JSON's null read back alike: which one was written is compared too.
                keep += [c.is_(None).label(f"{c.name} is NULL") for c in table.c if isinstance(c.type, sa.JSON)]
            out[table.name] = [dict(r._mapping) for r in conn.execute(sa.select(*keep).order_by(table.c.id))]
    return out


@pytest.fixture
def twin(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A second freshly migrated database on the same backend as `engine`."""
    if db_url.startswith("sqlite"):
        engine = create_engine_for(f"sqlite:///{tmp_path / 'twin.db'}")
        migrate(engine)
        yield engine
        engine.dispose()
        return
    url, admin = _pg_database(request.getfixturevalue("postgres_server"), "ew_template")
    engine = create_engine_for(url)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    admin.dispose()


def scheduled(service: TicketService, engine: Engine) -> list[tuple[str, str, str]]:
    """(ticket title, clock name, instant) of each clock the service would schedule after its commit,
    each one read back from the database by its id."""
    touched = service.ctx.take_touched()
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(Clock.id, Clock.name, Clock.next_fire_at, Ticket.title)
                                              .join(Ticket, Clock.ticket_id == Ticket.id))}
    out = []
    for clock_id, at in touched:
        row = rows[clock_id]
        assert row.next_fire_at == at, (row.name, row.title)
        out.append((row.title, row.name, str(at)))
    assert out, "no clock was scheduled"
    return sorted(out)


def one_at_a_time(service: TicketService, sessions: sessionmaker[Session], changes: Sequence[Change],
                  after_commit: bool = True) -> None:
    with sessions.begin() as s:
        for change in changes:
            with s.begin_nested():
                if isinstance(change, Alert):
                    service.on_transition(s, change.transition, change.recent)
                elif isinstance(change, Offline):
                    service.on_device_offline(s, change.device_id, change.since)
                elif isinstance(change, Online):
                    service.on_device_online(s, change.device_id, change.at)
                else:
                    service.on_predictive(s, change)
    if after_commit:
        service.after_commit()


def test_the_batch_gives_the_same_tickets_clocks_notes_audit_and_messages(
    engine: Engine, twin: Engine, clock: ManualClock
) -> None:
    single, batched = session_factory(engine), session_factory(twin)
    populate(single)
    populate(batched)
    one_by_one = TicketService(clock=clock)
    one_at_a_time(one_by_one, single, sequence(), after_commit=False)
    service = TicketService(clock=clock)
    with batched.begin() as s:
        tickets = service.on_transitions(s, sequence())
    assert [t is None for t in tickets] == [False] * 7 + [True] + [False] * 4

    expected, got = snapshot(engine), snapshot(twin)
    for table in expected:
        assert got[table] == expected[table], table
    # The clocks handed to the scheduler after the commit: the same clocks, at the same instants.
    assert scheduled(service, twin) == scheduled(one_by_one, engine)
    # What the sequence is about, so that "the same" is not "the same nothing".
    assert len(expected["tickets"]) == 6
    assert {r["event"] for r in expected["outbox"]} >= {"ticket_opened", "ticket_escalated", "alert_cleared",
                                                       "alert_recurred", "ticket_dispatched"}


def test_raised_escalated_and_cleared_in_one_batch_leave_one_red_ticket(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        service.on_transitions(s, [alert("raised", "orange", "gw-0001", 71.0, 3),
                                   alert("escalated", "red", "gw-0001", 95.0, 4),
                                   alert("cleared", "red", "gw-0001", 40.0, 9)])
    service.after_commit()
    with sessions() as s:
        [ticket] = rows(s, Ticket)
        assert (ticket.level, ticket.severity, ticket.kind, ticket.open_key) == ("red", "red", "on_site",
                                                                                 "gw-0001/cpu_percent")
        assert "cleared_at" in (ticket.details or {})
        assert any("cleared at value 40" in n.text for n in rows(s, TicketNote, ticket_id=ticket.id))
        events = [m.event for m in rows(s, OutboxMessage, ticket_id=ticket.id)]
        assert {"ticket_dispatched", "ticket_escalated", "alert_cleared"} <= set(events)
        # The recovery went to everyone told of the opening or the escalation, once each.
        told = {(m.channel, m.address) for m in rows(s, OutboxMessage, ticket_id=ticket.id)
                if m.event in ("ticket_dispatched", "ticket_opened", "ticket_escalated")}
        recovered = [(m.channel, m.address) for m in rows(s, OutboxMessage, ticket_id=ticket.id)
                     if m.event == "alert_cleared"]
        assert sorted(recovered) == sorted(told)
        clocks = {c.name: c for c in rows(s, Clock, ticket_id=ticket.id)}
        assert all(c.id is not None and c.due_at is not None for c in clocks.values())


def test_two_collectors_on_the_same_device_leave_exactly_one_open_ticket(
    engine: Engine, sessions: sessionmaker[Session], clock: ManualClock, fleet: dict[str, int]
) -> None:
    """The second collector reads the key with no ticket open; the first then opens and commits one.
    The second's insert is refused by the UNIQUE key and its batch is applied again one change at a
    time: it attaches to the first's ticket. (On SQLite the second waits for the first's write lock
    instead, so there the two run one after the other.)"""
    first, second = TicketService(clock=clock), TicketService(clock=clock)
    changes = [alert("raised", "red", "gw-0001", 95.0, 1), alert("raised", "orange", "rt-0002", 71.0, 3)]
    postgres = engine.dialect.name == "postgresql"
    fired = threading.Event()

    def first_commits_in_between(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not fired.is_set() and "FOR UPDATE" in statement and "open_key" in statement:
            fired.set()
            with sessions.begin() as other:
                first.on_transitions(other, changes[:1])
            first.after_commit()

    if postgres:
        event.listen(engine, "after_cursor_execute", first_commits_in_between)
    else:
        with sessions.begin() as s:
            first.on_transitions(s, changes[:1])
        first.after_commit()
    try:
        with sessions.begin() as s:
            attached = second.on_transitions(s, changes)
        second.after_commit()
    finally:
        if postgres:
            event.remove(engine, "after_cursor_execute", first_commits_in_between)
    assert fired.is_set() == postgres
    with sessions() as s:
        open_tickets = [t for t in rows(s, Ticket) if t.open_key == "gw-0001/cpu_percent"]
        assert len(open_tickets) == 1
        assert attached[0] is not None and attached[0].id == open_tickets[0].id
        assert len([t for t in rows(s, Ticket) if t.open_key == "rt-0002/cpu_percent"]) == 1
        # The first collector's messages only: the second attached without announcing it again.
        dispatched = rows(s, OutboxMessage, ticket_id=open_tickets[0].id, event="ticket_dispatched")
        assert len({m.idempotency_key for m in dispatched}) == len(dispatched) > 0


def test_a_change_that_fails_is_rolled_back_alone_and_reported(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    # Recent samples that are not numbers: the ticket's description cannot be written.
    unreadable: Any = [(T0, "high")]
    bad = Alert(alert("raised", "red", "gw-0001", 95.0, 1, "latency_ms").transition, unreadable)
    failed: list[tuple[int, str]] = []
    with sessions.begin() as s:
        tickets = service.on_transitions(
            s, [alert("raised", "red", "rt-0002", 95.0, 1), bad, alert("raised", "orange", "gw-0001", 71.0, 3)],
            lambda position, exc: failed.append((position, type(exc).__name__)))
    service.after_commit()
    assert failed == [(1, "ValueError")]
    assert tickets[0] is not None and tickets[1] is None and tickets[2] is not None
    with sessions() as s:
        assert sorted(t.open_key or "" for t in rows(s, Ticket)) == ["gw-0001/cpu_percent", "rt-0002/cpu_percent"]


def test_a_database_failing_mid_batch_commits_nothing_and_the_retry_writes_it_once(
    engine: Engine, sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    changes = [alert("raised", "red", f"dev-{n:03d}", 95.0, 1) for n in range(20)]
    inserts = 0

    def fail_on_the_outbox(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        nonlocal inserts
        if statement.startswith("INSERT INTO outbox"):
            inserts += 1
            raise DatabaseUnavailable("connection lost (the test cut it)")

    event.listen(engine, "before_cursor_execute", fail_on_the_outbox)
    try:
        with pytest.raises(DatabaseUnavailable), sessions.begin() as s:
            service.on_transitions(s, changes, lambda position, exc: pytest.fail(f"reported {position}: {exc}"))
    finally:
        event.remove(engine, "before_cursor_execute", fail_on_the_outbox)
    service.after_rollback()
    assert inserts == 1
    assert service.ctx.take_touched() == []
    with sessions() as s:
        assert rows(s, Ticket) == [] and rows(s, Clock) == [] and rows(s, AuditEntry) == []
    with sessions.begin() as s:
        service.on_transitions(s, changes)
    touched = service.ctx.take_touched()
    with sessions() as s:
        assert len(rows(s, Ticket)) == 20
        assert len(touched) == len(rows(s, Clock)) > 0
