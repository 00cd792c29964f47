"""More of the lifecycle: on-site check-in, cancel, dispatch notices, clock hand-over, render failures."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import rows
from tests.tickets.test_service import transition
from tickets import outbox
from tickets.clock import ManualClock
from tickets.errors import IllegalTransition, InvalidInput
from tickets.models import OutboxMessage, Ticket
from tickets.service import TicketService


class RecordingSink:
    def __init__(self) -> None:
        self.scheduled: list[tuple[int, datetime | None]] = []

    def schedule(self, clock_id: int, at: datetime | None) -> None:
        self.scheduled.append((clock_id, at))


def _red(sessions: sessionmaker[Session], service: TicketService) -> int:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "red", 95.0))
        assert ticket is not None
        return ticket.id


def test_check_in_stops_the_on_site_clock_once(sessions: sessionmaker[Session], service: TicketService,
                                               clock: ManualClock, fleet: dict[str, int]) -> None:
    tid = _red(sessions, service)
    clock.advance(40 * 60)
    with sessions.begin() as s:
        t = service.check_in(s, tid, "wang", note="on site")
        assert (t.status, t.on_site_at, t.started_at, t.acknowledged_at) == ("in_progress", clock.now(),
                                                                            clock.now(), clock.now())
        on_site = next(c for c in t.clocks if c.name == "on_site")
        assert on_site.stopped_at == clock.now() and on_site.breached_at is None
        with pytest.raises(IllegalTransition, match="already checked in"):
            service.check_in(s, tid, "wang")


def test_cancel_stops_every_clock_and_frees_the_key(sessions: sessionmaker[Session], service: TicketService,
                                                    fleet: dict[str, int]) -> None:
    tid = _red(sessions, service)
    with sessions.begin() as s:
        t = service.cancel(s, tid, "desk", note="false alarm: sensor replaced")
        assert t.open_key is None and all(c.stopped_at is not None for c in t.clocks)
        assert all(c.next_fire_at is None for c in t.clocks)
        with pytest.raises(IllegalTransition, match="cancelled: no root-cause report"):
            service.attach_rca(s, tid, "wang", {"symptom": "a", "investigation": "b", "responsibility": "c"})


def test_dispatch_without_a_known_engineer_tells_the_group(sessions: sessionmaker[Session], service: TicketService,
                                                           fleet: dict[str, int]) -> None:
    tid = _red(sessions, service)
    with sessions.begin() as s:
        service.dispatch(s, tid, "desk", assignee="contractor Liu")
        told = [m.address for m in rows(s, OutboxMessage, ticket_id=tid, event="ticket_dispatched")]
        assert told == ["senior@desk.test", "senior@desk.test"]  # on opening, and on dispatch
        with pytest.raises(InvalidInput, match="assignee: is 201 characters long"):
            service.dispatch(s, tid, "desk", assignee="x" * 201)


def test_after_commit_hands_over_only_this_threads_clocks(sessions: sessionmaker[Session], clock: ManualClock,
                                                          fleet: dict[str, int]) -> None:
    sink = RecordingSink()
    service = TicketService(clock=clock, scheduler=sink)
    other_opened, done = threading.Event(), threading.Event()

    def other_thread() -> None:
        with sessions() as s:
            service.on_transition(s, transition("raised", "red", 95.0, metric="mem_percent"))
            s.flush()
            other_opened.set()
            done.wait(5)
            s.rollback()
            service.after_rollback()

    worker = threading.Thread(target=other_thread)
    worker.start()
    other_opened.wait(5)
    try:
        # Another thread's clocks are not committed yet: this thread has nothing to hand over.
        service.after_commit()
        assert sink.scheduled == []
    finally:
        done.set()
        worker.join(5)
    tid = _red(sessions, service)
    service.after_commit()
    with sessions() as s:
        ids = {c.id for c in s.get_one(Ticket, tid).clocks}
    assert {cid for cid, _ in sink.scheduled} == ids


def test_a_message_that_cannot_be_rendered_is_kept_as_failed(sessions: sessionmaker[Session],
                                                             service: TicketService, clock: ManualClock,
                                                             fleet: dict[str, int]) -> None:
    tid = _red(sessions, service)
    with sessions.begin() as s:
        ticket = s.get_one(Ticket, tid)
        recipient = outbox.Recipient("contact", 1, "Li Wei", "email", "ops@acme.test")
        [row] = outbox.enqueue(s, ticket, "ticket_escalated", {"ticket_id": tid}, [recipient], key="bad",
                               at=clock.now())
        assert row.status == "failed" and "the fact 'device_id' is missing" in (row.last_error or "")
        # The same key again is the same message: no second row.
        assert outbox.enqueue(s, ticket, "ticket_escalated", {"ticket_id": tid}, [recipient], key="bad",
                              at=clock.now()) == []


def test_after_a_rollback_the_touched_clocks_are_forgotten_unread(sessions: sessionmaker[Session],
                                                                  service: TicketService,
                                                                  fleet: dict[str, int]) -> None:
    """A batch rolled back because the database went away: forgetting its clocks must not read them
    (they are expired, and reading one would go to the database that just failed)."""
    with sessions.begin() as s:
        service.on_transition(s, transition("raised", "orange", 71.0))
    service.after_commit()
    session = sessions()
    service.on_transition(session, transition("escalated", "red", 95.0, seq=4))  # moves the stored clocks
    session.flush()
    session.rollback()
    session.close()  # the clocks are now expired and detached: reading their id would raise
    service.after_rollback()
    sink = RecordingSink()
    service.use_scheduler(sink)
    service.after_commit()
    assert sink.scheduled == []
