"""The collector's seam and the lifecycle, on SQLite and PostgreSQL (the contract suite)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import rules
from tests.tickets.conftest import rows
from tickets.clock import ManualClock
from tickets.errors import IllegalTransition, InvalidInput, TicketNotFound
from tickets.models import AuditEntry, Clock, OutboxMessage, Ticket, TicketNote
from tickets.service import TicketService


def transition(event: str, severity: str, value: float, *, metric: str = "cpu_percent", seq: int = 3,
               device: str = "gw-0001") -> rules.Transition:
    return rules.Transition(
        event=rules.Event(event), severity=rules.Severity(severity), device_id=device, metric=metric,
        seq=seq, ts=1767603600.0 + seq * 10, value=value, threshold=60.0, red_level=90.0,
    )


def clocks(ticket: Ticket) -> dict[str, Clock]:
    return {c.name: c for c in ticket.clocks}


def test_orange_opens_a_pre_maintenance_ticket_with_yellow_clocks(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    opened = clock.now()
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "orange", 71.0), recent=[(1.0, 65.0), (2.0, 71.0)])
        assert ticket is not None
        ticket_id = ticket.id
    with sessions() as s:
        t = s.get_one(Ticket, ticket_id)
        assert (t.kind, t.level, t.severity, t.status, t.metric) == ("pre_maintenance", "yellow", "orange",
                                                                      "received", "cpu_percent")
        assert t.open_key == "gw-0001/cpu_percent"
        assert t.customer_id == fleet["customer"] and t.contact_name == "Li Wei"
        assert t.engineer_level == "mid" and t.priority == 2
        assert "cpu_percent on gw-0001 was 71" in t.description and "Recent samples" in t.description
        assert t.details is not None and t.details["recent"] == [[1.0, 65.0], [2.0, 71.0]]
        c = clocks(t)
        assert c["first_response"].due_at == opened + timedelta(minutes=15)
        assert c["pre_maintenance_start"].due_at == opened + timedelta(hours=2)
        assert c["dispatch"].due_at == opened + timedelta(hours=2)
        assert c["resolution"].due_at == opened + timedelta(hours=24) == t.committed_at
        assert "on_site" not in c and "rca" not in c
        # Warnings at 50 % and 75 %, and 1 h before when the clock is longer than an hour.
        pre = c["pre_maintenance_start"]
        assert pre.warn_at == [(opened + timedelta(hours=1)).isoformat(), (opened + timedelta(minutes=90)).isoformat()]
        assert pre.next_fire_at == opened + timedelta(hours=1)
        # Orange is not pushed to the customer; the mid-level group is told.
        out = rows(s, OutboxMessage, ticket_id=ticket_id)
        assert [(m.event, m.address) for m in out] == [("ticket_dispatched", "mid@desk.test")]
        assert rows(s, AuditEntry, ticket_id=ticket_id)[0].action == "opened"


def test_red_opens_on_site_ticket_and_tells_the_ops_contacts_at_once(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    opened = clock.now()
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "red", 95.0, seq=1))
        assert ticket is not None
        ticket_id = ticket.id
    with sessions() as s:
        t = s.get_one(Ticket, ticket_id)
        assert (t.kind, t.level, t.severity, t.engineer_level, t.priority) == ("on_site", "red", "red", "senior", 1)
        c = clocks(t)
        assert c["first_response"].due_at == opened + timedelta(minutes=5)
        assert c["on_site"].due_at == opened + timedelta(hours=1)
        assert c["rca"].due_at == opened + timedelta(hours=48)
        assert c["rca"].warn_at[-1] == (opened + timedelta(hours=47)).isoformat()
        out = {(m.event, m.address) for m in rows(s, OutboxMessage, ticket_id=ticket_id)}
        assert out == {("ticket_opened", "ops@acme.test"), ("ticket_opened", "http://127.0.0.1:9/hook"),
                       ("ticket_dispatched", "senior@desk.test")}
        # (addresses are sealed at rest: matched after reading, not in SQL)
        [opened_mail] = [m for m in rows(s, OutboxMessage) if m.address == "ops@acme.test"]
        assert opened_mail.payload["subject"].startswith("[edgewatch] RED: gw-0001 cpu_percent 95%")
        assert opened_mail.idempotency_key == f"t{ticket_id}.opened.c1"
        assert "secret" not in str(opened_mail.payload)


def test_escalation_upgrades_the_open_ticket_to_stricter_clocks(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "orange", 71.0))
        assert ticket is not None
        ticket_id = ticket.id
    clock.advance(timedelta(minutes=3))
    escalated_at = clock.now()
    with sessions.begin() as s:
        again = service.on_transition(s, transition("escalated", "red", 96.0, seq=4))
        assert again is not None and again.id == ticket_id
    with sessions() as s:
        t = s.get_one(Ticket, ticket_id)
        assert (t.kind, t.level, t.severity, t.priority, t.engineer_level) == ("on_site", "red", "red", 1, "senior")
        c = clocks(t)
        first = c["first_response"]
        assert first.due_at == escalated_at + timedelta(minutes=5)
        assert first.original_due_at == escalated_at - timedelta(minutes=3) + timedelta(minutes=15)
        assert c["on_site"].due_at == escalated_at + timedelta(hours=1)
        assert t.committed_at == escalated_at + timedelta(hours=8)
        changes = {(a.field, a.old_value, a.new_value) for a in rows(s, AuditEntry, ticket_id=ticket_id)
                   if a.action == "escalated"}
        assert ("level", "yellow", "red") in changes and ("kind", "pre_maintenance", "on_site") in changes
        events = sorted((m.event, m.address) for m in rows(s, OutboxMessage, ticket_id=ticket_id))
        assert ("ticket_escalated", "ops@acme.test") in events
        assert ("ticket_escalated", "senior@desk.test") in events


def test_clear_adds_a_note_and_tells_the_same_recipients(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "red", 95.0))
        assert ticket is not None
        ticket_id = ticket.id
    with sessions.begin() as s:
        service.on_transition(s, transition("cleared", "red", 40.0, seq=9))
    with sessions() as s:
        t = s.get_one(Ticket, ticket_id)
        assert t.status == "received"  # an engineer resolves it; the clear is information
        assert [n.text for n in rows(s, TicketNote, ticket_id=ticket_id)] == [
            "red alert on cpu_percent cleared at value 40 (seq 9)"]
        told = {m.address for m in rows(s, OutboxMessage, ticket_id=ticket_id) if m.event != "alert_cleared"}
        recovered = {m.address for m in rows(s, OutboxMessage, ticket_id=ticket_id, event="alert_cleared")}
        assert recovered == told


def test_cleared_without_an_open_ticket_does_nothing(sessions: sessionmaker[Session], service: TicketService,
                                                     fleet: dict[str, int]) -> None:
    with sessions.begin() as s:
        assert service.on_transition(s, transition("cleared", "orange", 40.0)) is None
        assert rows(s, Ticket) == []


def test_one_open_ticket_per_device_and_metric_until_resolved(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        first = service.on_transition(s, transition("raised", "orange", 71.0))
        again = service.on_transition(s, transition("raised", "orange", 72.0, seq=20))
        other = service.on_transition(s, transition("raised", "orange", 300.0, metric="latency_ms"))
        assert first is not None and again is not None and other is not None
        assert again.id == first.id != other.id
        first_id = first.id
    with sessions.begin() as s:
        for action in ("start", "resolve"):
            service.perform(s, first_id, action, "wang")
    with sessions.begin() as s:
        later = service.on_transition(s, transition("raised", "orange", 75.0, seq=40))
        assert later is not None and later.id != first_id
        assert s.get_one(Ticket, first_id).open_key is None


def test_offline_and_back_online(sessions: sessionmaker[Session], service: TicketService, clock: ManualClock,
                                 fleet: dict[str, int]) -> None:
    since = clock.now() - timedelta(minutes=2)
    with sessions.begin() as s:
        ticket = service.on_device_offline(s, "gw-0001", since)
        assert ticket is not None
        assert (ticket.kind, ticket.level, ticket.severity, ticket.open_key) == ("offline", "yellow", None,
                                                                                  "gw-0001/offline")
        assert service.on_device_offline(s, "gw-0001", since) is ticket
        ticket_id = ticket.id
    with sessions.begin() as s:
        back = service.on_device_online(s, "gw-0001", clock.now())
        assert back is not None and back.id == ticket_id
        assert service.on_device_online(s, "rt-0002", clock.now()) is None
    with sessions() as s:
        assert "back online" in rows(s, TicketNote, ticket_id=ticket_id)[0].text
        assert {m.event for m in rows(s, OutboxMessage, ticket_id=ticket_id)} == {"ticket_dispatched", "alert_cleared"}


def test_unknown_device_gets_registered_with_its_ticket(sessions: sessionmaker[Session], service: TicketService) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "red", 99.0, device="new-7"))
        assert ticket is not None and ticket.device_id == "new-7" and ticket.customer_id is None


def test_lifecycle_walk_with_audit_and_clock_stops(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "red", 95.0))
        assert ticket is not None
        tid = ticket.id
    steps = [("acknowledge", {}), ("dispatch", {"assignee": "wang"}), ("check_in", {"note": "on site, rack 3"}),
             ("resolve", {"note": "fan replaced"}), ("close", {})]
    for action, kwargs in steps:
        clock.advance(60)
        with sessions.begin() as s:
            service.perform(s, tid, action, "desk", **kwargs)
    with sessions() as s:
        t = s.get_one(Ticket, tid)
        assert t.status == "closed" and t.assignee == "wang" and t.open_key is None
        c = clocks(t)
        assert c["first_response"].stopped_at == t.acknowledged_at
        assert c["on_site"].stopped_at == t.on_site_at
        assert c["rca"].stopped_at is None  # still owed
        statuses = [(a.old_value, a.new_value) for a in rows(s, AuditEntry, ticket_id=tid) if a.field == "status"]
        assert statuses == [(None, "received"), ("received", "dispatched"), ("dispatched", "in_progress"),
                            ("in_progress", "resolved"), ("resolved", "closed")]
        assert all(a.actor in ("desk", "collector") for a in rows(s, AuditEntry, ticket_id=tid))
        survey = rows(s, OutboxMessage, ticket_id=tid, event="satisfaction_request")
        assert {m.address for m in survey} == {"ops@acme.test", "http://127.0.0.1:9/hook"}
        assert "http://desk.example.test/survey/" in survey[0].payload["text"]
        dispatched = [m for m in rows(s, OutboxMessage, ticket_id=tid, event="ticket_dispatched")
                      if m.address == "wang@desk.test"]
        assert len(dispatched) == 1


@pytest.mark.parametrize(
    ("walk", "action", "needs"),
    [([], "resolve", "in_progress"), ([], "close", "resolved"), (["cancel"], "start", "received"),
     (["start", "resolve", "close"], "cancel", "received")],
)
def test_illegal_transitions_are_refused_and_change_nothing(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int],
    walk: list[str], action: str, needs: str,
) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "orange", 71.0))
        assert ticket is not None
        tid = ticket.id
        for step in walk:
            service.perform(s, tid, step, "desk")
    with sessions() as s:
        before = (s.get_one(Ticket, tid).status, len(rows(s, AuditEntry, ticket_id=tid)))
        with pytest.raises(IllegalTransition, match=f"cannot {action}.*needs status.*{needs}"):
            service.perform(s, tid, action, "desk")
        s.rollback()
        assert (s.get_one(Ticket, tid).status, len(rows(s, AuditEntry, ticket_id=tid))) == before


def test_acknowledge_twice_and_missing_ticket(sessions: sessionmaker[Session], service: TicketService,
                                              fleet: dict[str, int]) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "orange", 71.0))
        assert ticket is not None
        service.acknowledge(s, ticket.id, "desk")
        with pytest.raises(IllegalTransition, match="already acknowledged"):
            service.acknowledge(s, ticket.id, "desk")
        with pytest.raises(TicketNotFound, match="ticket 999 does not exist"):
            service.acknowledge(s, 999, "desk")


def test_rca_rating_and_service_recovery(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "red", 95.0))
        assert ticket is not None
        tid = ticket.id
        with pytest.raises(InvalidInput, match=r"rca\.responsibility"):
            service.attach_rca(s, tid, "wang", {"symptom": "CPU 95 %", "investigation": "runaway process"})
        service.attach_rca(s, tid, "wang", {"symptom": "CPU 95 %", "investigation": "runaway logger",
                                            "responsibility": "vendor firmware", "actions": ["patched", "monitor"]})
        with pytest.raises(IllegalTransition, match="only a closed ticket"):
            service.rate(s, tid, "customer", 2)
        for action in ("start", "resolve", "close"):
            service.perform(s, tid, action, "wang")
        with pytest.raises(InvalidInput, match="rating: must be a whole number from 1 to 5"):
            service.rate(s, tid, "customer", 7)
        service.rate(s, tid, "customer", 2, "took too long")
        with pytest.raises(IllegalTransition, match="already rated"):
            service.rate(s, tid, "customer", 5)
    with sessions() as s:
        t = s.get_one(Ticket, tid)
        assert t.rca is not None and t.rca["actions"] == ["patched", "monitor"]
        assert clocks(t)["rca"].stopped_at == t.rca_at
        rca_mail = rows(s, OutboxMessage, ticket_id=tid, event="rca_report")
        assert [m.address for m in rca_mail] == ["tech@acme.test"]
        assert "Responsibility:\nvendor firmware" in rca_mail[0].payload["text"]
        follow = s.scalars(select(Ticket).where(Ticket.follow_up_of_id == tid)).one()
        assert (follow.kind, follow.level, follow.status) == ("service_recovery", "yellow", "received")
        assert "took too long" in follow.description


def test_survey_link_rates_the_ticket(sessions: sessionmaker[Session], service: TicketService,
                                      fleet: dict[str, int]) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "red", 95.0))
        assert ticket is not None
        tid = ticket.id
        for action in ("start", "resolve", "close"):
            service.perform(s, tid, action, "wang")
        link = rows(s, OutboxMessage, ticket_id=tid, event="satisfaction_request")[0].payload["data"]["links"]["rating"]
        token = link.rsplit("/", 1)[1]
        with pytest.raises(TicketNotFound, match="survey link is unknown"):
            service.rate_by_token(s, "nope", 5)
        rated = service.rate_by_token(s, token, 5)
        assert rated.id == tid and rated.rating == 5
        assert s.scalars(select(Ticket).where(Ticket.follow_up_of_id == tid)).first() is None


def test_update_fields_is_audited_and_checked(sessions: sessionmaker[Session], service: TicketService,
                                              fleet: dict[str, int]) -> None:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "orange", 71.0))
        assert ticket is not None
        service.update(s, ticket.id, "desk", {"first_judgement": "fan failure likely"}, reason="phone call")
        with pytest.raises(InvalidInput, match="status: cannot be edited"):
            service.update(s, ticket.id, "desk", {"status": "closed"})
        entry = next(a for a in rows(s, AuditEntry, ticket_id=ticket.id) if a.field == "first_judgement")
        assert (entry.old_value, entry.new_value, entry.actor, entry.reason) == (
            None, "fan failure likely", "desk", "phone call")


def test_the_delivery_worker_is_woken_only_by_a_commit_that_wrote_notifications(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    woken: list[int] = []
    service.use_outbox_wakeup(lambda: woken.append(1))
    try:
        with sessions.begin() as s:
            service.on_transition(s, transition("raised", "red", 95.0, seq=1))
        service.after_commit()
        assert woken == [1]
        with sessions.begin() as s:  # a batch without ticket changes (most of the collector's)
            s.get(Ticket, 1)
        service.after_commit()
        assert woken == [1]
        with sessions.begin() as s:
            service.on_transition(s, transition("raised", "red", 96.0, seq=1, device="gw-0002"))
            s.flush()
            s.rollback()
        service.after_rollback()
        service.after_commit()  # nothing of the rolled-back rows is left to deliver
        assert woken == [1]
    finally:
        service.use_outbox_wakeup(None)
