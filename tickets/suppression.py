"""Whether an alert opens its own ticket, waits in a maintenance window, joins its failed parent's
ticket, or joins a mass-event incident; holding such alerts and releasing them when the reason ends.

`decide` is the whole rule, pure: facts in, verdict out (docs/noise.md states it). The rest gathers
the facts from the database, records held alerts (`alert_holds`) and releases them:

- `intercept` is called by `tickets.opening` for every alert transition and offline/online event
  before a ticket is opened; it says whether the alert is held (then no ticket, nobody told).
- `opened` is called when a device's own ticket opens: its customer's message may wait
  (`customer_wait`), and a ticket that can explain children (offline, red latency or packet loss)
  adopts the children's tickets of the same story opened just before.
- `sweep` re-decides every held alert (the ticket runtime's scheduler calls it at least every
  `reconcile_seconds`, and at the end of a window that holds one): a window ended, a parent
  recovered, an incident closed → the alert, if still active, opens its ticket at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import rules
from tickets import audit, incidents, prefetch, windows
from tickets.alerts import stored_alerts
from tickets.core import Context, find_open
from tickets.models import OPEN_STATUSES, AlertHold, Device, DeviceState, HoldReason, Ticket, TicketKind

logger = logging.getLogger(__name__)

OFFLINE = "offline"
# The alerts a failed parent explains, and the parent's alerts that count as "failed" when red.
PARENT_KINDS = frozenset({OFFLINE, "latency_ms", "packet_loss_percent"})
PARENT_RED_METRICS = ("latency_ms", "packet_loss_percent")
MAX_DEPTH = 32  # parent chains are checked for loops when set; this only bounds a walk
ACTOR = "collector"


class Verdict(StrEnum):
    OWN_TICKET = "own_ticket"
    WINDOW = "window"
    PARENT = "parent"
    JOIN_INCIDENT = "join_incident"
    NEW_INCIDENT = "new_incident"


@dataclass(frozen=True)
class Facts:
    """What the decision needs about one alert of one device."""

    kind: str  # the metric, or "offline"
    window: int | None = None  # a running maintenance window covering the device
    failed_ancestor: str | None = None  # the topmost failed gateway/uplink above the device
    group: str | None = None  # "site:<name>" or "customer:<id>": where mass events are counted
    open_incident: int | None = None  # the open incident ticket of (group, kind)
    recent_devices: int = 0  # other devices of the group whose own ticket of this kind opened within W
    min_devices: int = 10  # N; 0 turns mass events off


def decide(f: Facts) -> Verdict:
    """Window first (nobody is told), then a failed parent, then a mass event, else its own ticket."""
    if f.window is not None:
        return Verdict.WINDOW
    if f.failed_ancestor is not None and f.kind in PARENT_KINDS:
        return Verdict.PARENT
    if f.group is None or f.min_devices <= 0:
        return Verdict.OWN_TICKET
    if f.open_incident is not None:
        return Verdict.JOIN_INCIDENT
    if f.recent_devices + 1 >= f.min_devices:
        return Verdict.NEW_INCIDENT
    return Verdict.OWN_TICKET


# While a held alert is released into its own ticket, `intercept` lets it through.
_releasing: ContextVar[bool] = ContextVar("releasing", default=False)


@contextmanager
def _letting_through() -> Iterator[None]:
    token = _releasing.set(True)
    try:
        yield
    finally:
        _releasing.reset(token)


# ---------------------------------------------------------------- facts from the database


def _offline(session: Session, device_id: str) -> bool:
    """Read from the row, not the session's copy: the collector marks devices with plain UPDATEs."""
    row = session.execute(select(Device.state, Device.decommissioned_at).where(Device.id == device_id)).one_or_none()
    return row is not None and row.state == DeviceState.OFFLINE.value and row.decommissioned_at is None


def is_failed(session: Session, device: Device) -> bool:
    """Offline, or red on latency or packet loss."""
    if device.decommissioned_at is not None:
        return False
    if _offline(session, device.id):
        return True
    alerts = stored_alerts(session, [device.id])
    return any(alerts.get((device.id, metric)) == rules.Severity.RED.value for metric in PARENT_RED_METRICS)


def failed_ancestor(session: Session, device: Device | None, known: dict[str, bool] | None = None) -> str | None:
    """The topmost failed device among those `device` sits behind, or None. `known` remembers
    devices already looked at (one sweep looks at one gateway for all its children)."""
    known = {} if known is None else known
    found: str | None = None
    seen = {device.id} if device is not None else set()
    current = device.parent_id if device is not None else None
    while current is not None and current not in seen and len(seen) < MAX_DEPTH:
        seen.add(current)
        parent = session.get(Device, current)
        if parent is None:
            break
        if parent.id not in known:
            known[parent.id] = is_failed(session, parent)
        if known[parent.id]:
            found = parent.id
        current = parent.parent_id
    return found


def gather(
    ctx: Context, session: Session, device_id: str, kind: str, at: datetime, *,
    mass_events: bool = True, window_list: Sequence[windows.Window] | None = None,
    known: dict[str, bool] | None = None,
) -> Facts:
    device = session.get(Device, device_id)
    if window_list is None:
        window_list = windows.all_windows(session)
    running = windows.running(window_list, windows.DeviceFacts.of(device, device_id), at)
    ancestor = failed_ancestor(session, device, known) if kind in PARENT_KINDS and running is None else None
    group = incidents.group_of(device) if mass_events else None
    open_incident = recent = 0
    if group is not None and running is None and ancestor is None:
        incident = find_open(session, incidents.open_key(group, kind))
        open_incident = incident.id if incident is not None else 0
        if not open_incident:
            recent = incidents.recent_devices(session, group, kind, at - ctx.noise.incident_window,
                                              exclude=device_id)
    return Facts(kind, running[0].id if running else None, ancestor, group, open_incident or None, recent,
                 ctx.noise.incident_min_devices)


# ---------------------------------------------------------------- holds


def active_hold(session: Session, key: str) -> AlertHold | None:
    return session.scalars(select(AlertHold).where(AlertHold.active_key == key)).one_or_none()


def hold(session: Session, device_id: str, kind: str, reason: HoldReason, at: datetime, details: dict[str, Any], *,
         severity: str | None = None, window_id: int | None = None, parent_id: str | None = None,
         ticket: Ticket | None = None) -> AlertHold:
    """Record (or re-point) the hold of the alert `device/kind`; the listing ticket learns it has related alerts."""
    key = f"{device_id}/{kind}"
    scope = prefetch.current(session)
    if ticket is not None and scope is not None and scope.holds(ticket):
        scope.settle(session)  # the hold refers to the ticket: its row must exist before the hold's is written
    row = active_hold(session, key)
    if row is None:
        row = AlertHold(device_id=device_id, kind=kind, active_key=key, held_at=at, details=details,
                        reason=reason.value)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:  # another collector held it first
            row = active_hold(session, key)
            if row is None:
                raise
    row.reason, row.window_id, row.parent_id = reason.value, window_id, parent_id
    row.ticket_id = ticket.id if ticket is not None else None
    row.severity = severity
    row.details = details
    if ticket is not None and not (ticket.details or {}).get("related"):
        ticket.details = {**(ticket.details or {}), "related": True}
    return row


def any_held(session: Session) -> bool:
    return session.scalar(select(AlertHold.id).where(AlertHold.active_key.is_not(None)).limit(1)) is not None


def release(row: AlertHold, at: datetime, outcome: str) -> None:
    row.active_key = None
    row.released_at = at
    row.outcome = outcome[:200]


def related(session: Session, ticket_id: int, customer_id: int | None = None) -> list[AlertHold]:
    """The alerts a ticket lists (held on it now), oldest first; with `customer_id`, only those of that
    customer's devices (a gateway may serve devices of several customers)."""
    query = select(AlertHold).where(AlertHold.ticket_id == ticket_id, AlertHold.active_key.is_not(None))
    if customer_id is not None:
        query = query.join(Device, Device.id == AlertHold.device_id).where(Device.customer_id == customer_id)
    return list(session.scalars(query.order_by(AlertHold.id)))


# ---------------------------------------------------------------- the seam used by tickets.opening


def intercept(ctx: Context, session: Session, device_id: str, kind: str, details: dict[str, Any], *,
              severity: str | None = None) -> bool:
    """A raised (or escalated, or offline) alert with no open ticket of its own: True when it is held
    (no ticket, nobody told), False when its own ticket should open."""
    if _releasing.get() or find_open(session, f"{device_id}/{kind}") is not None:
        return False
    at = ctx.now()
    facts = gather(ctx, session, device_id, kind, at)
    verdict = decide(facts)
    if verdict == Verdict.OWN_TICKET:
        return False
    before = active_hold(session, f"{device_id}/{kind}")
    listed_on = before.ticket_id if before is not None else None  # an escalation of a held alert: listed already
    if verdict == Verdict.WINDOW:
        hold(session, device_id, kind, HoldReason.WINDOW, at, details, severity=severity, window_id=facts.window)
    elif verdict == Verdict.PARENT:
        assert facts.failed_ancestor is not None
        listing = listing_ticket(session, facts.failed_ancestor)
        hold(session, device_id, kind, HoldReason.PARENT, at, details, severity=severity,
             parent_id=facts.failed_ancestor, ticket=listing)
        if listing is not None and listing.id != listed_on:
            _list_on(session, listing, device_id, kind, at, f"behind {facts.failed_ancestor}")
    else:
        assert facts.group is not None
        incident = incidents.open_or_join(ctx, session, facts.group, kind, device_id, severity, at)
        hold(session, device_id, kind, HoldReason.INCIDENT, at, details, severity=severity, ticket=incident)
        if verdict == Verdict.NEW_INCIDENT:
            for folded in incidents.recent_tickets(session, facts.group, kind, at - ctx.noise.incident_window,
                                                   exclude=device_id):
                _fold(ctx, session, folded, incident, HoldReason.INCIDENT, at)
            incidents.announce(ctx, session, incident, at)
        elif incident.id != listed_on:
            _list_on(session, incident, device_id, kind, at, "part of the mass event")
    logger.debug("alert %s/%s held: %s", device_id, kind, verdict.value)
    return True


def cleared(ctx: Context, session: Session, device_id: str, kind: str) -> None:
    """The alert `device/kind` is over: its hold (if any) ends; devices it explained are re-decided."""
    row = active_hold(session, f"{device_id}/{kind}")
    at = ctx.now()
    if row is not None:
        release(row, at, "cleared")
    if kind in PARENT_KINDS:
        parent_recovered(ctx, session, device_id)


def parent_recovered(ctx: Context, session: Session, device_id: str) -> None:
    """`device_id` may no longer be failed: the alerts it explained are re-decided now."""
    device = session.get(Device, device_id)
    if device is not None and is_failed(session, device):
        return
    for row in session.scalars(select(AlertHold).where(AlertHold.parent_id == device_id,
                                                       AlertHold.active_key.is_not(None)).order_by(AlertHold.id)):
        _redecide(ctx, session, row)


def listing_ticket(session: Session, device_id: str) -> Ticket | None:
    """The ticket that carries a failed device's trouble: its own offline, latency or packet-loss
    ticket, or the one its own hold lists it on."""
    for kind in (OFFLINE, *PARENT_RED_METRICS):
        ticket = find_open(session, f"{device_id}/{kind}")
        if ticket is not None:
            return ticket
    for kind in (OFFLINE, *PARENT_RED_METRICS):
        row = active_hold(session, f"{device_id}/{kind}")
        if row is not None and row.ticket_id is not None:
            return session.get(Ticket, row.ticket_id)
    return None


def opened(ctx: Context, session: Session, ticket: Ticket) -> None:
    """A device's own ticket just opened: with `customer_wait`, its customer's message waits that long
    (a mass event forming meanwhile withdraws it); and children it explains are adopted."""
    if ctx.noise.customer_wait and incidents.group_of(session.get(Device, ticket.device_id or "")) is not None:
        incidents.postpone_customer_messages(session, ticket, ctx.now() + ctx.noise.customer_wait)
    adopt_children(ctx, session, ticket)


def adopt_children(ctx: Context, session: Session, ticket: Ticket) -> None:
    """A parent's ticket just opened: its descendants' offline, latency and packet-loss tickets opened
    within the mass-event window W (they raced the parent's own alert) are folded into it."""
    if ticket.device_id is None:
        return
    if ticket.kind != TicketKind.OFFLINE.value and not (
            ticket.metric in PARENT_RED_METRICS and ticket.severity == rules.Severity.RED.value):
        return
    since = ctx.now() - ctx.noise.incident_window
    frontier, seen = [ticket.device_id], {ticket.device_id}
    while frontier and len(seen) < 10_000:
        children = list(session.scalars(select(Device.id).where(Device.parent_id.in_(frontier))))
        frontier = [c for c in children if c not in seen]
        seen.update(frontier)
        if not frontier:
            break
        incidents.settled(session)  # children's tickets opened earlier in this batch are rows now
        for child_ticket in session.scalars(
                select(Ticket).where(Ticket.device_id.in_(frontier), Ticket.open_key.is_not(None),
                                     Ticket.opened_at >= since).order_by(Ticket.id)):
            kind = child_ticket.metric if child_ticket.kind != TicketKind.OFFLINE.value else OFFLINE
            if kind in PARENT_KINDS and child_ticket.kind != TicketKind.INCIDENT.value:
                _fold(ctx, session, child_ticket, ticket, HoldReason.PARENT, ctx.now(), parent_id=ticket.device_id)


def _list_on(session: Session, ticket: Ticket, device_id: str, kind: str, at: datetime, why: str) -> None:
    audit.record(session, ticket, actor=ACTOR, action="related_added", at=at, field="related_devices",
                 new=f"{device_id}/{kind}", reason=why)


def _fold(ctx: Context, session: Session, own: Ticket, into: Ticket, reason: HoldReason, at: datetime,
          parent_id: str | None = None) -> None:
    """A device's own ticket becomes a line of `into`: cancelled as part of it, its alert held there,
    its messages not yet sent withdrawn."""
    assert own.device_id is not None
    kind = OFFLINE if own.kind == TicketKind.OFFLINE.value else str(own.metric)
    why = f"part of ticket #{into.id}" + (f" (behind {parent_id})" if parent_id else " (mass event)")
    incidents.merge_into(ctx, session, own, into, at, why)
    hold(session, own.device_id, kind, reason, at, {**(own.details or {}), "folded_ticket": own.id},
         severity=own.severity, parent_id=parent_id, ticket=into)
    _list_on(session, into, own.device_id, kind, at, why)


# ---------------------------------------------------------------- releasing


def _still_active(session: Session, row: AlertHold) -> str | None:
    """The alert's current severity ("offline" for offline), or None when it is over."""
    if row.kind == OFFLINE:
        return OFFLINE if _offline(session, row.device_id) else None
    return stored_alerts(session, [row.device_id]).get((row.device_id, row.kind))


def _valid(ctx: Context, session: Session, row: AlertHold, at: datetime,
           window_list: Sequence[windows.Window], known: dict[str, bool] | None = None) -> bool:
    """Whether the hold's reason still holds, as it was decided."""
    if row.reason == HoldReason.INCIDENT.value:
        ticket = session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
        return ticket is not None and ticket.status in {s.value for s in OPEN_STATUSES}
    facts = gather(ctx, session, row.device_id, row.kind, at, mass_events=False, window_list=window_list,
                   known=known)
    if row.reason == HoldReason.WINDOW.value:
        return facts.window is not None
    return facts.window is None and facts.failed_ancestor == row.parent_id


def _redecide(ctx: Context, session: Session, row: AlertHold) -> str:
    """Release the hold and treat the alert as raised now: held again (for another reason) or its own
    ticket at once. After an incident, mass events are not counted again (its own ticket)."""
    at = ctx.now()
    severity = _still_active(session, row)
    if severity is None:
        release(row, at, "cleared")
        return "cleared"
    after_incident = row.reason == HoldReason.INCIDENT.value
    release(row, at, "re-decided")
    details = dict(row.details or {})
    if after_incident:
        facts = gather(ctx, session, row.device_id, row.kind, at, mass_events=False)
        if decide(facts) == Verdict.OWN_TICKET:
            with _letting_through():
                ticket = _open_own(ctx, session, row, severity, details)
            row.outcome = f"own ticket #{ticket.id}" if ticket is not None else "no ticket"
            return row.outcome
    ticket = _open_own(ctx, session, row, severity, details)
    row.outcome = f"own ticket #{ticket.id}" if ticket is not None else "held again"
    return row.outcome


def _open_own(ctx: Context, session: Session, row: AlertHold, severity: str, details: dict[str, Any]) -> Ticket | None:
    from tickets import opening  # opening calls this module: imported when first needed

    if row.kind == OFFLINE:
        since = details.get("last_seen")
        at = datetime.fromisoformat(since) if isinstance(since, str) else row.held_at
        return opening.on_device_offline(ctx, session, row.device_id, at)
    transition = rules.Transition(
        event=rules.Event.RAISED, severity=rules.Severity(severity), device_id=row.device_id, metric=row.kind,
        seq=int(details.get("seq", 0)), ts=float(details.get("ts", row.held_at.timestamp())),
        value=float(details.get("value", 0.0)), threshold=float(details.get("threshold", 0.0)),
        red_level=float(details.get("red_level", 0.0)))
    recent = [(float(ts), float(v)) for ts, v in details.get("recent", [])]
    return opening.on_transition(ctx, session, transition, recent)


def sweep(ctx: Context, session: Session) -> datetime | None:
    """Re-decide every held alert whose reason ended; returns the next instant a running window that
    holds an alert ends (for the scheduler to come back then), or None."""
    at = ctx.now()
    rows = list(session.scalars(select(AlertHold).where(AlertHold.active_key.is_not(None)).order_by(AlertHold.id)))
    released = 0
    window_list = windows.all_windows(session) if rows else []
    known: dict[str, bool] = {}  # failed or not, per device, as this sweep found it
    for row in rows:
        if row.active_key is None:  # released by an earlier one of this sweep (a parent's recovery)
            continue
        if not _valid(ctx, session, row, at, window_list, known):
            outcome = _redecide(ctx, session, row)
            released += 1
            logger.info("held alert %s/%s (%s) released: %s", row.device_id, row.kind, row.reason, outcome)
    if released:
        session.flush()
    return next_window_end(session, at)


def next_window_end(session: Session, at: datetime) -> datetime | None:
    ids = set(session.scalars(select(AlertHold.window_id).where(AlertHold.active_key.is_not(None),
                                                                AlertHold.window_id.is_not(None))))
    ends = []
    for window in windows.all_windows(session):
        if window.id in ids:
            occurrence = windows.occurrence_at(window, at)
            if occurrence is not None:
                ends.append(occurrence[1])
    return min(ends) if ends else None


def unexplained(session: Session, at: datetime | None = None) -> list[str]:
    """Every active alert ("device/metric", "device/offline") with neither an open ticket of its own
    nor a hold: the invariant says this list is empty."""
    keys = {f"{d}/{m}" for d, m in stored_alerts(session)}
    keys |= {f"{d}/{OFFLINE}" for d in session.scalars(
        select(Device.id).where(Device.state == DeviceState.OFFLINE.value, Device.decommissioned_at.is_(None)))}
    if not keys:
        return []
    ticketed = set(session.scalars(select(Ticket.open_key).where(Ticket.open_key.in_(keys))))
    held = set(session.scalars(select(AlertHold.active_key).where(AlertHold.active_key.in_(keys))))
    return sorted(keys - ticketed - held)


def held_view(session: Session, keys: Sequence[str]) -> dict[str, AlertHold]:
    """Active holds by key, for the alert listing."""
    if not keys:
        return {}
    return {row.active_key: row for row in session.scalars(select(AlertHold).where(AlertHold.active_key.in_(keys)))
            if row.active_key is not None}
