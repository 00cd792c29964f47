"""What needs attention now, for the dashboard's home view: open tickets nearest their SLA breach,
red and orange devices nobody has acknowledged, offline devices, and open predictive warnings. Each
list is capped; the totals say how many there are in all. Customers see only their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, defer, selectinload

from server.queries import LIST_COLUMNS, STAFF_ONLY_KINDS
from tickets.models import OPEN_STATUSES, Clock, Device, DeviceState, Ticket, TicketKind

OPEN = [s.value for s in OPEN_STATUSES]


@dataclass(frozen=True)
class ProblemDevice:
    device: Device
    health: str
    ticket_id: int | None  # its open ticket, not yet acknowledged (None: no ticket yet)


@dataclass(frozen=True)
class Attention:
    tickets: list[Ticket]
    tickets_total: int
    unacknowledged: list[ProblemDevice]
    unacknowledged_total: int
    offline: list[Device]
    offline_total: int
    predictive: list[Ticket]
    predictive_total: int


def _ticket_scope(scope: int | None) -> list[ColumnElement[bool]]:
    if scope is None:
        return []
    return [Ticket.customer_id == scope, Ticket.kind.not_in(STAFF_ONLY_KINDS)]


def _device_scope(scope: int | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Device.decommissioned_at.is_(None)]
    if scope is not None:
        conditions.append(Device.customer_id == scope)
    return conditions


def nearest_breach(session: Session, scope: int | None, limit: int) -> tuple[list[Ticket], int]:
    """Open tickets by their running clock due first (breached ones first of all)."""
    due = func.min(Clock.due_at).label("due")
    keyed = (select(Ticket.id, due).join(Clock, Clock.ticket_id == Ticket.id)
             .where(Ticket.status.in_(OPEN), Clock.stopped_at.is_(None), *_ticket_scope(scope))
             .group_by(Ticket.id))
    total = session.scalar(select(func.count()).select_from(keyed.subquery())) or 0
    ids = [row[0] for row in session.execute(keyed.order_by(due, Ticket.id).limit(limit))]
    loaded = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ids)).options(*LIST_COLUMNS))}
    return [loaded[i] for i in ids if i in loaded], total


def unacknowledged(session: Session, worst: dict[str, str], scope: int | None,
                   limit: int) -> tuple[list[ProblemDevice], int]:
    """Red and orange devices (red first) with no acknowledged open ticket."""
    problem = list(worst)
    if not problem:
        return [], 0
    acknowledged = set(session.scalars(select(Ticket.device_id).where(
        Ticket.device_id.in_(problem), Ticket.status.in_(OPEN), Ticket.acknowledged_at.is_not(None))))
    waiting = dict(session.execute(select(Ticket.device_id, func.min(Ticket.id)).where(
        Ticket.device_id.in_(problem), Ticket.status.in_(OPEN), Ticket.acknowledged_at.is_(None),
        Ticket.severity.is_not(None)).group_by(Ticket.device_id)).all())
    candidates = [d for d in problem if d not in acknowledged]
    devices = list(session.scalars(select(Device).options(defer(Device.address), selectinload(Device.customer))
                                   .where(Device.id.in_(candidates), Device.state != DeviceState.OFFLINE.value,
                                          *_device_scope(scope))))
    devices.sort(key=lambda d: (worst[d.id] != "red", d.customer.name if d.customer else "\uffff", d.site or "", d.id))
    return [ProblemDevice(d, worst[d.id], waiting.get(d.id)) for d in devices[:limit]], len(devices)


def offline(session: Session, scope: int | None, limit: int) -> tuple[list[Device], int]:
    """Offline devices, the latest to go first."""
    where = [Device.state == DeviceState.OFFLINE.value, *_device_scope(scope)]
    total = session.scalar(select(func.count()).select_from(Device).where(*where)) or 0
    rows = list(session.scalars(select(Device).options(defer(Device.address), selectinload(Device.customer))
                                .where(*where).order_by(Device.offline_since.desc().nulls_last(), Device.id)
                                .limit(limit)))
    return rows, total


def predictive(session: Session, scope: int | None, limit: int) -> tuple[list[Ticket], int]:
    where = [Ticket.kind == TicketKind.PREDICTIVE.value, Ticket.status.in_(OPEN), *_ticket_scope(scope)]
    total = session.scalar(select(func.count()).select_from(Ticket).where(*where)) or 0
    rows = list(session.scalars(select(Ticket).where(*where).options(*LIST_COLUMNS)
                                .order_by(Ticket.id.desc()).limit(limit)))
    return rows, total


def attention(session: Session, worst: dict[str, str], scope: int | None, limit: int = 50) -> Attention:
    tickets, tickets_total = nearest_breach(session, scope, limit)
    problems, problems_total = unacknowledged(session, worst, scope, limit)
    down, down_total = offline(session, scope, limit)
    warned, warned_total = predictive(session, scope, limit)
    return Attention(tickets, tickets_total, problems, problems_total, down, down_total, warned, warned_total)


def since(device: Device) -> datetime | None:
    return device.offline_since or device.last_seen_at
