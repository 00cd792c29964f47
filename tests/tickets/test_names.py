"""Any name works: idempotency keys are built from ids, names travel only in the text."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import rows
from tests.tickets.test_service import transition
from tickets import outbox
from tickets.clock import ManualClock
from tickets.errors import MessageNotWritten
from tickets.models import OutboxMessage, StaffGroup, StaffMember, Ticket
from tickets.notify.message import Notification
from tickets.service import TicketService

NAMES = ["王芳", "Li Na (senior)", "Zoë 🚀 on call", "王" * 190 + "Li Na (Sr)"]
KEY = re.compile(r"[!-~]{1,200}")


def _red(sessions: sessionmaker[Session], service: TicketService) -> int:
    with sessions.begin() as s:
        ticket = service.on_transition(s, transition("raised", "red", 95.0))
        assert ticket is not None
        return ticket.id


def _dispatched(s: Session, tid: int) -> list[OutboxMessage]:
    return [m for m in rows(s, OutboxMessage, ticket_id=tid, event="ticket_dispatched") if ".assigned." in
            m.idempotency_key]


@pytest.mark.parametrize("name", NAMES, ids=["chinese", "parentheses", "emoji", "200-characters"])
def test_a_name_that_is_no_staff_member_reaches_the_group_intact(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int], name: str
) -> None:
    assert len(name) <= 200
    tid = _red(sessions, service)
    with sessions.begin() as s:
        service.dispatch(s, tid, "desk", assignee=name)
    with sessions() as s:
        (row,) = _dispatched(s, tid)
        assert row.status == "pending" and row.last_error is None
        assert row.address == "senior@desk.test"
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        assert KEY.fullmatch(row.idempotency_key) and row.idempotency_key.endswith(f".n{digest}.s{row.recipient_id}")
        message = Notification.from_dict(row.payload)
        assert f"Assignee: {name}." in message.text and message.data["assignee"] == name
        assert s.get_one(Ticket, tid).assignee == name


@pytest.mark.parametrize("name", NAMES, ids=["chinese", "parentheses", "emoji", "200-characters"])
def test_a_staff_member_with_any_name_is_told_on_their_own_channel(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int], name: str
) -> None:
    with sessions.begin() as s:
        group = s.query(StaffGroup).filter_by(level="senior").one()
        member = StaffMember(group_id=group.id, name=name, channel="webhook", address="http://127.0.0.1:9/member")
        s.add(member)
        s.flush()
        member_id = member.id
    tid = _red(sessions, service)
    with sessions.begin() as s:
        service.dispatch(s, tid, "desk", assignee=name)
    with sessions() as s:
        (row,) = _dispatched(s, tid)
        assert (row.status, row.recipient_kind, row.recipient_id) == ("pending", "staff_member", member_id)
        assert row.recipient_name == name and row.address == "http://127.0.0.1:9/member"
        assert row.idempotency_key.endswith(f".assigned.{int(row.created_at.timestamp())}.m{member_id}.m{member_id}")
        assert f"Assignee: {name}." in Notification.from_dict(row.payload).text


def test_different_names_in_the_same_second_are_different_messages(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    tid = _red(sessions, service)
    with sessions.begin() as s:
        for name in NAMES:
            service.dispatch(s, tid, "desk", assignee=name)
    with sessions() as s:
        told = _dispatched(s, tid)
        assert len({m.idempotency_key for m in told}) == len(NAMES)
        assert all(m.status == "pending" for m in told)
        assert [m.payload["data"]["assignee"] for m in told] == NAMES


def test_assignee_tags_are_ids_or_digests(sessions: sessionmaker[Session], fleet: dict[str, int]) -> None:
    with sessions() as s:
        wang = s.query(StaffMember).filter_by(name="wang").one()
        assert outbox.assignee_tag(s, "wang") == f"m{wang.id}"
        assert outbox.assignee_tag(s, None) == outbox.assignee_tag(s, "") == "group"
        for name in NAMES:
            tag = outbox.assignee_tag(s, name)
            assert re.fullmatch(r"n[0-9a-f]{12}", tag) and tag == outbox.assignee_tag(s, name)


def test_refusing_unrenderable_raises_instead_of_keeping_a_failed_row(
    sessions: sessionmaker[Session], service: TicketService, fleet: dict[str, int]
) -> None:
    tid = _red(sessions, service)
    with sessions() as s:
        ticket = s.get_one(Ticket, tid)
        recipient = outbox.Recipient("staff_group", 1, "seniors", "email", "senior@desk.test")
        with outbox.refusing_unrenderable(), pytest.raises(MessageNotWritten) as caught:
            outbox.enqueue(s, ticket, "ticket_escalated", {"ticket_id": tid}, [recipient], key="bad", at=ticket.opened_at)
        assert str(caught.value) == (
            f"ticket {tid}: the ticket_escalated message to seniors (email) cannot be written: "
            "ticket_escalated: the fact 'device_id' is missing; nothing was changed")
        # Outside the block the old behaviour holds: the row is kept as failed, with the reason.
        [row] = outbox.enqueue(s, ticket, "ticket_escalated", {"ticket_id": tid}, [recipient], key="bad",
                               at=ticket.opened_at)
        assert row.status == "failed"
        s.rollback()


def test_a_staff_member_and_a_group_with_the_same_id_are_both_warned(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    # Staff groups and staff members are numbered apart: member 3 and group 3 must not share a key.
    with sessions.begin() as s:
        senior = s.query(StaffGroup).filter_by(level="senior").one()
        member = None
        for n in range(10):
            member = StaffMember(group_id=senior.id, name=f"engineer {n}", channel="email",
                                 address=f"engineer{n}@desk.test")
            s.add(member)
            s.flush()
            if member.id == senior.id:
                break
        assert member is not None and member.id == senior.id
        name, address = member.name, member.address
    tid = _red(sessions, service)
    with sessions.begin() as s:
        service.dispatch(s, tid, "desk", assignee=name)
        on_site = next(c for c in s.get_one(Ticket, tid).clocks if c.name == "on_site")
        on_site_id = on_site.id
    clock.advance(30 * 60)  # half of the on-site hour: the first warning
    with sessions.begin() as s:
        service.fire_clock(s, on_site_id)
    with sessions() as s:
        warned = rows(s, OutboxMessage, ticket_id=tid, event="sla_warning")
        assert sorted(m.address for m in warned) == sorted([address, "senior@desk.test"])
        assert len({m.idempotency_key for m in warned}) == 2
