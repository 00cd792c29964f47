"""A processed batch written to the ticket database in one transaction.

Device rows, rule-engine snapshots of the devices the batch touched, dead letters, and the
ticket service's changes (tickets, clocks, audit, outbox rows) all commit together or not at all;
only then are the batch's messages acknowledged. Upserts are plain INSERT ... ON CONFLICT so the
same code runs on SQLite and PostgreSQL, and several collectors can share one database.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.devices import OFFLINE, ONLINE, DeviceEvent
from collector.pipeline import Batch
from rules import Transition
from rules.predict import PredictiveEvent
from tickets.models import DeadLetter, Device

logger = logging.getLogger(__name__)

DEVICES = cast(sa.Table, Device.__table__)
DEAD_LETTERS = cast(sa.Table, DeadLetter.__table__)


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


def _insert(session: Session, table: sa.Table) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# The two upserts below run for every device of every batch: they go straight to the driver
# (executemany) instead of through SQLAlchemy's per-row type processing, which cost more than
# the rest of the hot path together. Values are pre-encoded the way the ORM types store them.
DEVICE_UPSERT = """
INSERT INTO devices (id, state, first_seen_at, last_seen_at, agent_version, interval_s, instance,
                     latest_seq, latest_ts, latest, device_class, offline_since)
VALUES (:id, 'online', :at, :at, :agent_version, :interval_s, :instance,
        :latest_seq, :latest_ts, {latest}, :device_class, NULL)
ON CONFLICT (id) DO UPDATE SET
    state = 'online',
    offline_since = NULL,
    last_seen_at = excluded.last_seen_at,
    agent_version = COALESCE(excluded.agent_version, devices.agent_version),
    interval_s = COALESCE(excluded.interval_s, devices.interval_s),
    instance = COALESCE(excluded.instance, devices.instance),
    latest_seq = CASE WHEN excluded.latest_ts IS NULL THEN devices.latest_seq ELSE excluded.latest_seq END,
    latest_ts = COALESCE(excluded.latest_ts, devices.latest_ts),
    latest = CASE WHEN excluded.latest_ts IS NULL THEN devices.latest ELSE excluded.latest END,
    device_class = COALESCE(devices.device_class, excluded.device_class)
"""

RULE_STATE_UPSERT = """
INSERT INTO rule_states (device_id, state, updated_at) VALUES (:device_id, {state}, :at)
ON CONFLICT (device_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
"""

PREDICTIVE_STATE_UPSERT = """
INSERT INTO predictive_states (device_id, state, forecasts, updated_at) VALUES (:device_id, {state}, {forecasts}, :at)
ON CONFLICT (device_id) DO UPDATE SET
    state = excluded.state, forecasts = excluded.forecasts, updated_at = excluded.updated_at
"""


class _Dialect:
    """SQL text and value encodings for the driver in use (sqlite3 or psycopg)."""

    def __init__(self, name: str) -> None:
        self.postgres = name == "postgresql"
        if self.postgres:
            self.device_upsert = _pyformat(DEVICE_UPSERT.format(latest="CAST(:latest AS json)"))
            self.rule_state_upsert = _pyformat(RULE_STATE_UPSERT.format(state="CAST(:state AS json)"))
            self.predictive_upsert = _pyformat(PREDICTIVE_STATE_UPSERT.format(
                state="CAST(:state AS json)", forecasts="CAST(:forecasts AS json)"))
        else:
            self.device_upsert = DEVICE_UPSERT.format(latest=":latest")
            self.rule_state_upsert = RULE_STATE_UPSERT.format(state=":state")
            self.predictive_upsert = PREDICTIVE_STATE_UPSERT.format(state=":state", forecasts=":forecasts")

    def time(self, ts: float) -> Any:
        at = utc(ts)
        # SQLite: the text form SQLAlchemy's DateTime type writes (naive, UTC implied).
        return at if self.postgres else at.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _pyformat(sql: str) -> str:
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


_DIALECTS = {name: _Dialect(name) for name in ("sqlite", "postgresql")}


def _dialect(session: Session) -> _Dialect:
    return _DIALECTS["postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"]


# Reports a row the database refused on its own: (table, row key, error).
Unstorable = Callable[[str, str, Exception], None]


def _execute(session: Session, statement: str | sa.Insert, rows: list[Any]) -> None:
    # The connection is asked for here, inside any savepoint just begun: the session emits
    # SAVEPOINT only when its connection is requested within the nested transaction.
    if isinstance(statement, str):
        session.connection().exec_driver_sql(statement, rows)
    else:
        session.execute(statement, rows)


def _guarded(session: Session, table: str, rows: list[Any], key: str, statement: str | sa.Insert,
             on_unstorable: Unstorable | None) -> None:
    """Write `rows`; with `on_unstorable`, in a savepoint, and when the database refuses them,
    again one row at a time: a refused row is reported and skipped, the rest are kept. An
    OperationalError (the database unreachable, locked) is always raised: the batch waits."""
    execute = partial(_execute, session, statement)
    if on_unstorable is None:
        execute(rows)
        return
    try:
        with session.begin_nested():
            execute(rows)
        return
    except sa.exc.OperationalError:
        raise
    except Exception:
        pass
    for row in rows:
        try:
            with session.begin_nested():
                execute([row])
        except sa.exc.OperationalError:
            raise
        except Exception as exc:
            on_unstorable(table, str(row.get(key)), exc)


def upsert_devices(session: Session, batch: Batch, on_unstorable: Unstorable | None = None) -> None:
    if not batch.registry:
        return
    d = _dialect(session)
    dumps = json.dumps
    rows = []
    for device_id, seen in sorted(batch.registry.items()):  # sorted: the same lock order in every process
        rows.append({
            "id": device_id, "at": d.time(seen.received_at), "agent_version": seen.agent_version,
            "interval_s": seen.interval_s, "instance": seen.instance, "latest_seq": seen.seq, "latest_ts": seen.ts,
            "latest": None if seen.latest is None else dumps(seen.latest), "device_class": seen.device_class,
        })
    _guarded(session, "devices", rows, "id", d.device_upsert, on_unstorable)


def upsert_rule_states(session: Session, states: Mapping[str, Any], on_unstorable: Unstorable | None = None) -> None:
    d = _dialect(session)
    at = d.time(time.time())
    dumps = json.dumps
    rows = [{"device_id": device_id, "state": dumps(states[device_id]), "at": at} for device_id in sorted(states)]
    if rows:
        _guarded(session, "rule_states", rows, "device_id", d.rule_state_upsert, on_unstorable)


def upsert_predictive_states(
    session: Session, rows: Mapping[str, Mapping[str, Any]], on_unstorable: Unstorable | None = None
) -> None:
    """The predictive monitor's per-device state and latest forecasts (`PredictiveStage.row`)."""
    if not rows:
        return
    d = _dialect(session)
    at = d.time(time.time())
    dumps = json.dumps
    values = [{"device_id": device_id, "state": dumps(rows[device_id]["state"]),
               "forecasts": dumps(rows[device_id]["forecasts"]), "at": at} for device_id in sorted(rows)]
    _guarded(session, "predictive_states", values, "device_id", d.predictive_upsert, on_unstorable)


def _storable(text: str) -> str:
    """PostgreSQL text cannot hold NUL, and a refused dead letter would fail its batch on every retry:
    written as the same escape `truncate_payload` uses for undecodable bytes."""
    return text.replace("\x00", "\\x00")


def insert_dead_letters(session: Session, batch: Batch, on_unstorable: Unstorable | None = None) -> None:
    if not batch.dead_letters:
        return
    rows = [
        {"received_at": utc(d.received_at), "topic": _storable(d.topic), "device_id": d.device_id,
         "reason": d.reason, "detail": _storable(d.detail), "payload": _storable(d.payload),
         "payload_size": d.payload_size}
        for d in batch.dead_letters
    ]
    _guarded(session, "dead_letters", rows, "topic", sa.insert(DEAD_LETTERS), on_unstorable)


def apply_device_event(session: Session, service: TicketSink, event: DeviceEvent) -> None:
    at = utc(event.at)
    table = DEVICES
    if event.state == OFFLINE:
        stmt = _insert(session, table).values(id=event.device_id, state=OFFLINE, offline_since=at)
        session.execute(stmt.on_conflict_do_update(
            index_elements=[table.c.id], set_={"state": OFFLINE, "offline_since": at}
        ))
        service.on_device_offline(session, event.device_id, at)
    else:
        session.execute(sa.update(table).where(table.c.id == event.device_id)
                        .values(state=ONLINE, offline_since=None))
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
    try:
        with session.begin_nested():
            action()
    except sa.exc.OperationalError:
        raise  # the database itself is in trouble: the whole batch is retried
    except Exception as exc:
        on_error(subject, exc)
