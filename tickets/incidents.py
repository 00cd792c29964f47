"""Mass-event incidents: one `incident` ticket for many devices of one site (or customer) raising the
same kind of alert, the customer told once with the count and the list.

`tickets.suppression.decide` says when an incident opens or is joined; this module owns the group a
device counts in, the incident ticket itself and folding devices' own tickets into it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from tickets import audit, outbox, prefetch
from tickets.core import Context, facts, stop_clocks
from tickets.models import OPEN_STATUSES, Device, Level, OutboxMessage, OutboxStatus, Ticket, TicketKind, TicketStatus

ACTOR = "collector"
OFFLINE = "offline"
MAX_LISTED = 200  # devices named in the incident's details and its message


def group_of(device: Device | None) -> str | None:
    """Where a device's alerts are counted: its site (of its customer: an incident belongs to one
    customer), else its customer, else nowhere. `site:<customer id or ->:<site>`, `customer:<id>`."""
    if device is None:
        return None
    if device.site:
        return f"site:{device.customer_id if device.customer_id is not None else '-'}:{device.site}"
    if device.customer_id is not None:
        return f"customer:{device.customer_id}"
    return None


def _parts(group: str) -> tuple[str, int | None, str]:
    """(kind, customer id, site) of a group key."""
    what, _, rest = group.partition(":")
    if what == "site":
        customer, _, site = rest.partition(":")
        return what, None if customer == "-" else int(customer), site
    return what, int(rest), ""


def open_key(group: str, kind: str) -> str:
    return f"incident/{kind}/{group}"[:200]


def label(group: str) -> str:
    what, customer, site = _parts(group)
    return f"site {site}" if what == "site" else f"customer #{customer}"


def _kind_filter(kind: str) -> Any:
    if kind == OFFLINE:
        return Ticket.kind == TicketKind.OFFLINE.value
    return (Ticket.metric == kind) & Ticket.kind.in_((TicketKind.ON_SITE.value, TicketKind.PRE_MAINTENANCE.value))


def _recent(group: str, kind: str, since: datetime, exclude: str) -> Any:
    what, customer, site = _parts(group)
    same_customer = Device.customer_id.is_(None) if customer is None else Device.customer_id == customer
    in_group = (Device.site == site) & same_customer if what == "site" else same_customer
    return (Device.id == Ticket.device_id, in_group, _kind_filter(kind), Ticket.open_key.is_not(None),
            Ticket.opened_at >= since, Ticket.device_id != exclude)


def settled(session: Session) -> None:
    """Inside a batch of ticket changes, write what the batch deferred (its new tickets, their
    messages) first: the queries below read those tables."""
    scope = prefetch.current(session)
    if scope is not None:
        scope.settle(session)


def recent_tickets(session: Session, group: str, kind: str, since: datetime, *, exclude: str) -> list[Ticket]:
    """The open own tickets of `kind` of the group's devices (but `exclude`) opened since `since`."""
    settled(session)
    join, *where = _recent(group, kind, since, exclude)
    return list(session.scalars(select(Ticket).join(Device, join).where(*where).order_by(Ticket.id)))


def recent_devices(session: Session, group: str, kind: str, since: datetime, *, exclude: str) -> int:
    """How many devices `recent_tickets` would name (counted in the database)."""
    settled(session)
    join, *where = _recent(group, kind, since, exclude)
    return int(session.scalar(select(func.count(distinct(Ticket.device_id))).select_from(Ticket)
                              .join(Device, join).where(*where)) or 0)


def open_or_join(ctx: Context, session: Session, group: str, kind: str, device_id: str,
                 severity: str | None, at: datetime) -> Ticket:
    """The open incident of (group, kind), opened now when there is none."""
    from tickets.opening import open_ticket  # opening uses suppression, which uses this module

    customer_id = _parts(group)[1]
    level = Level.YELLOW.value if severity == "orange" else Level.RED.value
    what = "offline" if kind == OFFLINE else f"{kind} alerts"
    ticket, created = open_ticket(
        ctx, session, device_id=None, kind=TicketKind.INCIDENT.value, key=open_key(group, kind),
        metric=None if kind == OFFLINE else kind, severity=None if kind == OFFLINE else severity,
        title=f"Mass event: devices of {label(group)} {what}"[:300],
        description=(f"Many devices of {label(group)} raised {what} within "
                     f"{ctx.noise.incident_window.total_seconds():g} s; their alerts are listed on this ticket."),
        details={"group": group, "scope": label(group), "alert_kind": kind, "related": True, "first_device": device_id},
        at=at, level=level, customer_id=customer_id, extra_facts={"scope": label(group)},
    )
    if created:
        audit.record(session, ticket, actor=ACTOR, action="incident_opened", at=at, field="alert_kind", new=kind,
                     reason=f"at least {ctx.noise.incident_min_devices} devices of {label(group)} within "
                            f"{ctx.noise.incident_window.total_seconds():g} s")
    return ticket


def announce(ctx: Context, session: Session, incident: Ticket, at: datetime) -> None:
    """The customer's one message about the incident: how many devices, and which."""
    from tickets.suppression import related  # the holds are suppression's

    rows = related(session, incident.id)
    devices = sorted({r.device_id for r in rows})
    told = facts(ctx, session, incident, scope=(incident.details or {}).get("scope"), affected_devices=len(devices),
                 devices=devices[:MAX_LISTED])
    # Opening the ticket wrote the usual message for a red ticket's customer before any device was
    # listed: this one, with the list, replaces it.
    settled(session)
    for row in session.scalars(select(OutboxMessage).where(
            OutboxMessage.ticket_id == incident.id, OutboxMessage.status == OutboxStatus.PENDING.value,
            OutboxMessage.idempotency_key.like(f"t{incident.id}.opened.%"))):
        row.status = OutboxStatus.DIGESTED.value
        row.last_error = "replaced by the incident message listing the devices"
    outbox.enqueue(session, incident, "ticket_opened", told, outbox.customer_contacts(session, incident.customer_id),
                   key="incident.opened", at=at)


def postpone_customer_messages(session: Session, ticket: Ticket, until: datetime) -> None:
    """The customer's pending messages about `ticket` are due at `until` at the earliest."""
    settled(session)
    session.flush()
    for row in session.scalars(select(OutboxMessage).where(
            OutboxMessage.ticket_id == ticket.id, OutboxMessage.status == OutboxStatus.PENDING.value,
            OutboxMessage.recipient_kind == "contact")):
        row.next_attempt_at = max(row.next_attempt_at, until)


def merge_into(ctx: Context, session: Session, own: Ticket, into: Ticket, at: datetime, why: str) -> None:
    """Cancel `own` as part of `into`: its clocks stop, its key is free, its unsent messages withdrawn."""
    if own.status not in {s.value for s in OPEN_STATUSES}:
        return
    stop_clocks(ctx, session, own, None, actor=ACTOR, at=at, reason=why)
    audit.change(session, own, "status", TicketStatus.CANCELLED.value, actor=ACTOR, action="merged", at=at, reason=why)
    audit.change(session, own, "cancelled_at", at, actor=ACTOR, action="merged", at=at, reason=why)
    audit.change(session, own, "open_key", None, actor=ACTOR, action="merged", at=at, reason=why)
    own.details = {**(own.details or {}), "merged_into": into.id}
    own.updated_at = at
    session.flush()  # the key is free before anything else takes it
    settled(session)
    for row in session.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == own.id,
                                                           OutboxMessage.status == OutboxStatus.PENDING.value)):
        row.status = OutboxStatus.DIGESTED.value
        row.last_error = f"withdrawn: {why}"
