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

from tickets import alerts, audit, knowledge, outbox, paging
from tickets.core import Context, clock_named, facts, load, running, stop_clocks
from tickets.errors import AlertStillActive, IllegalTransition, InvalidInput
from tickets.lifecycle import next_status
from tickets.models import (
    ContactRole,
    Device,
    NoteVisibility,
    RatingSource,
    Ticket,
    TicketKind,
    TicketNote,
    TicketStatus,
)
from tickets.notify.message import iso, notification
from tickets.opening import add_note, open_key, open_ticket
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
# Actions after which the ticket no longer answers for its alert: refused while the alert is active.
_RELEASES = ("resolve", "cancel", "close")
_STAMPS = {
    "dispatch": "dispatched_at", "start": "started_at", "check_in": "on_site_at",
    "resolve": "resolved_at", "close": "closed_at", "cancel": "cancelled_at",
}


def act(
    ctx: Context, session: Session, ticket_id: int, action: str, actor: str,
    note: str | None = None, assignee: str | None = None, *, force: bool = False,
) -> Ticket:
    """Apply one lifecycle action (see tickets.lifecycle.TRANSITIONS). Resolving, cancelling or closing
    a ticket whose threshold alert is still active raises AlertStillActive unless `force` (with a
    note); a forced release re-arms the rule so that the next breach opens a new ticket."""
    ticket = load(session, ticket_id)
    new_status = next_status(action, ticket.status, ticket.id)
    if action == "acknowledge" and ticket.acknowledged_at is not None and not running(
            clock_named(ticket, FIRST_RESPONSE)):
        raise IllegalTransition(f"ticket {ticket.id} was already acknowledged at {iso(ticket.acknowledged_at)}")
    if action == "check_in" and ticket.on_site_at is not None:
        raise IllegalTransition(f"ticket {ticket.id}: already checked in on site at {iso(ticket.on_site_at)}")
    note = _text(note, "note") or None
    at = ctx.now()
    reason = note or action
    if action in _RELEASES:
        _release_alert(session, ticket, action, actor, note, force, at)
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
        on_site = clock_named(ticket, ON_SITE)
        if running(on_site):
            # The on-site promise is kept only by a check-in before its due time.
            assert on_site is not None
            on_site.breached_at = at
            audit.record(session, ticket, actor=actor, action="clock_breached", at=at,
                         field=f"clocks.{ON_SITE}.breached_at", new=at, reason="resolved without a check-in on site")
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
        knowledge.offer_draft(session, ticket, actor=actor, at=at)
    return ticket


def _release_alert(session: Session, ticket: Ticket, action: str, actor: str, note: str | None, force: bool,
                   at: datetime) -> None:
    key = open_key(ticket.device_id, ticket.metric) if ticket.device_id and ticket.metric else None
    severity = alerts.owned_alert(session, ticket, key)
    if severity is None:
        return
    alert = f"the {severity} alert on {ticket.metric} of {ticket.device_id}"
    if not force:
        raise AlertStillActive(
            f"cannot {action} ticket {ticket.id}: {alert} is still active, and the device would be left "
            f"{severity} with no open ticket. Wait until the alert clears, or send "
            '{"force": true, "note": "why"}: the rule is then re-armed and the next breach opens a new ticket',
            ticket.device_id or "", ticket.metric or "", severity,
        )
    if not note:
        raise InvalidInput("note", f"a forced {action} while {alert} is active needs a note saying why")
    alerts.request_rearm(session, ticket, actor, at)
    audit.record(session, ticket, actor=actor, action="forced", at=at, field="alert", old=severity, new=None,
                 reason=f"{action} while {alert} was active: {note}; the rule is re-armed, the next breach "
                        "opens a new ticket")


def note(ctx: Context, session: Session, ticket_id: int, actor: str, text: str,
         visibility: str = NoteVisibility.INTERNAL.value) -> TicketNote:
    ticket = load(session, ticket_id)
    body = _text(text, "note")
    if not body:
        raise InvalidInput("note", "must not be empty")
    if visibility not in set(NoteVisibility):
        raise InvalidInput("visibility", f"must be internal or public, got {visibility!r}")
    at = ctx.now()
    written = add_note(session, ticket, actor, body, at, visibility)
    ticket.updated_at = at
    return written


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
    knowledge.offer_draft(session, ticket, actor=actor, at=at)  # the report came after the close
    return ticket


def rate(ctx: Context, session: Session, ticket_id: int, actor: str, rating: Any, comment: str | None = None,
         source: str = RatingSource.CUSTOMER.value) -> Ticket:
    """Record the 1-5 rating of a closed ticket; a low score opens a service-recovery follow-up.

    `source` says who gave it: the customer (survey link, customer token) or staff entering it for
    them. A customer rates once; staff may record a rating only while there is none, and the
    customer's own rating replaces a staff-entered one (both stay in the audit trail)."""
    ticket = load(session, ticket_id)
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise InvalidInput("rating", f"must be a whole number from 1 to 5, got {rating!r}")
    if source not in set(RatingSource):
        raise InvalidInput("source", f"must be customer or staff, got {source!r}")
    if ticket.status != TicketStatus.CLOSED:
        raise IllegalTransition(f"ticket {ticket.id} is {ticket.status}: only a closed ticket can be rated")
    if ticket.rating is not None and (source == RatingSource.STAFF or ticket.rating_source != RatingSource.STAFF):
        by = "the customer" if ticket.rating_source == RatingSource.CUSTOMER else "staff"
        raise IllegalTransition(f"ticket {ticket.id} was already rated {ticket.rating} by {by}")
    at = ctx.now()
    audit.change(session, ticket, "rating", rating, actor=actor, action="rated", at=at, reason=comment)
    audit.change(session, ticket, "rating_source", source, actor=actor, action="rated", at=at)
    audit.change(session, ticket, "rated_at", at, actor=actor, action="rated", at=at)
    if comment:
        audit.change(session, ticket, "rating_comment", _text(comment, "comment"), actor=actor, action="rated", at=at)
    ticket.updated_at = at
    if rating < ctx.policy.satisfaction_threshold:
        _follow_up(ctx, session, ticket, rating, at)
    return ticket


def open_manual(ctx: Context, session: Session, device_id: str, title: str, level: str, actor: str,
                note: str | None = None) -> Ticket:
    """A ticket opened by a person for a registered device: kind `manual`, the level's clocks, the
    level's group told (and the customer's ops contacts for the levels in `customer_levels`)."""
    if level not in ("red", "yellow", "blue"):
        raise InvalidInput("level", f"must be red, yellow or blue, got {level!r}")
    clean_title = _text(title, "title", 300)
    if not clean_title:
        raise InvalidInput("title", "must not be empty")
    if session.get(Device, device_id) is None:
        raise InvalidInput("device_id", f"no device {device_id!r} is registered")
    text = _text(note, "note") or None
    at = ctx.now()
    # Several manual tickets may be open for one device: each gets a key of its own.
    ticket, _ = open_ticket(
        ctx, session, device_id=device_id, kind=TicketKind.MANUAL.value,
        key=f"manual/{secrets.token_hex(8)}", metric=None, severity=None, level=level, title=clean_title,
        description=clean_title, details={"opened_by": actor}, at=at, actor=actor,
    )
    if text:
        add_note(session, ticket, actor, text, at)
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
    best = knowledge.best_match(session, ticket)
    known = {"id": best.id, "title": best.title, "link": ctx.knowledge_link(best.id)} if best else None
    told = facts(ctx, session, ticket, group=ticket.engineer_level, note=note, knowledge=known)
    recipients = outbox.staff_member(session, ticket.assignee) or (
        outbox.staff_group(session, ticket.engineer_level)
        + paging.first_recipients(session, ticket.level, at))
    # The key names the assignee by id (or a digest of the name): names travel only in the text.
    who = outbox.assignee_tag(session, ticket.assignee)
    outbox.enqueue(session, ticket, "ticket_dispatched", told, recipients,
                   key=f"assigned.{int(at.timestamp())}.{who}", at=at, locale=ctx.locale)


def _ask_rating(ctx: Context, session: Session, ticket: Ticket, at: datetime) -> None:
    contacts = outbox.customer_contacts(session, ticket.customer_id)
    if not contacts:
        return
    token = secrets.token_urlsafe(24)
    ticket.survey_token_hash = _hash(token)
    ticket.survey_sent_at = at
    told = facts(ctx, session, ticket, links={"ticket": ctx.ticket_link(ticket.id), "rating": ctx.survey_link(token)})
    outbox.enqueue(session, ticket, "satisfaction_request", told, contacts, key="survey", at=at, locale=ctx.locale)


def _send_rca(ctx: Context, session: Session, ticket: Ticket, report: Mapping[str, Any], at: datetime) -> None:
    told = {"ticket_id": ticket.id, "device_id": ticket.device_id, "title": ticket.title, "rca": dict(report),
            "links": {"ticket": ctx.ticket_link(ticket.id)}}
    version = int(at.timestamp())
    for r in outbox.customer_contacts(session, ticket.customer_id, ContactRole.TECHNICAL):
        message = notification(
            "rca_report", told, idempotency_key=f"t{ticket.id}.rca.{version}.{r.tag}", channel=r.channel,
            address=r.address, created_at=at, locale=outbox.locale_of(session, r, ctx.locale))
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
