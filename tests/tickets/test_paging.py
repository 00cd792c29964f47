"""Who is paged, with staff managed through `tickets.staff`: a red ticket pages the red team's on-call
member first, the whole team at the next escalation step, the supervisors on a breach; a team
without a rota (or whose on-call member has no channel) is paged whole; dispatching by staff id
reaches the member on their own channel; a rename follows the member onto open tickets; a
decommissioned device gets no offline ticket. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import rows
from tests.tickets.test_clocks import _fire_due, _open
from tickets import registry, staff
from tickets.clock import ManualClock
from tickets.errors import Conflict, InvalidInput
from tickets.models import AuditEntry, OutboxMessage, Ticket
from tickets.service import TicketService

ADMIN = "admin token 1"


def _team(sessions: sessionmaker[Session], clock: ManualClock, *, rota: bool = True) -> dict[str, int]:
    at = clock.now()
    with sessions.begin() as s:
        ids = {}
        for name, email in (("王芳", "wangfang@desk.test"), ("Li Na", "lina@desk.test"), ("Zoë", "zoe@desk.test")):
            ids[name] = staff.create_member(s, {"name": name, "email": email}, actor=ADMIN, at=at).id
        ids["boss"] = staff.create_member(s, {"name": "Chen Jie", "role": "supervisor", "email": "chen@desk.test"},
                                          actor=ADMIN, at=at).id
        members = [ids["王芳"], ids["Li Na"], ids["Zoë"]]
        fields: dict[str, object] = {"name": "Red response", "level": "red", "member_ids": members}
        if rota:
            # 王芳 this week (from an hour ago), Li Na the next.
            fields["rota"] = {"member_ids": members, "starts_at": (at - timedelta(hours=1)).isoformat(),
                              "timezone": "Asia/Shanghai"}
        ids["team"] = staff.create_group(s, fields, actor=ADMIN, at=at).id
    return ids


def _told(sessions: sessionmaker[Session], tid: int, event: str = "ticket_dispatched") -> list[str]:
    with sessions() as s:
        return [m.recipient_name or "" for m in rows(s, OutboxMessage, ticket_id=tid, event=event)]


def test_on_call_first_then_the_team_then_the_supervisors(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    _team(sessions, clock)
    tid = _open(sessions, service, "red")
    opened = _told(sessions, tid)
    assert "王芳" in opened and "Li Na" not in opened and "Zoë" not in opened
    assert "senior engineers" in opened  # the escalation tier's group channel, as before
    with sessions() as s:
        (page,) = [m for m in rows(s, OutboxMessage, ticket_id=tid) if m.recipient_name == "王芳"]
        assert page.address == "wangfang@desk.test" and page.recipient_kind == "staff_member"
        assert "You are on call for the Red response: please acknowledge." in page.payload["text"]
        assert f"http://desk.example.test/tickets/{tid}" in page.payload["text"]

    clock.advance(timedelta(minutes=5))  # the red first response (5 min) breaches: supervisors told
    _fire_due(sessions, service)
    breach = _told(sessions, tid, "sla_breached")
    assert "Chen Jie" in breach and "王芳" in breach and "Li Na" not in breach

    clock.advance(timedelta(minutes=5))  # 10 min unacknowledged: the escalation step pages the whole team
    _fire_due(sessions, service)
    assert {"王芳", "Li Na", "Zoë", "Chen Jie"} <= set(_told(sessions, tid))


def test_a_team_without_rota_is_paged_whole_and_dispatch_by_id_reaches_the_member(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    ids = _team(sessions, clock, rota=False)
    tid = _open(sessions, service, "red")
    assert {"王芳", "Li Na", "Zoë"} <= set(_told(sessions, tid))
    with sessions.begin() as s:
        name = staff.resolve_assignee(s, ids["Li Na"])
        service.dispatch(s, tid, ADMIN, "on site by noon", assignee=name)
    with sessions() as s:
        last = rows(s, OutboxMessage, ticket_id=tid, event="ticket_dispatched")[-1]
        assert (last.recipient_name, last.address) == ("Li Na", "lina@desk.test")
        assert "Assignee: Li Na." in last.payload["text"]
    with sessions.begin() as s:  # renamed: the open ticket follows, audited
        staff.update_member(s, ids["Li Na"], {"name": "李娜"}, actor=ADMIN, at=clock.now())
    with sessions() as s:
        assert s.get_one(Ticket, tid).assignee == "李娜"
        assert any(a.action == "staff_renamed" for a in rows(s, AuditEntry, ticket_id=tid))


def test_staff_rules(sessions: sessionmaker[Session], clock: ManualClock, fleet: dict[str, int]) -> None:
    ids = _team(sessions, clock)
    at = clock.now()
    with sessions() as s, pytest.raises(Conflict, match="exists already"):
        staff.create_member(s, {"name": "王芳"}, actor=ADMIN, at=at)
    with sessions() as s, pytest.raises(InvalidInput, match="address: 'not-a-mail' is not an e-mail address"):
        staff.create_member(s, {"name": "X", "channel": "email", "address": "not-a-mail"}, actor=ADMIN, at=at)
    with sessions() as s, pytest.raises(InvalidInput, match="member_ids"):
        staff.update_group(s, ids["team"], {"member_ids": [999]}, actor=ADMIN, at=at)
    with sessions() as s, pytest.raises(InvalidInput, match=r"rota: staff \d+ is not a member"):
        staff.update_group(s, ids["team"], {"rota": {"member_ids": [ids["boss"]], "starts_at": at.isoformat()}},
                           actor=ADMIN, at=at)
    with sessions.begin() as s:  # leaving the group means leaving its rota
        group = staff.update_group(s, ids["team"], {"member_ids": [ids["Li Na"], ids["Zoë"]]}, actor=ADMIN, at=at)
        assert group.rota is not None and group.rota["member_ids"] == [ids["Li Na"], ids["Zoë"]]
        assert [m.name for m in staff.on_call(group, at, 2)] == ["Li Na", "Zoë"]
    with sessions.begin() as s:
        staff.delete_member(s, ids["Zoë"], actor=ADMIN, at=at)
    with sessions() as s:
        group = staff.get_group(s, ids["team"])
        assert [m.member_id for m in group.memberships] == [ids["Li Na"]]
        assert group.rota is not None and group.rota["member_ids"] == [ids["Li Na"]]
        entries = rows(s, AuditEntry, entity="staff")
        assert {e.action for e in entries} >= {"create", "delete"}
        # sealed values never reach the audit trail
        assert not any("wangfang@desk.test" in str(e.new_value) for e in entries)


def test_a_decommissioned_device_gets_no_offline_ticket(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    with sessions.begin() as s:
        registry.update(s, "gw-0001", {"decommissioned": True}, actor=ADMIN, at=clock.now())
    with sessions.begin() as s:
        assert service.on_device_offline(s, "gw-0001", datetime(2026, 1, 5, tzinfo=UTC)) is None
        assert service.on_device_offline(s, "rt-0002", datetime(2026, 1, 5, tzinfo=UTC)) is not None
