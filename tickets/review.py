"""Quality review: tickets to look at again, the monthly 10 % sample, overdue clocks, fault statistics.

From the service plan: a ticket closed more than 20 % past its committed time, or missing 3 or
more key fields, is flagged; every month 10 % of the closed tickets are drawn for review; breaches
call for an overdue analysis; the monthly report shows which problems and modules fail most, and
which faults recur on one device (`tickets.knowledge.repeated_faults`, with the entries used on them).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tickets.knowledge import RepeatedFault, repeated_faults
from tickets.models import Clock, Device, Level, Ticket, TicketStatus
from tickets.policy import ESCALATION

LATE_FACTOR = 1.2  # closed more than 20 % past the committed time
MISSING_LIMIT = 3
SAMPLE_FRACTION = 0.10

# What first-line staff must log on every ticket; red tickets also owe a root-cause report.
KEY_FIELDS = ("description", "first_judgement", "contact_name", "assignee", "customer_id", "engineer_level")


@dataclass(frozen=True)
class Flag:
    ticket_id: int
    reasons: tuple[str, ...]
    missing: tuple[str, ...]
    overrun: float | None  # time to close / committed time - 1 (0.25 = 25 % late)


def missing_fields(ticket: Ticket) -> tuple[str, ...]:
    missing = [name for name in KEY_FIELDS if getattr(ticket, name) in (None, "")]
    if ticket.level == Level.RED and not ticket.rca:
        missing.append("rca")
    return tuple(missing)


def overrun(ticket: Ticket) -> float | None:
    """How far past its committed time the ticket was closed (None: not closed or no commitment)."""
    if ticket.closed_at is None or ticket.committed_at is None:
        return None
    committed = (ticket.committed_at - ticket.opened_at).total_seconds()
    if committed <= 0:
        return None
    return (ticket.closed_at - ticket.opened_at).total_seconds() / committed - 1


def flag(ticket: Ticket) -> Flag | None:
    reasons = []
    late = overrun(ticket)
    if late is not None and late > LATE_FACTOR - 1:
        reasons.append(f"closed {late:.0%} past its committed time")
    missing = missing_fields(ticket)
    if len(missing) >= MISSING_LIMIT:
        reasons.append(f"missing {len(missing)} key fields: {', '.join(missing)}")
    return Flag(ticket.id, tuple(reasons), missing, late) if reasons else None


def _closed_between(session: Session, start: datetime, end: datetime) -> list[Ticket]:
    return list(session.scalars(
        select(Ticket)
        .where(Ticket.status == TicketStatus.CLOSED.value, Ticket.closed_at >= start, Ticket.closed_at < end)
        .order_by(Ticket.id)
    ))


def flagged(session: Session, start: datetime, end: datetime) -> list[Flag]:
    """The tickets closed in [start, end) that need a second look, with the reasons."""
    return [f for f in map(flag, _closed_between(session, start, end)) if f is not None]


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def monthly_sample(session: Session, year: int, month: int, fraction: float = SAMPLE_FRACTION) -> list[int]:
    """10 % (rounded up) of the tickets closed in the month, drawn at random; the same month always
    draws the same tickets, so the list can be reproduced when the review is audited."""
    start, end = month_bounds(year, month)
    ids = [t.id for t in _closed_between(session, start, end)]
    size = math.ceil(len(ids) * fraction)
    return sorted(random.Random(f"edgewatch-review-{year:04d}-{month:02d}").sample(ids, size))


@dataclass(frozen=True)
class Overdue:
    ticket_id: int
    clock: str
    due_at: datetime
    stopped_at: datetime | None  # None: still not done
    late_s: float  # how long past due it was stopped (or is, until `now`)


def overdue(session: Session, start: datetime, end: datetime, now: datetime) -> list[Overdue]:
    """Clocks that breached in [start, end): the material of the overdue analysis."""
    rows = session.scalars(
        select(Clock)
        .where(Clock.breached_at.is_not(None), Clock.breached_at >= start, Clock.breached_at < end,
               Clock.name != ESCALATION)
        .order_by(Clock.breached_at)
    )
    return [
        Overdue(c.ticket_id, c.name, c.due_at, c.stopped_at, ((c.stopped_at or now) - c.due_at).total_seconds())
        for c in rows
    ]


@dataclass(frozen=True)
class MonthlyReport:
    opened: int
    by_kind: dict[str, int]
    by_metric: dict[str, int]
    by_device_class: dict[str, int]
    top_devices: list[tuple[str, int]]  # the most frequent faulty modules
    # devices and metrics with `repeat_count` or more tickets opened in the month
    repeated_faults: list[RepeatedFault] = field(default_factory=list)


def monthly_report(session: Session, year: int, month: int, top: int = 10, repeat_count: int = 3) -> MonthlyReport:
    """The distribution of problem types, the most frequent faulty devices and the repeated faults of
    tickets opened in the month."""
    start, end = month_bounds(year, month)
    rows = session.execute(
        select(Ticket.kind, Ticket.metric, Ticket.device_id, Device.device_class)
        .outerjoin(Device, Device.id == Ticket.device_id)
        .where(Ticket.opened_at >= start, Ticket.opened_at < end)
    ).all()
    kinds, metrics, classes, devices = Counter[str](), Counter[str](), Counter[str](), Counter[str]()
    for kind, metric, device_id, device_class in rows:
        kinds[kind] += 1
        metrics[metric or kind] += 1
        classes[device_class or "unknown"] += 1
        if device_id:
            devices[device_id] += 1
    return MonthlyReport(len(rows), dict(kinds), dict(metrics), dict(classes), devices.most_common(top),
                         repeated_faults(session, start, end, at_least=repeat_count))
