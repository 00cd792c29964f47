"""A processed batch written to the ticket database in one transaction.

Device rows, rule-engine snapshots of the devices the batch touched, dead letters, and the
ticket service's changes (tickets, clocks, audit, outbox rows) all commit together or not at all;
only then are the batch's messages acknowledged. This module turns a batch into the calls of
`tickets.ingest`, which owns those tables and their upserts (the same code on SQLite and
PostgreSQL, and several collectors can share one database); the caller commits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from operator import attrgetter, itemgetter
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from collector.devices import OFFLINE, DeviceEvent
from collector.pipeline import Batch
from rules import Transition
from rules.predict import PredictiveEvent
from tickets import ingest
from tickets.batch import Alert, Change, Offline, Online
from tickets.errors import DatabaseUnavailable
from tickets.ingest import Rejected, SeenDevice

logger = logging.getLogger(__name__)


class TicketSink(Protocol):
    """What the collector needs from `tickets.service.TicketService`."""

    def on_transitions(
        self, session: Session, changes: Sequence[Change], on_error: Callable[[int, Exception], None] | None = None
    ) -> Any: ...

    def on_transition(
        self, session: Session, transition: Transition, recent: Sequence[tuple[float, float]] = ()
    ) -> Any: ...

    def on_predictive(self, session: Session, event: PredictiveEvent) -> Any: ...

    def on_device_offline(self, session: Session, device_id: str, since: datetime) -> Any: ...

    def on_device_online(self, session: Session, device_id: str, at: datetime) -> Any: ...

    def after_commit(self) -> None: ...

    def after_rollback(self) -> None: ...


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# Reports a row the database refused on its own: (table, row key, error).
Unstorable = Callable[[str, str, Exception], None]
Row = TypeVar("Row")


def _savepoint(session: Session, action: Callable[[], Any]) -> Exception | None:
    """Run `action` in a savepoint; the error that rolled it back, if any. The database being
    unavailable (`DatabaseUnavailable`) is raised instead: then the whole batch waits and is retried."""
    try:
        with session.begin_nested():
            action()
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        return exc
    return None


def _guarded(session: Session, table: str, rows: Sequence[Row], key: Callable[[Row], object],
             write: Callable[[Session, Sequence[Row]], None], on_unstorable: Unstorable | None) -> None:
    """Write `rows`; with `on_unstorable`, in a savepoint, and when the database refuses them,
    again one row at a time: a refused row is reported and skipped, the rest are kept."""
    if on_unstorable is None:
        write(session, rows)
    elif _savepoint(session, partial(write, session, rows)) is not None:
        for row in rows:
            refused = _savepoint(session, partial(write, session, [row]))
            if refused is not None:
                on_unstorable(table, str(key(row)), refused)


def upsert_devices(session: Session, batch: Batch, on_unstorable: Unstorable | None = None) -> None:
    if not batch.registry:
        return
    rows = [
        SeenDevice(device_id, utc(seen.received_at), seen.agent_version, seen.interval_s, seen.instance, seen.seq,
                   seen.ts, seen.latest, seen.device_class)
        for device_id, seen in sorted(batch.registry.items())  # sorted: the same lock order in every process
    ]
    _guarded(session, "devices", rows, attrgetter("id"), ingest.record_seen, on_unstorable)


def upsert_rule_states(session: Session, states: Mapping[str, Any], on_unstorable: Unstorable | None = None) -> None:
    rows = [(device_id, states[device_id]) for device_id in sorted(states)]
    if rows:
        at = utc(time.time())
        _guarded(session, "rule_states", rows, itemgetter(0),
                lambda s, some: ingest.store_rule_states(s, some, at), on_unstorable)


def upsert_predictive_states(
    session: Session, rows: Mapping[str, Mapping[str, Any]], on_unstorable: Unstorable | None = None
) -> None:
    """The predictive monitor's per-device state and latest forecasts (`PredictiveStage.row`)."""
    if not rows:
        return
    at = utc(time.time())
    values = [(device_id, rows[device_id]["state"], rows[device_id]["forecasts"]) for device_id in sorted(rows)]
    _guarded(session, "predictive_states", values, itemgetter(0),
            lambda s, some: ingest.store_predictive_states(s, some, at), on_unstorable)


def insert_dead_letters(session: Session, batch: Batch, on_unstorable: Unstorable | None = None) -> None:
    if not batch.dead_letters:
        return
    rows = [Rejected(utc(d.received_at), d.topic, d.device_id, d.reason, d.detail, d.payload, d.payload_size)
            for d in batch.dead_letters]
    _guarded(session, "dead_letters", rows, attrgetter("topic"), ingest.insert_dead_letters, on_unstorable)


Subject = Transition | DeviceEvent | PredictiveEvent


def ticket_changes(batch: Batch) -> tuple[list[Change], list[Subject]]:
    """The batch's ticket changes in the order they are applied (predictive events in sample order
    among the transitions, then the devices' offline/online events), and what each came from."""
    changes: list[Change] = []
    subjects: list[Subject] = []
    predictions = iter(batch.predictions)
    pending = next(predictions, None)
    for index, (transition, recent) in enumerate(batch.transitions):
        while pending is not None and pending[0] <= index:
            changes.append(pending[1])
            subjects.append(pending[1])
            pending = next(predictions, None)
        changes.append(Alert(transition, recent))
        subjects.append(transition)
    while pending is not None:
        changes.append(pending[1])
        subjects.append(pending[1])
        pending = next(predictions, None)
    for event in batch.events:
        at = utc(event.at)
        changes.append(Offline(event.device_id, at) if event.state == OFFLINE else Online(event.device_id, at))
        subjects.append(event)
    return changes, subjects


def mark_devices(session: Session, events: Sequence[DeviceEvent]) -> None:
    """The devices' offline/online state in the registry (their tickets follow with the batch's)."""
    for event in events:
        if event.state == OFFLINE:
            ingest.mark_offline(session, event.device_id, utc(event.at))
        else:
            ingest.mark_online(session, event.device_id)


def write_batch(
    session: Session, batch: Batch, service: TicketSink,
    on_ticket_error: Callable[[Subject, Exception], None],
    on_unstorable: Unstorable | None = None,
) -> None:
    """Everything of `batch` into `session` (the caller commits). The ticket changes go to the ticket
    service as one batch (`TicketService.on_transitions`); a failure on one transition, predictive
    or device event rolls back that change alone and is reported, not raised. With `on_unstorable`
    (after the database refused the batch), rows it refuses one by one are reported and skipped."""
    upsert_devices(session, batch, on_unstorable)
    upsert_rule_states(session, batch.states, on_unstorable)
    upsert_predictive_states(session, batch.predictive_states, on_unstorable)
    insert_dead_letters(session, batch, on_unstorable)
    mark_devices(session, batch.events)
    changes, subjects = ticket_changes(batch)
    if changes:
        service.on_transitions(session, changes, lambda position, exc: on_ticket_error(subjects[position], exc))
