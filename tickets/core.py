"""What every ticket operation shares: the policy, the time source, links, and clock bookkeeping.

`Context` is built once by `TicketService`; the operations in `opening`, `actions` and `firing`
take it as their first argument. Clocks created or moved in a transaction are remembered here and
handed to the scheduler by `TicketService.after_commit`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tickets import audit, prefetch, sla
from tickets.clock import Clock
from tickets.errors import TicketNotFound
from tickets.models import AlertHold, Customer, Device, Ticket
from tickets.models import Clock as ClockRow
from tickets.notify.locale import ENGLISH_UTC, Locale
from tickets.notify.message import iso
from tickets.policy import ESCALATION, NoiseSettings, SlaPolicy

SURVEY_PATH = "/survey/{token}"


@dataclass
class Context:
    policy: SlaPolicy
    clock: Clock
    public_url: str = "http://localhost:8080"
    # The language and time zone of a recipient who has none set, nor their customer.
    locale: Locale = ENGLISH_UTC
    noise: NoiseSettings = field(default_factory=NoiseSettings)
    # Per thread: each thread runs its own transaction and then its own after_commit, so one
    # thread never hands over clocks of another thread's transaction that is not committed yet.
    _local: threading.local = field(default_factory=threading.local)

    def now(self) -> datetime:
        return self.clock.now()

    def touch(self, clock: ClockRow) -> None:
        """Remember a clock whose next instant changed, to be scheduled after the commit."""
        pending = getattr(self._local, "pending", None)
        if pending is None:
            pending = self._local.pending = []
        pending.append(clock)

    def forget_touched(self) -> None:
        """Drop what this thread touched without reading it: after a rollback the clock objects are
        expired, and reading one would go to the database, which may be the very thing that failed."""
        self._local.pending = []

    def touched_mark(self) -> int:
        """Where this thread's list of touched clocks ends now (for `forget_touched_since`)."""
        return len(getattr(self._local, "pending", None) or [])

    def forget_touched_since(self, mark: int) -> None:
        """Drop the clocks touched after `mark`: their savepoint was rolled back."""
        pending = getattr(self._local, "pending", None)
        if pending is not None:
            del pending[mark:]

    def take_touched(self) -> list[tuple[int, datetime | None]]:
        """The (clock id, next instant) pairs this thread touched since its last call."""
        pending = getattr(self._local, "pending", None) or []
        self._local.pending = []
        out: dict[int, datetime | None] = {}
        for clock in pending:
            if clock.id is not None:
                out[clock.id] = clock.next_fire_at
        return list(out.items())

    def ticket_link(self, ticket_id: int) -> str:
        return f"{self.public_url.rstrip('/')}/tickets/{ticket_id}"

    def knowledge_link(self, entry_id: int) -> str:
        return f"{self.public_url.rstrip('/')}/knowledge/{entry_id}"

    def survey_link(self, token: str) -> str:
        return self.public_url.rstrip("/") + SURVEY_PATH.format(token=token)


def load(session: Session, ticket_id: int) -> Ticket:
    """The ticket, locked for update (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers)."""
    ticket = session.scalars(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).one_or_none()
    if ticket is None:
        raise TicketNotFound(ticket_id)
    return ticket


def find_open(session: Session, open_key: str) -> Ticket | None:
    """The open ticket of the key, locked for update (from the batch's read, inside a batch)."""
    scope = prefetch.current(session)
    if scope is not None:
        known, ticket = scope.open_ticket(open_key)
        if known:
            return ticket
    return select_open(session, open_key)


def select_open(session: Session, open_key: str) -> Ticket | None:
    """The open ticket of the key as the database has it now, locked for update."""
    return session.scalars(select(Ticket).where(Ticket.open_key == open_key).with_for_update()).one_or_none()


def add_clock(ctx: Context, session: Session, ticket: Ticket, name: str, duration: timedelta, at: datetime) -> ClockRow:
    warnings = name != ESCALATION
    plan = sla.plan(
        name, at, duration,
        ctx.policy.warn_fractions if warnings else (),
        ctx.policy.warn_before if warnings else None,
    )
    clock = ClockRow(
        ticket_id=ticket.id, name=name, started_at=at, original_due_at=plan.due_at, due_at=plan.due_at,
        warn_at=sla.encode(plan.warn_at), warnings_sent=0,
        next_fire_at=sla.next_fire(plan.warn_at, 0, plan.due_at),
    )
    ticket.clocks.append(clock)
    scope = prefetch.current(session)
    if scope is not None and scope.holds(ticket):
        scope.new_clocks.append(clock)  # inserted with its ticket (`prefetch.Prefetched.settle`)
    else:
        session.add(clock)
    ctx.touch(clock)
    return clock


def clock_named(ticket: Ticket, name: str) -> ClockRow | None:
    return next((c for c in ticket.clocks if c.name == name), None)


def running(clock: ClockRow | None) -> bool:
    return clock is not None and clock.stopped_at is None and clock.breached_at is None


def stop_clocks(
    ctx: Context, session: Session, ticket: Ticket, names: tuple[str, ...] | None, *,
    actor: str, at: datetime, reason: str,
) -> list[str]:
    """Stop the named clocks (all when `names` is None) that still run; returns their names."""
    stopped = []
    for clock in ticket.clocks:
        if (names is None or clock.name in names) and clock.stopped_at is None:
            clock.stopped_at = at
            if clock.next_fire_at is not None:
                clock.next_fire_at = None
                ctx.touch(clock)
            audit.record(session, ticket, actor=actor, action="clock_stopped", at=at,
                         field=f"clocks.{clock.name}.stopped_at", new=at, reason=reason)
            stopped.append(clock.name)
    return stopped


def facts(ctx: Context, session: Session, ticket: Ticket, **extra: Any) -> dict[str, Any]:
    """What notifications about this ticket say (the notify renderers' facts)."""
    details = ticket.details or {}
    customer = session.get(Customer, ticket.customer_id) if ticket.customer_id else None
    device = session.get(Device, ticket.device_id) if ticket.device_id else None
    out: dict[str, Any] = {
        "ticket_id": ticket.id,
        "device_id": ticket.device_id,
        "device_name": device.name if device else None,
        "kind": ticket.kind,
        "level": ticket.level,
        "severity": ticket.severity,
        "metric": ticket.metric,
        "value": details.get("value"),
        "threshold": details.get("threshold"),
        # another monitor's alert (tickets.intake): which one, and what it said
        "source": details.get("source"),
        "alert": details.get("alert"),
        "summary": details.get("summary"),
        "status": ticket.status,
        "opened_at": iso(ticket.opened_at),
        "assignee": ticket.assignee,
        "customer": customer.name if customer else None,
        "site": device.site if device else None,
        "address": device.address if device else None,
        "clocks": [
            {"name": c.name, "due_at": iso(c.due_at), "stopped_at": iso(c.stopped_at) if c.stopped_at else None}
            for c in ticket.clocks if c.name != ESCALATION
        ],
        "links": {"ticket": ctx.ticket_link(ticket.id)},
    }
    if details.get("related"):
        # Devices behind it (or in its mass event) whose alerts it carries: tickets.suppression.
        out["affected_devices"] = session.scalar(
            select(func.count()).select_from(AlertHold)
            .where(AlertHold.ticket_id == ticket.id, AlertHold.active_key.is_not(None))) or None
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}
