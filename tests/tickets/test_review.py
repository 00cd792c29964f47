"""Quality review: late and incomplete tickets, the monthly sample, overdue clocks, fault statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.test_service import transition
from tickets import review
from tickets.clock import ManualClock
from tickets.service import TicketService


def _closed_ticket(sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, metric: str,
                   hours: float, *, complete: bool) -> int:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "orange", 71.0, metric=metric))
        assert ticket is not None
        tid = ticket.id
        if complete:
            service.update(s, tid, "desk", {"first_judgement": "fan", "assignee": "wang"})
        else:
            service.update(s, tid, "desk", {"contact_name": ""})
        service.start(s, tid, "wang")
    clock.advance(timedelta(hours=hours))
    with sessions.begin() as s:
        service.resolve(s, tid, "wang")
        service.close(s, tid, "desk")
    return tid


def test_late_and_incomplete_tickets_are_flagged(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    start = clock.now()
    on_time = _closed_ticket(sessions, service, clock, "cpu_percent", 20, complete=True)  # committed: 24 h
    late = _closed_ticket(sessions, service, clock, "mem_percent", 30, complete=True)  # 25 % past
    sloppy = _closed_ticket(sessions, service, clock, "latency_ms", 1, complete=False)
    with sessions() as s:
        flags = {f.ticket_id: f for f in review.flagged(s, start, clock.now() + timedelta(seconds=1))}
    assert on_time not in flags
    assert flags[late].reasons == ("closed 25% past its committed time",)
    assert flags[sloppy].missing == ("first_judgement", "contact_name", "assignee")
    assert flags[sloppy].reasons == ("missing 3 key fields: first_judgement, contact_name, assignee",)


def test_monthly_sample_is_ten_percent_and_reproducible(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    clock.set(datetime(2026, 2, 3, 8, 0, tzinfo=UTC))
    ids = []
    for n in range(11):
        ids.append(_closed_ticket(sessions, service, clock, f"m{n}", 0.1, complete=True))
    with sessions() as s:
        sample = review.monthly_sample(s, 2026, 2)
        assert len(sample) == 2 and set(sample) <= set(ids)  # 10 % of 11, rounded up
        assert review.monthly_sample(s, 2026, 2) == sample
        assert review.monthly_sample(s, 2026, 3) == []
        report = review.monthly_report(s, 2026, 2)
        assert report.opened == 11 and report.by_kind == {"pre_maintenance": 11}
        assert report.top_devices == [("gw-0001", 11)] and report.by_device_class == {"gateway": 11}


def test_overdue_lists_breached_clocks(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    start = clock.now()
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "red", 95.0))
        assert ticket is not None
        first = next(c for c in ticket.clocks if c.name == "first_response")
    clock.advance(timedelta(minutes=6))
    with sessions.begin() as s:
        service.fire_clock(s, first.id)
    clock.advance(timedelta(minutes=4))
    with sessions.begin() as s:
        service.acknowledge(s, ticket.id, "desk")
    with sessions() as s:
        [late] = review.overdue(s, start, clock.now(), clock.now())
    assert (late.ticket_id, late.clock, late.late_s) == (ticket.id, "first_response", 300.0)
