"""What people do to tickets: acknowledge, dispatch, start, check in, resolve, close, cancel, notes,
root-cause reports, ratings and field edits. Each writes its audit rows and outbox rows in the
caller's transaction and refuses an illegal step with IllegalTransition, changing nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets import audit, outbox
from tickets.core import Context, facts, load, stop_clocks
from tickets.errors import IllegalTransition, InvalidInput
from tickets.lifecycle import next_status
from tickets.models import ContactRole, Ticket, TicketKind, TicketStatus
from tickets.notify.message import Notification, iso
from tickets.opening import add_note, open_ticket
from tickets.policy import DISPATCH, ESCALATION, FIRST_RESPONSE, ON_SITE, PRE_MAINTENANCE_START, RCA

RCA_FIELDS = ("symptom", "investigation", "responsibility")
EDITABLE = ("title", "description", "first_judgement", "contact_name", "assignee")
MAX_TEXT = 10_000

# Which clocks an action stops (besides the status change itself).
_STOPS: Mapping[str, tuple[str, ...]] = {
    "acknowledge": (FIRST_RESPONSE, ESCALATION),
    "dispatch": (FIRST_RESPONSE, ESCALATION, DISPATCH),
    "start": (FIRST_RESPONSE, ESCALATION, DISPATCH, PRE_MAINTENANCE_START),
    "check_in": (FIRST_RESPONSE, ESCALATION, DISPATCH, PRE_MAINTENANCE_START, ON_SITE),
}
_STAMPS = {
    "dispatch": "dispatched_at", "start": "started_at", "check_in": "on_site_at",
    "resolve": "resolved_at", "close": "closed_at", "cancel": "cancelled_at",
}


def act(
    ctx: Context, session: Session, ticket_id: int, action: str, actor: str,
    note: str | None = None, assignee: str | None = None,
) -> Ticket:
    """Apply one lifecycle action (see tickets.lifecycle.TRANSITIONS)."""
    ticket = load(session, ticket_id)
    new_status = next_status(action, ticket.status, ticket.id)
    if action == "acknowledge" and ticket.acknowledged_at is not None:
        raise IllegalTransition(f"ticket {ticket.id} was already acknowledged at {iso(ticket.acknowledged_at)}")
    if action == "check_in" and ticket.on_site_at is not None:
        raise IllegalTransition(f"ticket {ticket.id}: already checked in on site at {iso(ticket.on_site_at)}")
    note = _text(note, "note") or None
    at = ctx.now()
    reason = note or action
    if assignee is not None:
        audit.change(session, ticket, "assignee", _text(assignee, "assignee", 200), actor=actor, action=action,
                     at=at, reason=reason)
    if ticket.acknowledged_at is None and action in _STOPS:
        audit.change(session, ticket, "acknowledged_at", at, actor=actor, action=action, at=at, reason=reason)
    stamp = _STAMPS.get(action)
    if stamp is not None and getattr(ticket, stamp) is None:
        audit.change(session, ticket, stamp, at, actor=actor, action=action, at=at, reason=reason)
    if action in ("check_in", "start") and ticket.started_at is None:
        audit.change(session, ticket, "started_at", at, actor=actor, action=action, at=at, reason=reason)
    audit.change(session, ticket, "status", new_status, actor=actor, action=action, at=at, reason=reason)
    if action in _STOPS:
        stop_clocks(ctx, session, ticket, _STOPS[action], actor=actor, at=at, reason=action)
    elif action == "resolve":
        # The root-cause report is still owed after the fix; every other clock ends here.
        stop_clocks(ctx, session, ticket, tuple(c.name for c in ticket.clocks if c.name != RCA),
                    actor=actor, at=at, reason=action)
    elif action == "cancel":
        stop_clocks(ctx, session, ticket, None, actor=actor, at=at, reason=action)
    if new_status in (TicketStatus.RESOLVED, TicketStatus.CANCELLED):
        audit.change(session, ticket, "open_key", None, actor=actor, action=action, at=at, reason=reason)
    if note:
        add_note(session, ticket, actor, note, at)
    ticket.updated_at = at
    if action == "dispatch":
        _tell_dispatch(ctx, session, ticket, at, note)
    elif action == "close":
        _ask_rating(ctx, session, ticket, at)
    return ticket


def note(ctx: Context, session: Session, ticket_id: int, actor: str, text: str) -> Ticket:
    ticket = load(session, ticket_id)
    body = _text(text, "note")
    if not body:
        raise InvalidInput("note", "must not be empty")
    at = ctx.now()
    add_note(session, ticket, actor, body, at)
    ticket.updated_at = at
    return ticket


def update(ctx: Context, session: Session, ticket_id: int, actor: str, fields: Mapping[str, Any],
           reason: str | None = None) -> Ticket:
    """Edit the fields first-line staff log: problem description, first judgement, contact person, ..."""
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise InvalidInput(unknown[0], f"cannot be edited; editable fields: {', '.join(EDITABLE)}")
    ticket = load(session, ticket_id)
    at = ctx.now()
    for name, value in fields.items():
        audit.change(session, ticket, name, _text(value, name), actor=actor, action="edited", at=at, reason=reason)
    ticket.updated_at = at
    return ticket


def attach_rca(ctx: Context, session: Session, ticket_id: int, actor: str, report: Mapping[str, Any]) -> Ticket:
    """Attach the root-cause report (symptom, investigation, responsibility, actions); stops the RCA clock
    and sends it to the customer's technical contacts."""
    ticket = load(session, ticket_id)
    if ticket.status == TicketStatus.CANCELLED:
        raise IllegalTransition(f"ticket {ticket.id} is cancelled: no root-cause report can be attached")
    clean: dict[str, Any] = {}
    for key in (*RCA_FIELDS, "actions"):
        value = report.get(key)
        if key == "actions" and isinstance(value, list):
            clean[key] = [_text(v, "actions[]") for v in value]
            continue
        text = _text(value, key)
        if key in RCA_FIELDS and not text:
            raise InvalidInput(f"rca.{key}", "is required (symptom, investigation and responsibility)")
        if text:
            clean[key] = text
    extra = sorted(set(report) - {*RCA_FIELDS, "actions"})
    if extra:
        raise InvalidInput(f"rca.{extra[0]}", "unknown field; expected symptom, investigation, responsibility, actions")
    at = ctx.now()
    audit.change(session, ticket, "rca", clean, actor=actor, action="rca_attached", at=at)
    audit.change(session, ticket, "rca_at", at, actor=actor, action="rca_attached", at=at)
    stop_clocks(ctx, session, ticket, (RCA,), actor=actor, at=at, reason="root-cause report attached")
    ticket.updated_at = at
    _send_rca(ctx, session, ticket, clean, at)
    return ticket


def rate(ctx: Context, session: Session, ticket_id: int, actor: str, rating: Any, comment: str | None = None) -> Ticket:
    """Record the customer's 1-5 rating of a closed ticket; a low score opens a service-recovery follow-up."""
    ticket = load(session, ticket_id)
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise InvalidInput("rating", f"must be a whole number from 1 to 5, got {rating!r}")
    if ticket.status != TicketStatus.CLOSED:
        raise IllegalTransition(f"ticket {ticket.id} is {ticket.status}: only a closed ticket can be rated")
    if ticket.rating is not None:
        raise IllegalTransition(f"ticket {ticket.id} was already rated {ticket.rating}")
    at = ctx.now()
    audit.change(session, ticket, "rating", rating, actor=actor, action="rated", at=at, reason=comment)
    audit.change(session, ticket, "rated_at", at, actor=actor, action="rated", at=at)
    if comment:
        audit.change(session, ticket, "rating_comment", _text(comment, "comment"), actor=actor, action="rated", at=at)
    ticket.updated_at = at
    if rating < ctx.policy.satisfaction_threshold:
        _follow_up(ctx, session, ticket, rating, at)
    return ticket


def ticket_for_survey(session: Session, token: str) -> int | None:
    """The ticket a survey link's token belongs to (the link carries the token, the row its hash)."""
    digest = _hash(token)
    return session.scalars(select(Ticket.id).where(Ticket.survey_token_hash == digest)).first()


def _follow_up(ctx: Context, session: Session, ticket: Ticket, rating: int, at: datetime) -> Ticket:
    level = ctx.policy.follow_up_level
    follow, _ = open_ticket(
        ctx, session, device_id=ticket.device_id, kind=TicketKind.SERVICE_RECOVERY.value,
        key=f"follow-up/{ticket.id}", metric=ticket.metric, severity=None, level=level,
        title=f"Service recovery: ticket {ticket.id} rated {rating}/5",
        description=(f"The customer rated ticket {ticket.id} ({ticket.title}) {rating} out of 5, under the "
                     f"threshold {ctx.policy.satisfaction_threshold}. Contact them and recover the service."
                     + (f"\nTheir comment: {ticket.rating_comment}" if ticket.rating_comment else "")),
        details={"follow_up_of": ticket.id, "rating": rating}, at=at, actor="satisfaction",
        follow_up_of=ticket.id, customer_id=ticket.customer_id,
    )
    audit.record(session, ticket, actor="satisfaction", action="follow_up_opened", at=at, field="follow_up",
                 new=follow.id, reason=f"rating {rating} under {ctx.policy.satisfaction_threshold}")
    return follow


def _tell_dispatch(ctx: Context, session: Session, ticket: Ticket, at: datetime, note: str | None) -> None:
    told = facts(ctx, session, ticket, group=ticket.engineer_level, note=note)
    recipients = outbox.staff_member(session, ticket.assignee) or outbox.staff_group(session, ticket.engineer_level)
    # The key names the assignee by id (or a digest of the name): names travel only in the text.
    who = outbox.assignee_tag(session, ticket.assignee)
    outbox.enqueue(session, ticket, "ticket_dispatched", told, recipients,
                   key=f"assigned.{int(at.timestamp())}.{who}", at=at)


def _ask_rating(ctx: Context, session: Session, ticket: Ticket, at: datetime) -> None:
    contacts = outbox.customer_contacts(session, ticket.customer_id)
    if not contacts:
        return
    token = secrets.token_urlsafe(24)
    ticket.survey_token_hash = _hash(token)
    ticket.survey_sent_at = at
    told = facts(ctx, session, ticket, links={"ticket": ctx.ticket_link(ticket.id), "rating": ctx.survey_link(token)})
    outbox.enqueue(session, ticket, "satisfaction_request", told, contacts, key="survey", at=at)


def _send_rca(ctx: Context, session: Session, ticket: Ticket, report: Mapping[str, Any], at: datetime) -> None:
    # A subject is one line: a title may hold line breaks.
    about = " ".join(str(ticket.device_id or ticket.title).split())
    subject = f"[edgewatch] Root-cause report for ticket #{ticket.id} ({about})"
    lines = [f"Root-cause analysis of ticket #{ticket.id}: {ticket.title}", ""]
    for key in (*RCA_FIELDS, "actions"):
        value = report.get(key)
        if value:
            body = "\n".join(f"- {v}" for v in value) if isinstance(value, list) else str(value)
            lines += [f"{key.capitalize()}:", body, ""]
    lines.append(f"Ticket: {ctx.ticket_link(ticket.id)}")
    version = int(at.timestamp())
    for r in outbox.customer_contacts(session, ticket.customer_id, ContactRole.TECHNICAL):
        message = Notification(
            idempotency_key=f"t{ticket.id}.rca.{version}.{r.tag}", channel=r.channel, address=r.address,
            subject=subject, text="\n".join(lines) + "\n", created_at=at,
            data={"event": "rca_report", "ticket_id": ticket.id, "device_id": ticket.device_id, "rca": dict(report)},
        )
        outbox.enqueue_message(session, ticket, message, r, at=at)


def _text(value: Any, field: str, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, got {type(value).__name__}")
    text = value.strip()
    if len(text) > limit:
        raise InvalidInput(field, f"is {len(text)} characters long; at most {limit} are kept")
    return text


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
