"""SLA clocks: the pure arithmetic, firing with an injected clock, and the real scheduler in real time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import rows
from tests.tickets.test_service import transition
from tickets import sla
from tickets.clock import ManualClock, SystemClock
from tickets.models import AuditEntry, Clock, OutboxMessage, Ticket
from tickets.policy import SlaPolicy
from tickets.scheduler import ClockScheduler
from tickets.service import TicketService

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


# ------------------------------------------------------------ pure


def test_plan_warns_at_fractions_and_an_hour_before_when_long_enough() -> None:
    rca = sla.plan("rca", T0, 48 * H, (0.5, 0.75), H)
    assert rca.due_at == T0 + 48 * H
    assert rca.warn_at == (T0 + 24 * H, T0 + 36 * H, T0 + 47 * H)
    two_hours = sla.plan("x", T0, 2 * H, (0.5, 0.75), H)  # 50 % is also "1 h before": one warning
    assert two_hours.warn_at == (T0 + H, T0 + 1.5 * H)
    short = sla.plan("x", T0, timedelta(minutes=5), (0.5, 0.75), H)
    assert short.warn_at == (T0 + timedelta(minutes=2.5), T0 + timedelta(minutes=3.75))


def test_step_sends_the_latest_owed_warning_then_breaches() -> None:
    warn = [T0 + H, T0 + 2 * H]
    due = T0 + 3 * H
    assert sla.step(warn, 0, due, done=False, now=T0) == sla.Step(None, 0, False, T0 + H)
    # Down for two hours: the two missed warnings become one, the latest.
    assert sla.step(warn, 0, due, done=False, now=T0 + 2.5 * H) == sla.Step(T0 + 2 * H, 2, False, due)
    assert sla.step(warn, 2, due, done=False, now=due) == sla.Step(None, 2, True, None)
    assert sla.step(warn, 0, due, done=False, now=due + H) == sla.Step(None, 2, True, None)
    assert sla.step(warn, 0, due, done=True, now=due) == sla.Step(None, 0, False, None)


def test_tightened_only_when_stricter() -> None:
    current = sla.plan("first_response", T0, timedelta(minutes=15))
    stricter = sla.tightened(current, T0 + timedelta(minutes=3), timedelta(minutes=5))
    assert stricter is not None and stricter.due_at == T0 + timedelta(minutes=8)
    assert sla.tightened(current, T0 + timedelta(minutes=12), timedelta(minutes=5)) is None
    assert sla.decode(sla.encode(stricter.warn_at)) == list(stricter.warn_at)


# ------------------------------------------------------------ firing with an injected clock


def _open(sessions: sessionmaker[Session], service: TicketService, severity: str = "red") -> int:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", severity, 95.0 if severity == "red" else 71.0))
        assert ticket is not None
        return ticket.id


def _fire_due(sessions: sessionmaker[Session], service: TicketService) -> int:
    """Fire every clock whose instant has come, as the scheduler would; returns how many fired."""
    fired = 0
    now = service.clock.now()
    with sessions() as s:
        due = [c.id for c in rows(s, Clock) if c.next_fire_at is not None and c.next_fire_at <= now]
    for clock_id in due:
        with sessions.begin() as s:
            service.fire_clock(s, clock_id)
        fired += 1
    return fired


def test_first_response_warns_then_breaches_and_escalates(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    tid = _open(sessions, service)
    clock.advance(timedelta(minutes=2, seconds=30))
    assert _fire_due(sessions, service) == 1
    with sessions() as s:
        warnings = rows(s, OutboxMessage, ticket_id=tid, event="sla_warning")
        assert [(m.address, m.payload["data"]["clock"]) for m in warnings] == [("senior@desk.test", "first_response")]
        assert "SLA WARNING: first response" in warnings[0].payload["subject"]
    clock.advance(timedelta(minutes=2, seconds=30))  # 5 min: the red first response is due
    _fire_due(sessions, service)
    with sessions() as s:
        t = s.get_one(Ticket, tid)
        first = next(c for c in t.clocks if c.name == "first_response")
        assert first.breached_at == first.due_at and first.next_fire_at is None
        assert t.priority == 0 and t.escalated
        breach = {m.address for m in rows(s, OutboxMessage, ticket_id=tid, event="sla_breached")}
        assert breach == {"supervisor@desk.test", "senior@desk.test"}
        assert any(a.action == "sla_breached" and a.field == "priority" for a in rows(s, AuditEntry, ticket_id=tid))
    # Firing again (a second scheduler, a restart) changes nothing.
    with sessions.begin() as s:
        assert service.fire_clock(s, first.id) is None
    with sessions() as s:
        assert len(rows(s, OutboxMessage, ticket_id=tid, event="sla_breached")) == 2


def test_a_clock_stopped_meanwhile_does_nothing_when_its_job_fires(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    tid = _open(sessions, service)
    with sessions.begin() as s:
        service.acknowledge(s, tid, "desk")
    clock.advance(timedelta(minutes=6))
    with sessions() as s:
        first = next(c for c in s.get_one(Ticket, tid).clocks if c.name == "first_response")
    with sessions.begin() as s:
        assert service.fire_clock(s, first.id) is None
    with sessions() as s:
        assert rows(s, OutboxMessage, ticket_id=tid, event="sla_breached") == []


def test_unacknowledged_ticket_walks_the_escalation_chain(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    tid = _open(sessions, service, "orange")  # yellow: mid → senior → supervisor, every 10 min
    told: list[set[str]] = []
    for _ in range(3):
        clock.advance(timedelta(minutes=10))
        _fire_due(sessions, service)
        with sessions() as s:
            told.append({m.address for m in rows(s, OutboxMessage, ticket_id=tid, event="ticket_dispatched")})
    assert told[0] == {"mid@desk.test", "senior@desk.test"}
    assert told[1] == told[0] | {"supervisor@desk.test"}
    with sessions() as s:
        t = s.get_one(Ticket, tid)
        assert t.escalation_step == 2
        escalation = next(c for c in t.clocks if c.name == "escalation")
        assert escalation.next_fire_at is None  # the whole chain has been told


# ------------------------------------------------------------ the real scheduler, in real time


def _wait(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(0.02)


def _fast_policy(first_response: float) -> SlaPolicy:
    seconds = timedelta(seconds=first_response)
    return SlaPolicy(first_response={"red": seconds, "yellow": seconds, "blue": seconds}, warn_fractions=(0.5,),
                     warn_before=None)


def _first_response(sessions: sessionmaker[Session], tid: int) -> Clock:
    with sessions() as s:
        return next(c for c in s.get_one(Ticket, tid).clocks if c.name == "first_response")


def test_a_clock_due_in_two_seconds_breaches_within_one_second_of_its_due_time(
    engine: Engine, sessions: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    service = TicketService(_fast_policy(2.0), SystemClock())
    with ClockScheduler(sessions, service, reconcile_every=60) as scheduler:
        tid = _open(sessions, service)
        service.after_commit()
        _wait(lambda: _first_response(sessions, tid).breached_at is not None, timeout=6)
        fired_at = datetime.now(UTC)
        first = _first_response(sessions, tid)
        assert fired_at - first.due_at < timedelta(seconds=1)
        lateness = [fired - due for due, fired in scheduler.firings]
        assert lateness and max(lateness) < timedelta(seconds=1)
        with sessions() as s:
            assert len(rows(s, OutboxMessage, ticket_id=tid, event="sla_warning")) == 1  # the senior group
    assert scheduler.errors == 0


def test_after_a_restart_missed_deadlines_fire_at_once(
    engine: Engine, sessions: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    service = TicketService(_fast_policy(0.5), SystemClock())
    tid = _open(sessions, service)  # no scheduler runs: the process is "down"
    time.sleep(0.8)
    started = time.monotonic()
    with ClockScheduler(sessions, service, reconcile_every=60):
        _wait(lambda: _first_response(sessions, tid).breached_at is not None, timeout=5)
    assert time.monotonic() - started < 2.0
    with sessions() as s:
        # The warning owed while down is folded into the breach: one breach message per recipient.
        assert rows(s, OutboxMessage, ticket_id=tid, event="sla_warning") == []
        assert len(rows(s, OutboxMessage, ticket_id=tid, event="sla_breached")) == 2


def test_clocks_created_by_another_process_are_reconciled(
    engine: Engine, sessions: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    hosting = TicketService(_fast_policy(60), SystemClock())
    elsewhere = TicketService(_fast_policy(1.0), SystemClock())  # e.g. the server: no scheduler
    with ClockScheduler(sessions, hosting, reconcile_every=0.3) as scheduler:
        tid = _open(sessions, elsewhere)
        elsewhere.after_commit()
        _wait(lambda: _first_response(sessions, tid).breached_at is not None, timeout=5)
        assert scheduler.pending() >= 1  # the ticket's other clocks wait for their instants


def test_a_restart_rebuilds_the_schedule_from_the_clocks_table(
    engine: Engine, sessions: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    service = TicketService(SlaPolicy(), SystemClock())
    with ClockScheduler(sessions, service, reconcile_every=3600) as first:
        _open(sessions, service)
        service.after_commit()
        assert first.pending() == 5  # first response, on site, RCA, resolution, escalation
        with sessions() as s:
            earliest = min(c.next_fire_at for c in rows(s, Clock) if c.next_fire_at is not None)
        assert first.next_due == earliest  # handed over by the commit: the sweep is armed for it
    with ClockScheduler(sessions, service, reconcile_every=3600) as second:
        assert second.pending() == 5 and second.next_due == earliest


def test_shutdown_while_clocks_fire_does_not_hang(
    engine: Engine, sessions: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    """APScheduler's shutdown holds its job store lock while waiting for running jobs, which
    themselves schedule their clock's next instant: the scheduler must not deadlock there."""
    import threading

    service = TicketService(_fast_policy(0.4), SystemClock())
    scheduler = ClockScheduler(sessions, service, reconcile_every=60, threads=4)
    scheduler.start()
    with sessions.begin() as s:
        for n in range(30):
            service.on_transition(s, transition("raised", "red", 95.0, metric=f"m{n}"))
    service.after_commit()
    time.sleep(0.25)  # the warnings (at 50 %) are firing now
    stopper = threading.Thread(target=scheduler.shutdown)
    stopper.start()
    stopper.join(20)
    assert not stopper.is_alive(), "shutdown hung"


def test_two_schedulers_on_one_database_fire_each_instant_once(
    engine: Engine, sessions: sessionmaker[Session], fleet: dict[str, int]
) -> None:
    """Two processes hosting a scheduler by mistake (or one restarting over another): the row
    lock and the instant re-read under it let each warning and breach happen once."""
    service = TicketService(_fast_policy(0.6), SystemClock())
    with ClockScheduler(sessions, service, reconcile_every=0.1), \
            ClockScheduler(sessions, TicketService(_fast_policy(0.6), SystemClock()), reconcile_every=0.1):
        tid = _open(sessions, service)
        service.after_commit()
        _wait(lambda: _first_response(sessions, tid).breached_at is not None, timeout=5)
        time.sleep(0.3)  # both sweep again
    with sessions() as s:
        assert len(rows(s, OutboxMessage, ticket_id=tid, event="sla_warning")) == 1  # the senior group
        assert len(rows(s, OutboxMessage, ticket_id=tid, event="sla_breached")) == 2
        breaches = [a for a in rows(s, AuditEntry, ticket_id=tid, action="sla_breached") if a.field == "priority"]
        assert len(breaches) == 1


def test_a_scheduler_can_run_once(engine: Engine, sessions: sessionmaker[Session]) -> None:
    scheduler = ClockScheduler(sessions, TicketService())
    with scheduler, pytest.raises(RuntimeError):
        scheduler.start()


def test_periodic_sweeps_log_at_debug_only(
    engine: Engine, sessions: sessionmaker[Session], fleet: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    service = TicketService(SlaPolicy(), SystemClock())
    with caplog.at_level(logging.DEBUG, logger="tickets.scheduler"):
        with ClockScheduler(sessions, service, reconcile_every=0.05):
            _open(sessions, service)
            service.after_commit()
            time.sleep(0.5)  # about ten sweeps
        ours = [r for r in caplog.records if r.name == "tickets.scheduler"]
        started = [r for r in ours if r.levelno >= logging.INFO]
        sweeps = [r for r in ours if "sweep done" in r.getMessage()]
    assert len(sweeps) >= 3 and all(r.levelno == logging.DEBUG for r in sweeps)
    assert [r.getMessage().split(":")[0] for r in started] == ["SLA clock scheduler"]  # the start, once
