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
from tickets.errors import DatabaseUnavailable
from tickets.ingest import Rejected, SeenDevice

logger = logging.getLogger(__name__)


class TicketSink(Protocol):
    """What the collector needs from `tickets.service.TicketService`."""

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


def apply_device_event(session: Session, service: TicketSink, event: DeviceEvent) -> None:
    at = utc(event.at)
    if event.state == OFFLINE:
        ingest.mark_offline(session, event.device_id, at)
        service.on_device_offline(session, event.device_id, at)
    else:
        ingest.mark_online(session, event.device_id)
        service.on_device_online(session, event.device_id, at)


def write_batch(
    session: Session, batch: Batch, service: TicketSink,
    on_ticket_error: Callable[[Transition | DeviceEvent | PredictiveEvent, Exception], None],
    on_unstorable: Unstorable | None = None,
) -> None:
    """Everything of `batch` into `session` (the caller commits). A ticket-service failure on one
    transition or predictive event rolls back that change alone (a savepoint) and is reported, not
    raised. Predictive events go in sample order among the transitions. With `on_unstorable` (after
    the database refused the batch), rows it refuses one by one are reported and skipped."""
    upsert_devices(session, batch, on_unstorable)
    upsert_rule_states(session, batch.states, on_unstorable)
    upsert_predictive_states(session, batch.predictive_states, on_unstorable)
    insert_dead_letters(session, batch, on_unstorable)
    predictions = iter(batch.predictions)
    pending = next(predictions, None)
    for index, (transition, recent) in enumerate(batch.transitions):
        while pending is not None and pending[0] <= index:
            _isolated(session, partial(service.on_predictive, session, pending[1]), pending[1], on_ticket_error)
            pending = next(predictions, None)
        _isolated(session, partial(service.on_transition, session, transition, recent), transition,
                  on_ticket_error)
    while pending is not None:
        _isolated(session, partial(service.on_predictive, session, pending[1]), pending[1], on_ticket_error)
        pending = next(predictions, None)
    for event in batch.events:
        _isolated(session, partial(apply_device_event, session, service, event), event, on_ticket_error)


def _isolated(
    session: Session, action: Callable[[], Any], subject: Transition | DeviceEvent | PredictiveEvent,
    on_error: Callable[[Transition | DeviceEvent | PredictiveEvent, Exception], None],
) -> None:
    failed = _savepoint(session, action)
    if failed is not None:
        on_error(subject, failed)
