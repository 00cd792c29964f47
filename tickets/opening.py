"""Tickets from alerts: open on raised, upgrade on escalated, note and tell on cleared; offline too.

An alert is the rule engine's (a threshold crossed) or another monitor's, taken in by `tickets.intake`:
both go through `on_transition`, which differs only in what the ticket, its notes and its audit say
(an `AlertWording`).

Exactly one ticket is open per (device, metric or kind): `Ticket.open_key` is UNIQUE, so when two
collectors race, the loser's insert fails inside a savepoint and it attaches to the winner's
ticket instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import rules
from tickets import audit, outbox, paging, prefetch, sla, suppression
from tickets.core import Context, add_clock, clock_named, facts, find_open, running, select_open
from tickets.models import Contact, ContactRole, Device, NoteVisibility, Ticket, TicketKind, TicketNote, TicketStatus
from tickets.notify.message import iso
from tickets.policy import ESCALATION, FIRST_RESPONSE, RESOLUTION

logger = logging.getLogger(__name__)

COLLECTOR = "collector"
OPENED_EVENTS = ("ticket_opened", "ticket_escalated", "ticket_dispatched")
MAX_RECENT = 20
_NOTES = cast(Table, TicketNote.__table__)


def open_key(device_id: str, metric_or_kind: str) -> str:
    return f"{device_id}/{metric_or_kind}"


class AlertWording:
    """What a ticket, its notes, audit entries and messages say about a threshold alert of the rule
    engine. `tickets.intake` words the alerts of other monitors (no value, no threshold: the
    monitor's own alert name and summary instead)."""

    actor = COLLECTOR

    def title(self, t: rules.Transition) -> str:
        return f"{t.device_id}: {t.metric} {t.value:g} over threshold {t.threshold:g} ({SEVERITY_LABELS[t.severity]})"

    def description(self, t: rules.Transition, recent: Sequence[tuple[float, float]]) -> str:
        return _description(t, recent)

    def details(self, t: rules.Transition, recent: Sequence[tuple[float, float]]) -> dict[str, Any]:
        return _details(t, recent)

    def raised_again(self, t: rules.Transition) -> str:
        return f"{t.severity.value} alert {t.event.value} again at value {t.value:g} (seq {t.seq})"

    def why_escalated(self, t: rules.Transition) -> str:
        return f"{t.metric} reached {t.value:g} (red above {t.red_level:g})"

    def why_recurred(self, t: rules.Transition, cleared_at: str) -> str:
        return f"{t.metric} {t.value:g} over {t.threshold:g} again (seq {t.seq}); it had cleared at {cleared_at}"

    def cleared_note(self, t: rules.Transition) -> str:
        return f"{t.severity.value} alert on {t.metric} cleared at value {t.value:g} (seq {t.seq})"

    def why_cleared(self, t: rules.Transition) -> str:
        return f"{t.metric} back to {t.value:g}, at or below {t.threshold:g} (seq {t.seq})"

    def reading(self, t: rules.Transition) -> dict[str, Any]:
        """What the recovery and recurrence messages say about the reading."""
        return {"value": t.value, "threshold": t.threshold}

    def message_key(self, event: str, t: rules.Transition) -> str:
        """The outbox key of a recovery or recurrence message: once per transition."""
        return f"{event}.{t.seq}"


THRESHOLD_WORDING = AlertWording()


def on_transition(
    ctx: Context, session: Session, t: rules.Transition, recent: Sequence[tuple[float, float]] = (),
    wording: AlertWording = THRESHOLD_WORDING,
) -> Ticket | None:
    key = open_key(t.device_id, t.metric)
    at = ctx.now()
    if t.event == rules.Event.CLEARED:
        ticket = find_open(session, key)
        if ticket is not None:
            _cleared(ctx, session, ticket, t, at, wording)
        suppression.cleared(ctx, session, t.device_id, t.metric)
        return ticket
    details = wording.details(t, recent)
    if suppression.intercept(ctx, session, t.device_id, t.metric, details, severity=t.severity.value):
        return None  # in a window, behind a failed parent, or part of an incident: docs/noise.md
    red = t.severity == rules.Severity.RED
    kind = TicketKind.ON_SITE if red else TicketKind.PRE_MAINTENANCE
    ticket, created = open_ticket(
        ctx, session, device_id=t.device_id, kind=kind.value, key=key, metric=t.metric,
        severity=t.severity.value, title=wording.title(t), description=wording.description(t, recent),
        details=details, at=at, actor=wording.actor,
    )
    if created:
        suppression.opened(ctx, session, ticket)
    else:
        cleared_at = (ticket.details or {}).get("cleared_at")
        escalating = red and ticket.level != "red"
        if escalating:
            escalate(ctx, session, ticket, t, details, at, wording)
        else:
            write_note(session, ticket, wording.actor, wording.raised_again(t), at)
        if cleared_at is not None:
            _recurred(ctx, session, ticket, t, at, cleared_at, wording, told=not escalating)
    return ticket


def _recurred(ctx: Context, session: Session, ticket: Ticket, t: rules.Transition, at: datetime, cleared_at: str,
              wording: AlertWording, *, told: bool) -> None:
    """The alert cleared on this still-open ticket and is back: on the timeline, the first response
    owed again, and everyone told of the recovery told of the recurrence (unless the escalation,
    which tells them itself, already did)."""
    details = {k: v for k, v in (ticket.details or {}).items() if k != "cleared_at"}
    ticket.details = {**details, "recurred_at": iso(datetime.fromtimestamp(t.ts, UTC)),
                      "recurrences": int(details.get("recurrences", 0)) + 1}
    why = wording.why_recurred(t, cleared_at)
    audit.record(session, ticket, actor=wording.actor, action="recurred", at=at, field="alert", old=None,
                 new=t.severity.value, reason=why)
    _reopen_first_response(ctx, session, ticket, at, wording.actor)
    if told:
        recipients = outbox.previous_recipients(session, ticket.id, OPENED_EVENTS)
        outbox.enqueue(session, ticket, "alert_recurred",
                       facts(ctx, session, ticket, metric=t.metric, severity=t.severity.value, **wording.reading(t),
                             cleared_at=cleared_at),
                       recipients, key=wording.message_key("recurred", t), at=at, locale=ctx.locale)


def _reopen_first_response(ctx: Context, session: Session, ticket: Ticket, at: datetime, actor: str) -> None:
    """A recurrence needs an answer again: a first-response clock that was met starts afresh. One that
    was breached keeps its breach on record (the promise was broken) and is not restarted."""
    clock = clock_named(ticket, FIRST_RESPONSE)
    if clock is None or clock.stopped_at is None or clock.breached_at is not None:
        return
    plan = sla.plan(FIRST_RESPONSE, at, ctx.policy.first_response[ticket.level], ctx.policy.warn_fractions,
                    ctx.policy.warn_before)
    audit.record(session, ticket, actor=actor, action="clock_restarted", at=at,
                 field=f"clocks.{FIRST_RESPONSE}.due_at", old=clock.due_at, new=plan.due_at,
                 reason="the alert recurred: a first response is owed again")
    clock.started_at = at
    clock.due_at = plan.due_at
    clock.stopped_at = None
    clock.warn_at = sla.encode(plan.warn_at)
    clock.warnings_sent = 0
    clock.next_fire_at = sla.next_fire(plan.warn_at, 0, plan.due_at)
    ctx.touch(clock)


def on_device_offline(ctx: Context, session: Session, device_id: str, since: datetime) -> Ticket | None:
    """An offline ticket, unless the device is decommissioned (no longer expected to report)."""
    device = session.get(Device, device_id)
    if device is not None and device.decommissioned_at is not None:
        logger.info("device %s is decommissioned: no offline ticket", device_id)
        return None
    if suppression.intercept(ctx, session, device_id, "offline", {"last_seen": iso(since)}):
        return None  # in a window, behind a failed parent, or part of an incident: docs/noise.md
    at = ctx.now()
    ticket, created = open_ticket(
        ctx, session, device_id=device_id, kind=TicketKind.OFFLINE.value, key=open_key(device_id, "offline"),
        metric=None, severity=None, title=f"{device_id} is offline",
        description=f"Device {device_id} stopped reporting; last heard from at {iso(since)}.",
        details={"last_seen": iso(since)}, at=at, extra_facts={"last_seen": iso(since)},
    )
    if created:
        suppression.opened(ctx, session, ticket)
    return ticket


def on_device_online(ctx: Context, session: Session, device_id: str, at: datetime) -> Ticket | None:
    suppression.cleared(ctx, session, device_id, "offline")
    ticket = find_open(session, open_key(device_id, "offline"))
    if ticket is None:
        return None
    now = ctx.now()
    write_note(session, ticket, COLLECTOR, f"device back online at {iso(at)}", now)
    audit.record(session, ticket, actor=COLLECTOR, action="recovered", at=now, field="state", old="offline",
                 new="online", reason=f"device back online at {iso(at)}")
    _tell_recovery(ctx, session, ticket, now, f"online.{int(at.timestamp())}",
                   metric="connectivity", severity="offline", cleared_at=iso(at))
    return ticket


def open_ticket(
    ctx: Context, session: Session, *, device_id: str | None, kind: str, key: str, metric: str | None,
    severity: str | None, title: str, description: str, details: dict[str, Any], at: datetime,
    actor: str = COLLECTOR, level: str | None = None, follow_up_of: int | None = None,
    customer_id: int | None = None, extra_facts: dict[str, Any] | None = None,
) -> tuple[Ticket, bool]:
    """The open ticket for `key`, opened now (True) or the one already open (False)."""
    existing = find_open(session, key)
    if existing is not None:
        return existing, False
    device = session.get(Device, device_id) if device_id else None
    if device_id and device is None:
        # The collector normally registers devices first; a ticket never waits for that.
        device = Device(id=device_id, first_seen_at=at)
        session.add(device)
    level = level or ctx.policy.level_of(kind)
    if customer_id is None and device is not None:
        customer_id = device.customer_id
    ticket = Ticket(
        device_id=device_id, metric=metric, severity=severity, kind=kind, level=level,
        priority=ctx.policy.priority_of(level), status=TicketStatus.RECEIVED.value, open_key=key,
        customer_id=customer_id, title=title, description=description, details=details,
        contact_name=_first_contact(session, customer_id), engineer_level=ctx.policy.group_of(level),
        opened_at=at, committed_at=at + ctx.policy.resolution[level], follow_up_of_id=follow_up_of,
        escalated=False, escalation_step=0, updated_at=at,
        clocks=[],  # known empty: adding the first clock need not load the collection
    )
    scope = prefetch.current(session)
    if scope is not None:
        # In a batch the key was read locked and found without an open ticket: the ticket takes a
        # reserved id and is inserted as a plain row, with its clocks, before the batch's other rows
        # (`prefetch.Prefetched.settle`). Should another process have opened one meanwhile, the
        # UNIQUE key refuses the batch, which is then applied again change by change, each in the
        # savepoint below (`tickets.batch`).
        ticket.id = scope.ticket_id(session)
        scope.opened(ticket)
    else:
        try:
            with session.begin_nested():
                session.add(ticket)
                session.flush()
        except IntegrityError:
            winner = select_open(session, key)
            if winner is None:
                raise
            logger.info("ticket for %s opened concurrently by another process: attached to %s", key, winner.id)
            return winner, False
    audit.record(session, ticket, actor=actor, action="opened", at=at, field="status", new=ticket.status,
                 reason=f"{kind} ticket opened (level {level})")
    for name, duration in ctx.policy.clocks_for(kind, level):
        add_clock(ctx, session, ticket, name, duration, at)
    add_clock(ctx, session, ticket, ESCALATION, ctx.policy.escalation_every, at)
    _announce(ctx, session, ticket, at, extra_facts or {})
    return ticket, True


def _announce(ctx: Context, session: Session, ticket: Ticket, at: datetime, extra: dict[str, Any]) -> None:
    group = ticket.engineer_level
    told = facts(ctx, session, ticket, group=group, **extra)
    outbox.enqueue(session, ticket, "ticket_dispatched", told, outbox.staff_group(session, group),
                   key=f"dispatched.{group}", at=at, locale=ctx.locale)
    page_teams(ctx, session, ticket, at)
    if ticket.level in ctx.policy.customer_levels:
        outbox.enqueue(session, ticket, "ticket_opened", told, outbox.customer_contacts(session, ticket.customer_id),
                       key="opened", at=at, locale=ctx.locale)


def page_teams(ctx: Context, session: Session, ticket: Ticket, at: datetime) -> None:
    """The response teams of the ticket's level: each one's on-call member, or the whole team."""
    for page in paging.first_pages(session, ticket.level, at):
        told = facts(ctx, session, ticket, group=page.team.name, on_call=page.on_call)
        outbox.enqueue(session, ticket, "ticket_dispatched", told, page.recipients, key=f"team.{page.team.id}", at=at,
                       locale=ctx.locale)


def escalate(
    ctx: Context, session: Session, ticket: Ticket, t: rules.Transition, details: dict[str, Any], at: datetime,
    wording: AlertWording = THRESHOLD_WORDING,
) -> None:
    """Upgrade an open ticket to red / on-site: stricter clocks, audit, contacts told."""
    previous = ticket.severity or ticket.level
    why = wording.why_escalated(t)
    actor = wording.actor
    for field, new in (("kind", TicketKind.ON_SITE.value), ("level", "red"), ("severity", "red"),
                       ("priority", min(ticket.priority, ctx.policy.priority_of("red"))),
                       ("engineer_level", ctx.policy.group_of("red")), ("escalated", True)):
        audit.change(session, ticket, field, new, actor=actor, action="escalated", at=at, reason=why)
    ticket.details = {**(ticket.details or {}), **details, "escalated_from": previous}
    audit.change(session, ticket, "title", _escalated_title(ticket.title, wording.title(t)), actor=actor,
                 action="escalated", at=at, reason=why)
    for name, duration in ctx.policy.clocks_for(ticket.kind, ticket.level):
        _tighten(ctx, session, ticket, name, duration, at, why, actor)
    if ticket.acknowledged_at is None:
        # The escalation chain starts again from the red level's first group.
        ticket.escalation_step = 0
        _tighten(ctx, session, ticket, ESCALATION, ctx.policy.escalation_every, at, why, actor)
    resolution = clock_named(ticket, RESOLUTION)
    if resolution is not None and ticket.committed_at is not None and resolution.due_at < ticket.committed_at:
        audit.change(session, ticket, "committed_at", resolution.due_at, actor=actor, action="escalated", at=at)
    told = facts(ctx, session, ticket, previous_severity=previous, group=ticket.engineer_level)
    recipients = outbox.staff_group(session, ticket.engineer_level)
    if ticket.level in ctx.policy.customer_levels:
        recipients += outbox.customer_contacts(session, ticket.customer_id)
    outbox.enqueue(session, ticket, "ticket_escalated", told, recipients, key="escalated", at=at, locale=ctx.locale)
    page_teams(ctx, session, ticket, at)


def _tighten(ctx: Context, session: Session, ticket: Ticket, name: str, duration: Any, at: datetime, why: str,
             actor: str) -> None:
    clock = clock_named(ticket, name)
    if clock is None:
        add_clock(ctx, session, ticket, name, duration, at)
        audit.record(session, ticket, actor=actor, action="clock_added", at=at, field=f"clocks.{name}", reason=why)
        return
    if not running(clock):
        return  # a clock already stopped (e.g. first response given) keeps its record
    warnings = name != ESCALATION
    current = sla.ClockPlan(name, clock.started_at, clock.due_at, tuple(sla.decode(clock.warn_at)))
    stricter = sla.tightened(current, at, duration, ctx.policy.warn_fractions if warnings else (),
                             ctx.policy.warn_before if warnings else None)
    if stricter is None:
        return
    audit.record(session, ticket, actor=actor, action="clock_tightened", at=at, field=f"clocks.{name}.due_at",
                 old=clock.due_at, new=stricter.due_at, reason=why)
    clock.due_at = stricter.due_at
    clock.warn_at = sla.encode(stricter.warn_at)
    clock.warnings_sent = 0
    clock.next_fire_at = sla.next_fire(stricter.warn_at, 0, stricter.due_at)
    ctx.touch(clock)


def _cleared(ctx: Context, session: Session, ticket: Ticket, t: rules.Transition, at: datetime,
             wording: AlertWording) -> None:
    write_note(session, ticket, wording.actor, wording.cleared_note(t), at)
    cleared_at = iso(datetime.fromtimestamp(t.ts, UTC))
    ticket.details = {**(ticket.details or {}), "cleared_at": cleared_at}
    audit.record(session, ticket, actor=wording.actor, action="recovered", at=at, field="alert",
                 old=t.severity.value, new=None, reason=wording.why_cleared(t))
    _tell_recovery(ctx, session, ticket, at, wording.message_key("cleared", t), metric=t.metric,
                   severity=t.severity.value, **wording.reading(t), cleared_at=cleared_at)


def _tell_recovery(ctx: Context, session: Session, ticket: Ticket, at: datetime, key: str, **extra: Any) -> None:
    """Recovery goes to everyone who was told the ticket opened or escalated."""
    recipients = outbox.previous_recipients(session, ticket.id, OPENED_EVENTS)
    outbox.enqueue(session, ticket, "alert_cleared", facts(ctx, session, ticket, **extra), recipients, key=key, at=at,
                   locale=ctx.locale)


def add_note(session: Session, ticket: Ticket, author: str, text: str, at: datetime,
             visibility: str = NoteVisibility.INTERNAL.value) -> TicketNote:
    note = TicketNote(ticket_id=ticket.id, at=at, author=author, text=text, visibility=visibility)
    session.add(note)
    _audit_note(session, ticket, author, text, at, visibility)
    return note


def write_note(session: Session, ticket: Ticket, author: str, text: str, at: datetime) -> None:
    """An internal note of the collector's: `add_note`, or inside a batch of ticket changes a row
    inserted with the batch's others."""
    scope = prefetch.current(session)
    if scope is None:
        add_note(session, ticket, author, text, at)
        return
    visibility = NoteVisibility.INTERNAL.value
    scope.defer(_NOTES, {"ticket_id": ticket.id, "at": at, "author": author, "text": text, "visibility": visibility})
    _audit_note(session, ticket, author, text, at, visibility)


def _audit_note(session: Session, ticket: Ticket, author: str, text: str, at: datetime, visibility: str) -> None:
    audit.record(session, ticket, actor=author, action="note", at=at, field="notes", new=text,
                 reason=None if visibility == NoteVisibility.INTERNAL else "visible to the customer")


def _first_contact(session: Session, customer_id: int | None) -> str | None:
    if customer_id is None:
        return None
    return prefetch.memo(session, ("first_contact", customer_id), lambda: session.scalars(
        select(Contact.name)
        .where(Contact.customer_id == customer_id, Contact.role == ContactRole.OPS.value, Contact.active.is_(True))
        .order_by(Contact.id)
    ).first())


SEVERITY_LABELS = {rules.Severity.RED: "on-site service", rules.Severity.ORANGE: "pre-maintenance"}


def _escalated_title(title: str, red_title: str) -> str:
    """The title an escalated ticket gets: the red alert's own when the title is still the one the
    alert wrote, else the (edited) title marked as escalated."""
    if title.endswith(f"({SEVERITY_LABELS[rules.Severity.ORANGE]})"):
        return red_title
    marker = f"[escalated to {SEVERITY_LABELS[rules.Severity.RED]}] "
    return title if title.startswith(marker) else (marker + title)[:300]


def _details(t: rules.Transition, recent: Sequence[tuple[float, float]]) -> dict[str, Any]:
    return {
        "metric": t.metric, "value": t.value, "threshold": t.threshold, "red_level": t.red_level,
        "severity": t.severity.value, "event": t.event.value, "seq": t.seq, "ts": t.ts,
        "recent": [[ts, value] for ts, value in list(recent)[-MAX_RECENT:]],
    }


def _description(t: rules.Transition, recent: Sequence[tuple[float, float]]) -> str:
    when = iso(datetime.fromtimestamp(t.ts, UTC))
    if t.severity == rules.Severity.RED:
        rule = f"over its red level {t.red_level:g} (threshold {t.threshold:g})"
    else:
        rule = f"over its threshold {t.threshold:g} on consecutive samples"
    lines = [f"{t.metric} on {t.device_id} was {t.value:g} at {when} (seq {t.seq}): {rule}."]
    if recent:
        shown = ", ".join(f"{iso(datetime.fromtimestamp(ts, UTC))} {v:g}" for ts, v in list(recent)[-MAX_RECENT:])
        lines.append(f"Recent samples: {shown}.")
    return "\n".join(lines)
