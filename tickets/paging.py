"""Who of the staff is paged for a ticket besides its escalation tier's group channel.

- A ticket's **response teams** are the staff groups whose `level` is the ticket's level (red, yellow,
  blue). When the ticket opens (or is escalated to the team's level), each team's **on-call member**
  is paged on their own channel; a team without a rota, or whose on-call member cannot be reached
  (inactive, no channel), is paged whole. Still unacknowledged at the next escalation step, the
  **whole team** is paged: its group channel and every active member's own channel.
- **Supervisors** (active staff of role supervisor) are paged on an SLA breach and when the
  escalation chain reaches its `supervisor` step.

Recipients only: the callers (`tickets.opening`, `tickets.firing`, `tickets.actions`) write the
messages through the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tickets import oncall, prefetch
from tickets.models import StaffGroup, StaffGroupMember, StaffMember, StaffRole
from tickets.outbox import GROUP, MEMBER, Recipient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    """The people one team's message goes to, and who of them is on call (None: the whole team)."""

    team: StaffGroup
    recipients: list[Recipient]
    on_call: str | None


def member_recipient(member: StaffMember) -> Recipient | None:
    if not member.active or not member.channel or not member.address:
        return None
    return Recipient(MEMBER, member.id, member.name, member.channel, member.address)


def teams(session: Session, level: str | None) -> list[StaffGroup]:
    """The response teams of a ticket level, with their members loaded."""
    if level is None:
        return []
    return list(prefetch.memo(session, ("teams", level), lambda: list(session.scalars(
        select(StaffGroup).where(StaffGroup.level == level).order_by(StaffGroup.id)
        .options(selectinload(StaffGroup.memberships).selectinload(StaffGroupMember.member))))))


def whole(team: StaffGroup) -> list[Recipient]:
    """The team's group channel (when it has one) and every active member's own channel."""
    out = [Recipient(GROUP, team.id, team.name, team.channel, team.address)] if team.channel and team.address else []
    out += [r for m in team.memberships if (r := member_recipient(m.member)) is not None]
    return out


def on_call_member(team: StaffGroup, at: datetime) -> StaffMember | None:
    """The team member on call at `at` by its rota (None: no rota, nobody on call, or a rota that
    no longer reads, which is logged)."""
    try:
        rota = oncall.load(team.rota)
    except oncall.RotaError as exc:
        logger.warning("staff group %s: its rota cannot be read (%s); paging the whole group", team.id, exc)
        return None
    shift = rota.on_call(at) if rota is not None else None
    if shift is None:
        return None
    return next((m.member for m in team.memberships if m.member_id == shift.member_id), None)


def first_pages(session: Session, level: str | None, at: datetime) -> Iterator[Page]:
    """For each team of the level: its on-call member if reachable, else the whole team."""
    for team in teams(session, level):
        member = on_call_member(team, at)
        reached = member_recipient(member) if member is not None else None
        if reached is not None:
            yield Page(team, [reached], reached.name)
        else:
            yield Page(team, whole(team), None)


def first_recipients(session: Session, level: str | None, at: datetime) -> list[Recipient]:
    """Everyone `first_pages` reaches, in one list."""
    return [r for page in first_pages(session, level, at) for r in page.recipients]


def whole_teams(session: Session, level: str | None) -> list[Recipient]:
    return [r for team in teams(session, level) for r in whole(team)]


def supervisors(session: Session) -> list[Recipient]:
    """Every active supervisor on their own channel."""
    rows = session.scalars(select(StaffMember).where(StaffMember.role == StaffRole.SUPERVISOR.value,
                                                     StaffMember.active.is_(True)).order_by(StaffMember.id))
    return [r for m in rows if (r := member_recipient(m)) is not None]
