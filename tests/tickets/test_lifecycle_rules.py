"""The lifecycle on real data, in the ticket domain on both backends: a ticket is not released while
its alert is active (unless forced, which re-arms the rule), a recurring alert is told again and owes
a first response again, escalation renames the ticket, the on-site clock is met only by a check-in,
ratings say who gave them, notes have a visibility, and tickets can be opened by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import rows
from tests.tickets.test_service import clocks, transition
from tickets.clock import ManualClock
from tickets.errors import AlertStillActive, IllegalTransition, InvalidInput
from tickets.models import AuditEntry, OutboxMessage, RuleRearm, RuleState, Ticket, TicketNote
from tickets.service import TicketService


def _alert(session: Session, severity: str | None, device: str = "gw-0001", metric: str = "cpu_percent") -> None:
    """What the collector stores after its rule engine raised (or cleared) the alert."""
    state = {"seq": 3, "instance": None, "device_class": "gateway",
             "metrics": {metric: [0, severity, 0]} if severity else {}}
    row = session.get(RuleState, device)
    if row is None:
        session.add(RuleState(device_id=device, state=state))
    else:
        row.state = state


def _open_red(sessions: sessionmaker[Session], service: TicketService) -> int:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "red", 95.0))
        assert ticket is not None
        _alert(s, "red")
        return ticket.id


def _in_progress(sessions: sessionmaker[Session], service: TicketService, tid: int) -> None:
    with sessions.begin() as s:
        service.check_in(s, tid, "wang")


@pytest.mark.parametrize("action", ["resolve", "cancel"])
def test_releasing_a_ticket_whose_alert_is_active_is_refused_naming_the_alert(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int], action: str
) -> None:
    tid = _open_red(sessions, service)
    _in_progress(sessions, service, tid)
    with sessions.begin() as s, pytest.raises(AlertStillActive) as refused:
        service.perform(s, tid, action, "wang", note="fixed?")
    assert "red alert on cpu_percent of gw-0001 is still active" in refused.value.reason
    assert '"force": true' in refused.value.reason
    with sessions.begin() as s:
        ticket = s.get(Ticket, tid)
        assert ticket is not None and ticket.status == "in_progress" and ticket.open_key == "gw-0001/cpu_percent"
        assert rows(s, RuleRearm) == []


def test_a_forced_resolve_needs_a_note_and_re_arms_the_rule(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    tid = _open_red(sessions, service)
    _in_progress(sessions, service, tid)
    with sessions.begin() as s, pytest.raises(InvalidInput, match="needs a note"):
        service.resolve(s, tid, "wang", force=True)
    with sessions.begin() as s:
        ticket = service.resolve(s, tid, "wang", note="sensor swapped, reading is wrong", force=True)
        assert ticket.status == "resolved" and ticket.open_key is None
    with sessions.begin() as s:
        [rearm] = rows(s, RuleRearm)
        assert (rearm.device_id, rearm.metric, rearm.ticket_id, rearm.requested_by) == (
            "gw-0001", "cpu_percent", tid, "wang")
        [forced] = rows(s, AuditEntry, ticket_id=tid, action="forced")
        assert forced.reason is not None and "sensor swapped" in forced.reason and "re-armed" in forced.reason
        # The re-arm pending, the alert counts as gone: closing is not refused.
        service.close(s, tid, "wang")


def _resolved_after_the_alert_cleared(sessions: sessionmaker[Session], service: TicketService) -> int:
    tid = _open_red(sessions, service)
    _in_progress(sessions, service, tid)
    with sessions.begin() as s:
        _alert(s, None)
        service.resolve(s, tid, "wang", note="fan replaced")
    return tid


def test_resolving_after_the_alert_cleared_needs_no_force(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    _resolved_after_the_alert_cleared(sessions, service)
    with sessions.begin() as s:
        assert rows(s, RuleRearm) == []


def test_closing_is_refused_only_while_no_other_ticket_carries_the_alert(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    tid = _resolved_after_the_alert_cleared(sessions, service)
    with sessions.begin() as s:
        _alert(s, "red")  # it came back before the ticket was closed, and nothing carries it
    with sessions.begin() as s, pytest.raises(AlertStillActive, match="cannot close"):
        service.close(s, tid, "wang")
    with sessions.begin() as s:
        newer = service.on_transition(s, transition("raised", "red", 97.0, seq=9))
        assert newer is not None and newer.id != tid
    with sessions.begin() as s:
        assert service.close(s, tid, "wang").status == "closed"


def test_a_recurring_alert_is_told_again_and_owes_a_first_response(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "orange", 71.0, seq=3))
        assert ticket is not None
        tid = ticket.id
    clock.advance(60)
    with sessions.begin() as s:
        service.acknowledge(s, tid, "li")
    with sessions.begin() as s:
        service.on_transition(s, transition("cleared", "orange", 40.0, seq=6))
    clock.advance(600)
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "orange", 75.0, seq=12))
        assert ticket is not None and ticket.id == tid
        first = clocks(ticket)["first_response"]
        assert first.stopped_at is None and first.started_at == clock.now()
        assert first.due_at == clock.now() + timedelta(minutes=15)
        assert ticket.details is not None and "cleared_at" not in ticket.details
        assert ticket.details["recurrences"] == 1
    with sessions.begin() as s:
        told = {(m.event, m.recipient_kind, m.recipient_id) for m in rows(s, OutboxMessage, ticket_id=tid)}
        recovered = {(k, i) for e, k, i in told if e == "alert_cleared"}
        recurred = {(k, i) for e, k, i in told if e == "alert_recurred"}
        assert recurred and recurred == recovered
        [message] = [m for m in rows(s, OutboxMessage, ticket_id=tid) if m.event == "alert_recurred"][:1]
        assert "RECURRED" in message.payload["subject"] and "75%" in message.payload["text"]
        [entry] = rows(s, AuditEntry, ticket_id=tid, action="recurred")
        assert entry.reason is not None and "again" in entry.reason
        # a second acknowledgement answers the recurrence; the first response time stays the first
        acknowledged_at = s.get(Ticket, tid).acknowledged_at  # type: ignore[union-attr]
        clock.advance(30)
        ticket = service.acknowledge(s, tid, "li")
        assert clocks(ticket)["first_response"].stopped_at == clock.now()
        assert ticket.acknowledged_at == acknowledged_at
        with pytest.raises(IllegalTransition, match="already acknowledged"):
            service.acknowledge(s, tid, "li")


def test_a_raise_that_never_cleared_is_a_note_not_a_recurrence(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "orange", 71.0, seq=3))
        assert ticket is not None
        tid = ticket.id
        service.on_transition(s, transition("raised", "orange", 72.0, seq=9))
    with sessions.begin() as s:
        assert [m for m in rows(s, OutboxMessage, ticket_id=tid) if m.event == "alert_recurred"] == []
        assert any("raised again" in n.text for n in rows(s, TicketNote, ticket_id=tid))


def test_escalation_renames_the_ticket_and_a_recurring_red_is_told_once(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "orange", 71.0, seq=3))
        assert ticket is not None and ticket.title.endswith("(pre-maintenance)")
        tid = ticket.id
        service.on_transition(s, transition("cleared", "orange", 40.0, seq=6))
        ticket = service.on_transition(s, transition("raised", "red", 96.0, seq=8))
        assert ticket is not None
        assert (ticket.kind, ticket.level, ticket.severity) == ("on_site", "red", "red")
        assert ticket.title == "gw-0001: cpu_percent 96 over threshold 60 (on-site service)"
    with sessions.begin() as s:
        events = [m.event for m in rows(s, OutboxMessage, ticket_id=tid)]
        assert "ticket_escalated" in events and "alert_recurred" not in events
        titles = [a for a in rows(s, AuditEntry, ticket_id=tid, action="escalated") if a.field == "title"]
        assert titles and titles[0].old_value.endswith("(pre-maintenance)")
        assert rows(s, AuditEntry, ticket_id=tid, action="recurred")


def test_an_edited_title_is_kept_and_marked_on_escalation(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "orange", 71.0))
        assert ticket is not None
        service.update(s, ticket.id, "li", {"title": "王芳: 水泵站网关 CPU 高"})
        ticket = service.on_transition(s, transition("escalated", "red", 96.0, seq=4))
        assert ticket is not None
        assert ticket.title == "[escalated to on-site service] 王芳: 水泵站网关 CPU 高"


def test_the_on_site_clock_is_met_only_by_a_check_in(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    tid = _open_red(sessions, service)
    with sessions.begin() as s:
        _alert(s, None)
        service.start(s, tid, "wang")
        clock.advance(20 * 60)
        ticket = service.resolve(s, tid, "wang", note="fixed remotely")
        on_site = clocks(ticket)["on_site"]
        assert on_site.breached_at == clock.now() and on_site.stopped_at == clock.now()
        assert rows(s, AuditEntry, ticket_id=tid, action="clock_breached")
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "red", 95.0, seq=20))
        assert ticket is not None
        checked = ticket.id
    with sessions.begin() as s:
        clock.advance(10 * 60)
        service.check_in(s, checked, "wang")
        ticket = service.resolve(s, checked, "wang")
        on_site = clocks(ticket)["on_site"]
        assert on_site.breached_at is None and on_site.stopped_at is not None


def _closed(sessions: sessionmaker[Session], service: TicketService) -> int:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "orange", 71.0))
        assert ticket is not None
        service.start(s, ticket.id, "li")
        service.resolve(s, ticket.id, "li")
        service.close(s, ticket.id, "li")
        return ticket.id


def test_a_staff_rating_is_marked_and_the_customer_may_still_give_their_own(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    tid = _closed(sessions, service)
    with sessions.begin() as s:
        ticket = service.rate(s, tid, "desk", 5, "they said it was fine", source="staff")
        assert (ticket.rating, ticket.rating_source) == (5, "staff")
        with pytest.raises(IllegalTransition, match="already rated 5 by staff"):
            service.rate(s, tid, "desk", 4, source="staff")
    with sessions.begin() as s:
        ticket = service.rate(s, tid, "customer token 3", 2, "slow", source="customer")
        assert (ticket.rating, ticket.rating_source) == (2, "customer")
        with pytest.raises(IllegalTransition, match="already rated 2 by the customer"):
            service.rate(s, tid, "customer token 3", 5, source="customer")
        with pytest.raises(IllegalTransition, match="by the customer"):
            service.rate(s, tid, "desk", 5, source="staff")
        with pytest.raises(InvalidInput, match="source"):
            service.rate(s, tid, "desk", 5, source="boss")


def test_notes_carry_their_visibility(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    tid = _open_red(sessions, service)
    with sessions.begin() as s:
        service.add_note(s, tid, "wang", "customer's cabinet key is at the gate")
        service.add_note(s, tid, "wang", "An engineer is on the way.", visibility="public")
        with pytest.raises(InvalidInput, match="visibility"):
            service.add_note(s, tid, "wang", "x", visibility="secret")
    with sessions.begin() as s:
        notes = {n.text: n.visibility for n in rows(s, TicketNote, ticket_id=tid)}
        assert notes["customer's cabinet key is at the gate"] == "internal"
        assert notes["An engineer is on the way."] == "public"


def test_a_manual_ticket_runs_the_clocks_of_its_level(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        ticket = service.open_manual(s, "gw-0001", "Li Na (senior): 机柜门锁坏了 🔧", "red", "supervisor token 2",
                                     note="reported by phone")
        assert (ticket.kind, ticket.level, ticket.severity, ticket.metric) == ("manual", "red", None, None)
        assert set(clocks(ticket)) == {"first_response", "on_site", "rca", "resolution", "escalation"}
        assert clocks(ticket)["first_response"].due_at == clock.now() + timedelta(minutes=5)
        assert ticket.customer_id == fleet["customer"]
        second = service.open_manual(s, "gw-0001", "another", "blue", "supervisor token 2")
        assert second.id != ticket.id and clocks(second)["first_response"].due_at == clock.now() + timedelta(minutes=30)
        # the red level reaches the customer's ops contacts at once
        assert {m.event for m in rows(s, OutboxMessage, ticket_id=ticket.id)} >= {"ticket_opened"}
        # no alert of its own: it can be resolved whatever the device's state
        _alert(s, "red")
        service.start(s, ticket.id, "wang")
        assert service.resolve(s, ticket.id, "wang").status == "resolved"
    with sessions.begin() as s:
        for device, title, level, field in (("nope", "t", "red", "device_id"), ("gw-0001", "  ", "red", "title"),
                                            ("gw-0001", "t", "purple", "level")):
            with pytest.raises(InvalidInput, match=field):
                service.open_manual(s, device, title, level, "supervisor token 2")
