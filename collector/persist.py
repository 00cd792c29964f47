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
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, partial
from typing import Any, Protocol, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.devices import OFFLINE, ONLINE, DeviceEvent
from collector.pipeline import Batch
from rules import Transition
from rules.predict import PredictiveEvent
from tickets.errors import DatabaseUnavailable
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


# The upserts below run for every device of every batch: they go straight to the driver instead
# of through SQLAlchemy's per-row type processing, which cost more than the rest of the hot path
# together. SQLite (in-process) takes them as one executemany; PostgreSQL as ONE statement over a
# JSON array of rows (json_to_recordset), since its executemany runs a statement per row on the
# server, which made 500 rows cost 11 ms instead of 5.


@dataclass(frozen=True)
class _Upsert:
    table: str
    columns: str  # the target columns of the INSERT
    values: str  # what is inserted, per row: `:name` for the row's fields
    conflict: str  # ON CONFLICT ...
    fields: dict[str, str]  # row field -> PostgreSQL type (json_to_recordset's column list)
    json_fields: tuple[str, ...] = ()  # stored as JSON
    time_fields: tuple[str, ...] = ("at",)  # Unix seconds in the row

    @cached_property
    def sqlite(self) -> str:
        return f"INSERT INTO {self.table} {self.columns} VALUES ({self.values}) {self.conflict}"

    @cached_property
    def postgres(self) -> str:
        record = ", ".join(f"{name} {kind}" for name, kind in self.fields.items())
        select = re.sub(r"(?<![:\w]):(\w+)", r"r.\1", self.values)
        return (f"INSERT INTO {self.table} {self.columns} SELECT {select} "
                f"FROM json_to_recordset(CAST(%(rows)s AS json)) AS r({record}) {self.conflict}")

    def run(self, session: Session, rows: list[dict[str, Any]]) -> None:
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            encoded = [{**row, **{f: _iso(row[f]) for f in self.time_fields}} for row in rows]
            connection.exec_driver_sql(self.postgres, {"rows": orjson.dumps(encoded).decode()})
            return
        connection.exec_driver_sql(self.sqlite, [self._sqlite_row(row) for row in rows])

    def _sqlite_row(self, row: dict[str, Any]) -> dict[str, Any]:
        encoded = row.copy()  # (the caller may retry with the same rows)
        for name in self.time_fields:
            encoded[name] = _sqlite_time(row[name])
        for name in self.json_fields:
            value = row[name]
            if value is not None:
                encoded[name] = json.dumps(value)
        return encoded


def _iso(ts: float) -> str:
    return utc(ts).isoformat()


def _sqlite_time(ts: float) -> str:
    # The text form SQLAlchemy's DateTime type writes on SQLite (naive, UTC implied).
    return utc(ts).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


DEVICE_UPSERT = _Upsert(
    "devices",
    "(id, state, first_seen_at, last_seen_at, agent_version, interval_s, instance, latest_seq, latest_ts, latest, "
    "device_class, offline_since)",
    ":id, 'online', :at, :at, :agent_version, :interval_s, :instance, :latest_seq, :latest_ts, :latest, "
    ":device_class, NULL",
    """ON CONFLICT (id) DO UPDATE SET
    state = 'online',
    offline_since = NULL,
    last_seen_at = excluded.last_seen_at,
    agent_version = COALESCE(excluded.agent_version, devices.agent_version),
    interval_s = COALESCE(excluded.interval_s, devices.interval_s),
    instance = COALESCE(excluded.instance, devices.instance),
    latest_seq = CASE WHEN excluded.latest_ts IS NULL THEN devices.latest_seq ELSE excluded.latest_seq END,
    latest_ts = COALESCE(excluded.latest_ts, devices.latest_ts),
    latest = CASE WHEN excluded.latest_ts IS NULL THEN devices.latest ELSE excluded.latest END,
    device_class = COALESCE(devices.device_class, excluded.device_class)""",
    {"id": "text", "at": "timestamptz", "agent_version": "text", "interval_s": "float8", "instance": "text",
     "latest_seq": "bigint", "latest_ts": "float8", "latest": "json", "device_class": "text"},
    json_fields=("latest",),
)

RULE_STATE_UPSERT = _Upsert(
    "rule_states", "(device_id, state, updated_at)", ":device_id, :state, :at",
    "ON CONFLICT (device_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    {"device_id": "text", "state": "json", "at": "timestamptz"}, json_fields=("state",),
)

PREDICTIVE_STATE_UPSERT = _Upsert(
    "predictive_states", "(device_id, state, forecasts, updated_at)", ":device_id, :state, :forecasts, :at",
    "ON CONFLICT (device_id) DO UPDATE SET state = excluded.state, forecasts = excluded.forecasts, "
    "updated_at = excluded.updated_at",
    {"device_id": "text", "state": "json", "forecasts": "json", "at": "timestamptz"},
    json_fields=("state", "forecasts"),
)


# Reports a row the database refused on its own: (table, row key, error).
Unstorable = Callable[[str, str, Exception], None]


def _execute(session: Session, statement: _Upsert | sa.Insert, rows: list[Any]) -> None:
    # The connection is asked for here, inside any savepoint just begun: the session emits
    # SAVEPOINT only when its connection is requested within the nested transaction.
    if isinstance(statement, _Upsert):
        statement.run(session, rows)
    else:
        session.execute(statement, rows)


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


def _guarded(session: Session, table: str, rows: list[Any], key: str, statement: _Upsert | sa.Insert,
             on_unstorable: Unstorable | None) -> None:
    """Write `rows`; with `on_unstorable`, in a savepoint, and when the database refuses them,
    again one row at a time: a refused row is reported and skipped, the rest are kept."""
    if on_unstorable is None:
        _execute(session, statement, rows)
    elif _savepoint(session, partial(_execute, session, statement, rows)) is not None:
        for row in rows:
            refused = _savepoint(session, partial(_execute, session, statement, [row]))
            if refused is not None:
                on_unstorable(table, str(row.get(key)), refused)


def upsert_devices(session: Session, batch: Batch, on_unstorable: Unstorable | None = None) -> None:
    if not batch.registry:
        return
    rows = [
        {"id": device_id, "at": seen.received_at, "agent_version": seen.agent_version,
         "interval_s": seen.interval_s, "instance": seen.instance, "latest_seq": seen.seq, "latest_ts": seen.ts,
         "latest": seen.latest, "device_class": seen.device_class}
        for device_id, seen in sorted(batch.registry.items())  # sorted: the same lock order in every process
    ]
    _guarded(session, "devices", rows, "id", DEVICE_UPSERT, on_unstorable)


def upsert_rule_states(session: Session, states: Mapping[str, Any], on_unstorable: Unstorable | None = None) -> None:
    at = time.time()
    rows = [{"device_id": device_id, "state": states[device_id], "at": at} for device_id in sorted(states)]
    if rows:
        _guarded(session, "rule_states", rows, "device_id", RULE_STATE_UPSERT, on_unstorable)


def upsert_predictive_states(
    session: Session, rows: Mapping[str, Mapping[str, Any]], on_unstorable: Unstorable | None = None
) -> None:
    """The predictive monitor's per-device state and latest forecasts (`PredictiveStage.row`)."""
    if not rows:
        return
    at = time.time()
    values = [{"device_id": device_id, "state": rows[device_id]["state"], "forecasts": rows[device_id]["forecasts"],
               "at": at} for device_id in sorted(rows)]
    _guarded(session, "predictive_states", values, "device_id", PREDICTIVE_STATE_UPSERT, on_unstorable)


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


def prune_dead_letters(session: Session, before: datetime, batch: int = 10_000) -> int:
    """Delete up to `batch` dead letters received before `before` (oldest first); how many went."""
    oldest = sa.select(DEAD_LETTERS.c.id).where(DEAD_LETTERS.c.received_at < before) \
        .order_by(DEAD_LETTERS.c.id).limit(batch)
    result = session.execute(sa.delete(DEAD_LETTERS).where(DEAD_LETTERS.c.id.in_(oldest)))
    return int(getattr(result, "rowcount", 0) or 0)


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
    failed = _savepoint(session, action)
    if failed is not None:
        on_error(subject, failed)
