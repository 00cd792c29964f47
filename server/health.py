"""The fleet's active alerts at a glance, kept up to date incrementally for the whole fleet.

Filtering and counting devices by health needs every device's worst active alert, and that lives
in the rule engine's snapshots (`rule_states`, one JSON document per device). Decoding 10 000 of
them for each list request would cost more than the rest of the request, so this index keeps the
worst severity per device and, on each use, re-reads only the snapshots whose `updated_at` moved.
A snapshot count and newest update time are checked first: an unchanged fleet costs one aggregate.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rules import RuleEngine, SnapshotError
from tickets.models import RuleState, Severity

RANK = {Severity.RED.value: 2, Severity.ORANGE.value: 1}


class AlertIndex:
    """Device id -> worst active severity (`red`/`orange`), shared by the request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamp: tuple[int, datetime | None] | None = None
        self._updated: dict[str, datetime] = {}
        self._worst: dict[str, str] = {}

    def worst(self, session: Session) -> dict[str, str]:
        """Every device with an active alert and its worst severity (a copy, safe to keep)."""
        # The database is read without holding the lock: on SQLite every transaction takes the
        # database's lock, and a thread holding it may be waiting for ours.
        count, newest = session.execute(select(func.count(), func.max(RuleState.updated_at))).one()
        stamp: tuple[int, datetime | None] = (count, newest)
        with self._lock:
            if self._stamp == stamp:
                return dict(self._worst)
            known = dict(self._updated)
        seen = {d: at for d, at in session.execute(select(RuleState.device_id, RuleState.updated_at))}
        changed = [d for d, at in seen.items() if known.get(d) != at]
        read: list[tuple[str, datetime, str | None]] = []
        for chunk in _chunks(changed, 500):
            for device_id, state, at in session.execute(
                    select(RuleState.device_id, RuleState.state, RuleState.updated_at)
                    .where(RuleState.device_id.in_(chunk))):
                read.append((device_id, at, worst_of(device_id, state)))
        with self._lock:
            for gone in set(self._updated) - set(seen):
                self._updated.pop(gone, None)
                self._worst.pop(gone, None)
            for device_id, at, severity in read:
                self._updated[device_id] = at
                if severity is None:
                    self._worst.pop(device_id, None)
                else:
                    self._worst[device_id] = severity
            self._stamp = stamp
            return dict(self._worst)


def worst_of(device_id: str, state: dict[str, object]) -> str | None:
    """The worst active severity in one device's snapshot; None for none (or another engine's format)."""
    engine = RuleEngine()
    try:
        engine.restore_device(device_id, state)
    except SnapshotError:
        return None
    severities = [s.value for s in engine.active_alerts().values()]
    return max(severities, key=lambda s: RANK.get(s, 0)) if severities else None


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
