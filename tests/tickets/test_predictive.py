"""Predictive warnings as tickets, on SQLite and PostgreSQL (the contract suite)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

import rules
from rules.predict import Change, PredictiveEvent, Reason, WarningKind
from tests.tickets.conftest import rows
from tickets.clock import ManualClock
from tickets.models import AuditEntry, OutboxMessage, Ticket, TicketNote
from tickets.service import TicketService

T0 = 1767603600.0


def raised(metric: str = "mem_percent", device: str = "gw-0001") -> PredictiveEvent:
    # Its sentence: "{metric} on {device} forecast to pass 60 % in about 3 h (± 20 min); now 50.5 %,
    # rising 3 % per hour".
    return PredictiveEvent(
        Change.RAISED, WarningKind.TREND, device, metric, T0, 50.5, 60.0, expected_at=T0 + 3 * 3600,
        uncertainty=1200.0, confidence=0.82, score=0.1, horizon=6 * 3600.0, rise_per_hour=3.0,
    )


def withdrawn(reason: Reason, metric: str = "mem_percent", device: str = "gw-0001") -> PredictiveEvent:
    return PredictiveEvent(Change.WITHDRAWN, WarningKind.TREND, device, metric, T0 + 600, 48.0, 60.0,
                           reason=reason, horizon=6 * 3600.0)


def test_raised_opens_a_blue_predictive_ticket_for_the_junior_group(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    opened = clock.now()
    with sessions.begin() as s:
        ticket = service.on_predictive(s, raised())
        assert ticket is not None
        ticket_id = ticket.id
    with sessions() as s:
        t = s.get_one(Ticket, ticket_id)
        assert (t.kind, t.level, t.severity, t.status, t.metric) == ("predictive", "blue", None, "received",
                                                                      "mem_percent")
        assert t.open_key == "gw-0001/mem_percent/predictive"
        assert t.title.startswith("mem_percent on gw-0001 forecast to pass 60 % in about 3 h")
        assert t.title == ("mem_percent on gw-0001 forecast to pass 60 % in about 3 h (± 20 min); now 50.5 %, "
                           "rising 3 % per hour")
        assert "confidence 82%" in t.description and "orange threshold 60" in t.description
        assert t.details is not None and t.details["expected_at"] == T0 + 3 * 3600 and t.details["kind"] == "trend"
        assert t.details["message"] == t.title
        assert t.engineer_level == "junior" and t.priority == 3 and t.customer_id == fleet["customer"]
        clocks = {c.name: c for c in t.clocks}
        assert clocks["first_response"].due_at == opened + timedelta(minutes=30)
        assert "pre_maintenance_start" not in clocks and "on_site" not in clocks
        out = rows(s, OutboxMessage, ticket_id=ticket_id)
        assert [(m.event, m.address) for m in out] == [("ticket_dispatched", "junior@desk.test")]
        assert next(a.action for a in rows(s, AuditEntry, ticket_id=ticket_id)) == "opened"


def test_it_never_blocks_the_orange_ticket_and_is_never_opened_twice(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        first = service.on_predictive(s, raised())
        again = service.on_predictive(s, raised())
        orange = service.on_transition(s, rules.Transition(
            rules.Event.RAISED, rules.Severity.ORANGE, "gw-0001", "mem_percent", 9, T0 + 900, 61.0, 60.0, 90.0))
        assert first is not None and again is not None and orange is not None
        assert first.id == again.id != orange.id
        assert orange.kind == "pre_maintenance"
        notes = [n.text for n in rows(s, TicketNote, ticket_id=first.id)]
        assert notes and notes[0].startswith("warning raised again")


def test_withdrawn_by_the_alert_closes_it_with_a_note_naming_the_orange_ticket(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        predictive = service.on_predictive(s, raised())
        assert predictive is not None
        pid = predictive.id
    clock.advance(timedelta(hours=2))
    with sessions.begin() as s:
        orange = service.on_transition(s, rules.Transition(
            rules.Event.RAISED, rules.Severity.ORANGE, "gw-0001", "mem_percent", 9, T0 + 900, 61.0, 60.0, 90.0))
        closed = service.on_predictive(s, withdrawn(Reason.ALERT))
        assert orange is not None and closed is not None and closed.id == pid
        oid = orange.id
    with sessions() as s:
        t = s.get_one(Ticket, pid)
        assert (t.status, t.open_key) == ("closed", None)
        assert t.closed_at == clock.now() and t.resolved_at == clock.now()
        assert t.details is not None and t.details["superseded_by"] == oid
        assert t.details["withdrawn"]["reason"] == "alert"
        note = rows(s, TicketNote, ticket_id=pid)[-1].text
        assert "alert" in note and f"ticket {oid} (pre_maintenance) carries the work" in note
        assert all(c.stopped_at is not None for c in t.clocks)
        changed = {(a.field, a.new_value) for a in rows(s, AuditEntry, ticket_id=pid) if a.action == "close"}
        assert ("status", "closed") in changed and ("open_key", None) in changed
        # The orange ticket is untouched, and no survey is sent for a withdrawn warning.
        assert s.get_one(Ticket, oid).status == "received"
        assert not [m for m in rows(s, OutboxMessage, ticket_id=pid) if m.event == "rating_request"]


def test_trend_reversed_closes_it_and_a_later_warning_opens_a_new_ticket(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        first = service.on_predictive(s, raised())
        assert first is not None
        closed = service.on_predictive(s, withdrawn(Reason.TREND_REVERSED))
        assert closed is not None and closed.id == first.id and closed.status == "closed"
        assert rows(s, TicketNote, ticket_id=first.id)[-1].text == (
            "mem_percent on gw-0001: trend reversed, no longer forecast to pass 60 % within 6 h; now 48 %")
        later = service.on_predictive(s, raised())
        assert later is not None and later.id != first.id and later.status == "received"


def test_withdrawn_without_an_open_ticket_does_nothing(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        assert service.on_predictive(s, withdrawn(Reason.BACK_TO_NORMAL)) is None
        assert rows(s, Ticket) == []
