"""What happens when a clock's instant comes: a warning, a breach, or the next escalation step.

Called by the scheduler's job with the clock id. The clock row is the truth: it is re-read and
locked, so a clock stopped meanwhile (by the server, in another process) does nothing, and a job
that fires twice (two schedulers, a restart) finds nothing left to do the second time.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets import audit, outbox, paging, sla
from tickets.core import Context, facts
from tickets.lifecycle import is_open
from tickets.models import Clock as ClockRow
from tickets.models import StaffLevel, Ticket
from tickets.policy import ESCALATION

logger = logging.getLogger(__name__)

SYSTEM = "sla"


def fire(ctx: Context, session: Session, clock_id: int) -> datetime | None:
    """Do what is due on this clock now; returns the clock's next instant (None: nothing left)."""
    clock = session.scalars(select(ClockRow).where(ClockRow.id == clock_id).with_for_update()).one_or_none()
    if clock is None or clock.next_fire_at is None:
        return None
    now = ctx.now()
    if clock.next_fire_at > now:
        return clock.next_fire_at  # moved later since it was scheduled: wait for the new instant
    ticket = session.scalars(select(Ticket).where(Ticket.id == clock.ticket_id).with_for_update()).one()
    if clock.name == ESCALATION:
        return _escalation_step(ctx, session, ticket, clock, now)
    due = clock.due_at
    step = sla.step(sla.decode(clock.warn_at), clock.warnings_sent, due,
                    done=clock.stopped_at is not None or clock.breached_at is not None, now=now)
    clock.warnings_sent = step.warnings_sent
    clock.next_fire_at = step.next_fire_at
    if step.warn is not None:
        index = step.warnings_sent
        told = facts(ctx, session, ticket, clock=clock.name, due_at=due.isoformat())
        recipients = outbox.staff_member(session, ticket.assignee) + outbox.staff_group(session, ticket.engineer_level)
        if not ticket.assignee:  # nobody owns it yet: whoever of the response teams was paged first
            recipients += paging.first_recipients(session, ticket.level, now)
        outbox.enqueue(session, ticket, "sla_warning", told, recipients, key=f"warn.{clock.name}.{index}", at=now,
                       locale=ctx.locale)
        audit.record(session, ticket, actor=SYSTEM, action="sla_warning", at=now, field=f"clocks.{clock.name}",
                     new=f"warning {index} of {len(clock.warn_at)}", reason=f"due at {due.isoformat()}")
    if step.breach:
        _breach(ctx, session, ticket, clock, now)
    return clock.next_fire_at


def _breach(ctx: Context, session: Session, ticket: Ticket, clock: ClockRow, now: datetime) -> None:
    """The deadline passed: record it, raise the priority, tell the supervisors and the owners."""
    # The breach happened at the due instant; `now` (when it was noticed) is the audit time.
    clock.breached_at = clock.due_at
    reason = f"{clock.name} deadline {clock.due_at.isoformat()} passed"
    audit.record(session, ticket, actor=SYSTEM, action="sla_breached", at=now, field=f"clocks.{clock.name}.breached_at",
                 new=clock.due_at, reason=reason)
    if is_open(ticket.status):
        audit.change(session, ticket, "priority", max(0, ticket.priority - 1), actor=SYSTEM, action="sla_breached",
                     at=now, reason=reason)
        audit.change(session, ticket, "escalated", True, actor=SYSTEM, action="sla_breached", at=now, reason=reason)
    told = facts(ctx, session, ticket, clock=clock.name, due_at=clock.due_at.isoformat())
    recipients = (outbox.staff_group(session, StaffLevel.SUPERVISOR.value)
                  + paging.supervisors(session)
                  + outbox.staff_member(session, ticket.assignee)
                  + outbox.staff_group(session, ticket.engineer_level)
                  + paging.first_recipients(session, ticket.level, now))
    outbox.enqueue(session, ticket, "sla_breached", told, recipients, key=f"breach.{clock.name}", at=now,
                   locale=ctx.locale)


def _escalation_step(ctx: Context, session: Session, ticket: Ticket, clock: ClockRow, now: datetime) -> datetime | None:
    """Still unacknowledged: tell the next group of the chain, and come back after `escalation_every`."""
    chain = ctx.policy.escalation_chain[ticket.level]
    if ticket.acknowledged_at is not None or not is_open(ticket.status) or clock.stopped_at is not None:
        clock.next_fire_at = None
        return None
    step = min(ticket.escalation_step + 1, len(chain) - 1)
    group = chain[step]
    waited = now - ticket.opened_at
    note = (f"not acknowledged after {int(waited.total_seconds() // 60)} min: escalated to the {group} group"
            f" (step {step + 1} of {len(chain)})")
    audit.change(session, ticket, "escalation_step", step, actor=SYSTEM, action="escalation", at=now, reason=note)
    told = facts(ctx, session, ticket, group=group, note=note)
    recipients = outbox.staff_group(session, group) + outbox.staff_group(session, ticket.engineer_level)
    # The response teams' on-call members were paged at the start: now the whole teams are.
    recipients += paging.whole_teams(session, ticket.level)
    if group == StaffLevel.SUPERVISOR:
        recipients += paging.supervisors(session)
    outbox.enqueue(session, ticket, "ticket_dispatched", told, recipients,
                   key=f"escalation.{int(clock.due_at.timestamp())}", at=now, locale=ctx.locale)
    if step == len(chain) - 1:
        clock.stopped_at = now  # the whole chain has been told; the SLA breaches speak from here on
        clock.next_fire_at = None
        return None
    clock.due_at = now + ctx.policy.escalation_every
    clock.next_fire_at = clock.due_at
    return clock.next_fire_at
