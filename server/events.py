"""Live updates for the dashboard: what changed in the fleet and the ticket queue, as Server-Sent Events.

One `FleetChanges` per app watches the database for every open stream together: at most once per
poll interval it reads each device's signature (state, worst alert, open tickets, name, site,
customer) and the audit entries written since the last look, and numbers each change set with a
version. A stream (`GET /api/v1/events`) asks for the changes since the version it last sent, so a
thousand open dashboards cost one poll, and a reconnecting browser (`Last-Event-ID`) misses nothing
that is still in the short history; an older one is told to reload (`reset`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.health import AlertIndex
from tickets.models import OPEN_STATUSES, AuditEntry, Device, Ticket

# Change sets kept for streams that fall behind or reconnect; older ones get a `reset`.
HISTORY = 120
# More changed devices than this in one event: the stream sends `reset` and the page reloads its view.
MAX_ITEMS = 300

Signature = tuple[object, ...]


@dataclass(frozen=True)
class Changes:
    version: int
    devices: frozenset[str]
    tickets: frozenset[int]


class FleetChanges:
    """Numbered change sets of the fleet and the tickets, shared by every stream of one app."""

    def __init__(self, alerts: AlertIndex, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._alerts = alerts
        self._interval = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._polled_at: float | None = None
        self._version = 0
        self._devices: dict[str, Signature] = {}
        self._customers: dict[str, int | None] = {}
        self._audit_id: int | None = None
        self._history: deque[Changes] = deque(maxlen=HISTORY)

    @property
    def alerts(self) -> AlertIndex:
        return self._alerts

    @property
    def version(self) -> int:
        return self._version

    def poll(self, session: Session, *, force: bool = False) -> int:
        """Look for changes unless another stream did within the interval; the current version."""
        with self._lock:
            now = self._clock()
            if not force and self._polled_at is not None and now - self._polled_at < self._interval:
                return self._version
            first = self._polled_at is None
            self._polled_at = now
            devices = self._device_changes(session)
            tickets = self._ticket_changes(session)
            if not first and (devices or tickets):
                self._version += 1
                self._history.append(Changes(self._version, frozenset(devices), frozenset(tickets)))
            return self._version

    def since(self, version: int) -> Changes | None:
        """Everything changed after `version`, merged; None when that is too old to tell (reload)."""
        with self._lock:
            if version == self._version:
                return Changes(version, frozenset(), frozenset())
            if version > self._version or not self._history or self._history[0].version > version + 1:
                return None
            devices: set[str] = set()
            tickets: set[int] = set()
            for change in self._history:
                if change.version > version:
                    devices |= change.devices
                    tickets |= change.tickets
            return Changes(self._version, frozenset(devices), frozenset(tickets))

    def customer_of(self, device_id: str) -> int | None:
        return self._customers.get(device_id)

    def _device_changes(self, session: Session) -> set[str]:
        worst = self._alerts.worst(session)
        open_counts = dict(session.execute(
            select(Ticket.device_id, func.count())
            .where(Ticket.device_id.is_not(None), Ticket.status.in_([s.value for s in OPEN_STATUSES]))
            .group_by(Ticket.device_id)
        ).all())
        rows = session.execute(select(Device.id, Device.state, Device.name, Device.site, Device.customer_id,
                                      Device.decommissioned_at)).all()
        current: dict[str, Signature] = {}
        for device_id, state, name, site, customer_id, gone in rows:
            current[device_id] = (state, worst.get(device_id), open_counts.get(device_id, 0), name, site,
                                  customer_id, gone is not None)
            self._customers[device_id] = customer_id
        changed = {d for d, sig in current.items() if self._devices.get(d) != sig}
        changed |= set(self._devices) - set(current)
        self._devices = current
        return changed

    def _ticket_changes(self, session: Session) -> set[int]:
        if self._audit_id is None:
            self._audit_id = session.scalar(select(func.max(AuditEntry.id))) or 0
            return set()
        rows = session.execute(select(AuditEntry.id, AuditEntry.ticket_id).where(AuditEntry.id > self._audit_id)
                               .order_by(AuditEntry.id)).all()
        if rows:
            self._audit_id = rows[-1][0]
        return {ticket_id for _, ticket_id in rows if ticket_id is not None}


def event(name: str, data: str, event_id: int | None = None) -> str:
    """One Server-Sent Event (`data` is one line of JSON)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {data}\n\n"
