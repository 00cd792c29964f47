"""Read-side queries of the API (SQLAlchemy selects over `tickets.models`), with keyset pagination.

Lists are paged by a cursor holding the sort key of the last row, so page 1 000 costs what page 1
costs. Customers are narrowed to their own rows by the caller passing `customer_id`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, String, case, cast, func, or_, select, tuple_
from sqlalchemy.orm import Session, defer, load_only, selectinload

from tickets.alerts import stored_alerts
from tickets.models import (
    OPEN_STATUSES,
    AuditEntry,
    Clock,
    Contact,
    Customer,
    DeadLetter,
    Device,
    DeviceState,
    OutboxMessage,
    Severity,
    Ticket,
    TicketKind,
    TicketNote,
)


class BadCursor(ValueError):
    """A `cursor` that this API did not hand out (or that belongs to another sort)."""


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: Sequence[type]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("wrong shape")
        out: list[Any] = []
        for value, kind in zip(values, kinds, strict=True):
            if kind is datetime:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise ValueError("naive time")
                out.append(parsed)
            elif (kind is int and isinstance(value, int) and not isinstance(value, bool)) or (
                kind is str and isinstance(value, str)
            ):
                out.append(value)
            else:
                raise ValueError("wrong type")
        return out
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadCursor("cursor: not a cursor handed out by this list; start again without it") from None


@dataclass(frozen=True)
class TicketFilter:
    device_id: str | None = None
    statuses: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    customer_id: int | None = None
    scope_customer_id: int | None = None  # set for customer callers: never widened by other filters
    open_only: bool = False
    opened_after: datetime | None = None
    opened_before: datetime | None = None

    def where(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.device_id is not None:
            conditions.append(Ticket.device_id == self.device_id)
        if self.statuses:
            conditions.append(Ticket.status.in_(self.statuses))
        if self.open_only:
            conditions.append(Ticket.status.in_([s.value for s in OPEN_STATUSES]))
        if self.severities:
            conditions.append(Ticket.severity.in_(self.severities))
        if self.levels:
            conditions.append(Ticket.level.in_(self.levels))
        if self.kinds:
            conditions.append(Ticket.kind.in_(self.kinds))
        if self.customer_id is not None:
            conditions.append(Ticket.customer_id == self.customer_id)
        if self.scope_customer_id is not None:
            conditions.append(Ticket.customer_id == self.scope_customer_id)
            conditions.append(Ticket.kind.not_in(STAFF_ONLY_KINDS))
        if self.opened_after is not None:
            conditions.append(Ticket.opened_at >= self.opened_after)
        if self.opened_before is not None:
            conditions.append(Ticket.opened_at < self.opened_before)
        return conditions


# What a list shows: the big text and JSON columns (details, RCA, description) stay unread.
LIST_COLUMNS = (
    load_only(*(getattr(Ticket, name) for name in (
        "id", "device_id", "metric", "severity", "kind", "level", "priority", "status", "customer_id", "title",
        "assignee", "engineer_level", "escalated", "opened_at", "acknowledged_at", "dispatched_at", "started_at",
        "on_site_at", "resolved_at", "closed_at", "cancelled_at", "committed_at", "rating"))),
    selectinload(Ticket.clocks).load_only(
        Clock.id, Clock.ticket_id, Clock.name, Clock.started_at, Clock.due_at, Clock.stopped_at, Clock.breached_at),
)

# sort name -> (columns, descending, cursor value types). A ticket's id is given when it opens, so
# id order is opening order, and the primary key serves it without sorting whole rows.
TICKET_SORTS: dict[str, tuple[tuple[Any, ...], bool, tuple[type, ...]]] = {
    "newest": ((Ticket.id,), True, (int,)),
    "urgent": ((Ticket.priority, Ticket.id), False, (int, int)),
}


def list_tickets(
    session: Session, where: TicketFilter, *, sort: str, limit: int, cursor: str | None
) -> tuple[list[Ticket], str | None]:
    columns, descending, kinds = TICKET_SORTS[sort]
    # Sort and page over the narrow sort key first, then load only the page's rows: sorting a few
    # thousand (priority, id) pairs is cheap, sorting as many whole tickets is not.
    query = select(*columns).where(*where.where())
    if cursor:
        after = decode_cursor(cursor, kinds)
        key = tuple_(*columns) if len(columns) > 1 else columns[0]
        bound = tuple_(*after) if len(columns) > 1 else after[0]
        query = query.where(key < bound if descending else key > bound)
    keys = session.execute(query.order_by(*(c.desc() if descending else c.asc() for c in columns))
                           .limit(limit + 1)).all()
    page = keys[:limit]
    ids = [k[-1] for k in page]
    loaded = {t.id: t for t in session.scalars(
        select(Ticket).where(Ticket.id.in_(ids)).options(*LIST_COLUMNS))} if ids else {}
    rows = [loaded[i] for i in ids if i in loaded]
    next_cursor = encode_cursor(list(page[-1])) if len(keys) > limit else None
    return rows, next_cursor


@dataclass(frozen=True)
class Names:
    """The names shown beside the ids of a page of tickets."""

    devices: dict[str, str | None]
    customers: dict[int, str]


def ticket_names(session: Session, tickets: Sequence[Ticket]) -> Names:
    """Two narrow queries for a page: cheaper than loading the devices and customers as objects."""
    device_ids = {t.device_id for t in tickets if t.device_id}
    customer_ids = {t.customer_id for t in tickets if t.customer_id is not None}
    devices = {d: name for d, name in session.execute(
        select(Device.id, Device.name).where(Device.id.in_(device_ids)))} if device_ids else {}
    customers = {c: name for c, name in session.execute(
        select(Customer.id, Customer.name).where(Customer.id.in_(customer_ids)))} if customer_ids else {}
    return Names(devices, customers)


# Tickets about the customer rather than for them: a service-recovery follow-up tells staff to win
# an unhappy customer back. A customer never sees them.
STAFF_ONLY_KINDS = (TicketKind.SERVICE_RECOVERY.value,)


def ticket_for(session: Session, ticket_id: int, scope_customer_id: int | None) -> Ticket | None:
    """The ticket, or None when it does not exist or the customer may not see it (indistinguishable)."""
    ticket = session.scalars(
        select(Ticket).where(Ticket.id == ticket_id).options(selectinload(Ticket.clocks))
    ).one_or_none()
    if ticket is None or (scope_customer_id is not None and (ticket.customer_id != scope_customer_id
                                                             or ticket.kind in STAFF_ONLY_KINDS)):
        return None
    return ticket


def audit_of(session: Session, ticket_id: int) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.ticket_id == ticket_id).order_by(AuditEntry.id)))


def notes_of(session: Session, ticket_id: int) -> list[TicketNote]:
    return list(session.scalars(select(TicketNote).where(TicketNote.ticket_id == ticket_id).order_by(TicketNote.id)))


def _customer_notifications(query: Select[OutboxMessage], customer_id: int) -> Select[OutboxMessage]:
    own_contacts = select(Contact.id).where(Contact.customer_id == customer_id)
    return query.where(OutboxMessage.recipient_kind == "contact", OutboxMessage.recipient_id.in_(own_contacts))


def notifications(
    session: Session,
    *,
    ticket_id: int | None = None,
    status: str | None = None,
    scope_customer_id: int | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[OutboxMessage], str | None]:
    query = select(OutboxMessage).options(selectinload(OutboxMessage.attempt_log))
    if ticket_id is not None:
        query = query.where(OutboxMessage.ticket_id == ticket_id)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if scope_customer_id is not None:
        query = _customer_notifications(query, scope_customer_id)
    return _page_by_id(session, query, OutboxMessage.id, limit, cursor)


def _page_by_id(
    session: Session, query: Any, id_column: Any, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    if cursor:
        (after,) = decode_cursor(cursor, (int,))
        query = query.where(id_column < after)
    rows = list(session.scalars(query.order_by(id_column.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor([rows[-1].id])


def dead_letters(
    session: Session, *, device_id: str | None, reason: str | None, limit: int, cursor: str | None
) -> tuple[list[DeadLetter], str | None]:
    query = select(DeadLetter)
    if device_id is not None:
        query = query.where(DeadLetter.device_id == device_id)
    if reason is not None:
        query = query.where(DeadLetter.reason == reason)
    return _page_by_id(session, query, DeadLetter.id, limit, cursor)


# --- devices -----------------------------------------------------------------------------------


class DeviceHealth(StrEnum):
    """A device at a glance: its worst active alert, else whether it reports."""

    GREEN = "green"
    ORANGE = Severity.ORANGE.value
    RED = Severity.RED.value
    OFFLINE = DeviceState.OFFLINE.value
    UNKNOWN = DeviceState.UNKNOWN.value


@dataclass(frozen=True)
class DeviceView:
    device: Device
    health: DeviceHealth
    open_tickets: int


def active_alerts(session: Session, device_ids: Sequence[str] | None = None) -> dict[tuple[str, str], str]:
    """(device, metric) -> severity of every active alert, from the collector's rule-engine snapshots."""
    return stored_alerts(session, device_ids)


def health_of(device: Device, severities: Sequence[str]) -> DeviceHealth:
    if device.state == DeviceState.OFFLINE:
        return DeviceHealth.OFFLINE
    if Severity.RED in severities:
        return DeviceHealth.RED
    if Severity.ORANGE in severities:
        return DeviceHealth.ORANGE
    return DeviceHealth.GREEN if device.state == DeviceState.ONLINE else DeviceHealth.UNKNOWN


def device_views(session: Session, devices: Sequence[Device]) -> list[DeviceView]:
    ids = [d.id for d in devices]
    alerts = active_alerts(session, ids)
    counts = dict(
        session.execute(
            select(Ticket.device_id, func.count())
            .where(Ticket.device_id.in_(ids), Ticket.status.in_([s.value for s in OPEN_STATUSES]))
            .group_by(Ticket.device_id)
        ).all()
    )
    by_device: dict[str, list[str]] = {}
    for (device_id, _metric), severity in alerts.items():
        by_device.setdefault(device_id, []).append(severity)
    return [DeviceView(d, health_of(d, by_device.get(d.id, [])), counts.get(d.id, 0)) for d in devices]


@dataclass(frozen=True)
class DeviceFilter:
    """Which devices a fleet list shows. `worst` is the fleet's worst active severity per device
    (`server.health.AlertIndex`), needed only to filter, count or sort by health."""

    customer_id: int | None = None
    scope_customer_id: int | None = None
    device_class: str | None = None
    state: str | None = None
    prefix: str | None = None
    health: tuple[str, ...] = ()
    site: str | None = None
    tag: str | None = None
    q: str | None = None
    include_decommissioned: bool = True

    def where(self, worst: dict[str, str] | None) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if not self.include_decommissioned:
            conditions.append(Device.decommissioned_at.is_(None))
        if self.customer_id is not None:
            conditions.append(Device.customer_id == self.customer_id)
        if self.scope_customer_id is not None:
            conditions.append(Device.customer_id == self.scope_customer_id)
        if self.device_class is not None:
            conditions.append(Device.device_class == self.device_class)
        if self.state is not None:
            conditions.append(Device.state == self.state)
        if self.prefix:
            conditions.append(Device.id.like(_escaped(self.prefix) + "%", escape="\\"))
        if self.site is not None:
            conditions.append(Device.site == self.site)
        if self.tag:
            # Tags are a JSON list: the element as JSON text (quotes included) matches only whole tags.
            conditions.append(cast(Device.tags, String).like("%" + _escaped(json.dumps(self.tag)) + "%",
                                                             escape="\\"))
        if self.q:
            pattern = "%" + _escaped(self.q.lower()) + "%"
            named = select(Customer.id).where(func.lower(Customer.name).like(pattern, escape="\\"))
            conditions.append(or_(func.lower(Device.id).like(pattern, escape="\\"),
                                  func.lower(Device.name).like(pattern, escape="\\"),
                                  func.lower(Device.site).like(pattern, escape="\\"),
                                  Device.customer_id.in_(named)))
        if self.health:
            conditions.append(health_column(worst or {}).in_(self.health))
        return conditions


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Problems first: the order of a fleet list sorted by health.
HEALTH_ORDER = (DeviceHealth.RED, DeviceHealth.ORANGE, DeviceHealth.OFFLINE, DeviceHealth.UNKNOWN, DeviceHealth.GREEN)


def health_column(worst: dict[str, str]) -> ColumnElement[str]:
    """A device's health as SQL, from its state and the fleet's active alerts (as `health_of`)."""
    red = [d for d, s in worst.items() if s == Severity.RED]
    orange = [d for d, s in worst.items() if s == Severity.ORANGE]
    whens: list[tuple[ColumnElement[bool], str]] = [(Device.state == DeviceState.OFFLINE.value,
                                                      DeviceHealth.OFFLINE.value)]
    if red:
        whens.append((Device.id.in_(red), DeviceHealth.RED.value))
    if orange:
        whens.append((Device.id.in_(orange), DeviceHealth.ORANGE.value))
    whens.append((Device.state == DeviceState.ONLINE.value, DeviceHealth.GREEN.value))
    return case(*whens, else_=DeviceHealth.UNKNOWN.value)


def health_rank(worst: dict[str, str]) -> ColumnElement[int]:
    column = health_column(worst)
    return case(*((column == h.value, rank) for rank, h in enumerate(HEALTH_ORDER)), else_=len(HEALTH_ORDER))


def list_devices(
    session: Session, where: DeviceFilter, *, limit: int, cursor: str | None, worst: dict[str, str] | None = None,
) -> tuple[list[Device], str | None]:
    """A page of devices by id, after `cursor` (keyset paging)."""
    # A device's address is sealed: decrypting it for every device of the fleet on every refresh
    # would cost more than the rest of the list; a device's own answer has it.
    query = select(Device).options(defer(Device.address)).where(*where.where(worst))
    if cursor:
        (after,) = decode_cursor(cursor, (str,))
        query = query.where(Device.id > after)
    rows = list(session.scalars(query.order_by(Device.id).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor([rows[-1].id])


# sort name -> the order of a numbered page (the device id last, so the order is total).
DEVICE_SORTS = ("health", "id", "group")


def page_of_devices(
    session: Session, where: DeviceFilter, worst: dict[str, str], *, sort: str, page: int, per_page: int,
) -> list[Device]:
    """Page `page` (from 1) of `per_page` devices; `health` puts problems first, `group` sorts by
    customer and site (problems first within each)."""
    if sort == "id":
        order: list[Any] = [Device.id]
    elif sort == "group":
        customer = select(Customer.name).where(Customer.id == Device.customer_id).scalar_subquery()
        order = [customer.is_(None), customer, Device.site.is_(None), Device.site, health_rank(worst), Device.id]
    else:
        order = [health_rank(worst), Device.id]
    ids = list(session.scalars(select(Device.id).where(*where.where(worst)).order_by(*order)
                               .offset((page - 1) * per_page).limit(per_page)))
    if not ids:
        return []
    loaded = {d.id: d for d in session.scalars(
        select(Device).options(defer(Device.address), selectinload(Device.customer)).where(Device.id.in_(ids)))}
    return [loaded[i] for i in ids if i in loaded]


def health_counts(session: Session, where: DeviceFilter, worst: dict[str, str]) -> dict[str, int]:
    """How many devices of the list (its filters, any health) are in each health state."""
    unfiltered = DeviceFilter(**{**where.__dict__, "health": ()})
    column = health_column(worst)
    rows = session.execute(select(column, func.count()).where(*unfiltered.where(worst)).group_by(column)).all()
    counts = {h.value: 0 for h in HEALTH_ORDER}
    counts.update({health: n for health, n in rows})
    return counts


@dataclass(frozen=True)
class DeviceGroup:
    customer_id: int | None
    customer_name: str | None
    site: str | None
    counts: dict[str, int]


def device_groups(session: Session, where: DeviceFilter, worst: dict[str, str]) -> list[DeviceGroup]:
    """The list's devices counted per (customer, site) and health, groups with problems first."""
    column = health_column(worst)
    rows = session.execute(
        select(Device.customer_id, Device.site, column, func.count()).where(*where.where(worst))
        .group_by(Device.customer_id, Device.site, column)
    ).all()
    names = dict(session.execute(select(Customer.id, Customer.name)).all())
    groups: dict[tuple[int | None, str | None], dict[str, int]] = {}
    for customer_id, site, health, n in rows:
        counts = groups.setdefault((customer_id, site), {h.value: 0 for h in HEALTH_ORDER})
        counts[health] = n
    out = [DeviceGroup(c, names.get(c) if c is not None else None, s, counts) for (c, s), counts in groups.items()]
    problems = (DeviceHealth.RED, DeviceHealth.ORANGE, DeviceHealth.OFFLINE)
    out.sort(key=lambda g: (-sum(g.counts[p] for p in problems), g.customer_name or "\uffff", g.site or "\uffff"))
    return out


def device_for(session: Session, device_id: str, scope_customer_id: int | None) -> Device | None:
    device = session.get(Device, device_id)
    if device is None or (scope_customer_id is not None and device.customer_id != scope_customer_id):
        return None
    return device
