"""A processed batch written to the ticket database in one transaction.

Device rows, rule-engine snapshots of the devices the batch touched, dead letters, and the
ticket service's changes (tickets, clocks, audit, outbox rows) all commit together or not at all;
only then are the batch's messages acknowledged. Upserts are plain INSERT ... ON CONFLICT so the
same code runs on SQLite and PostgreSQL, and several collectors can share one database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.devices import OFFLINE, ONLINE, DeviceEvent
from collector.pipeline import Batch
from rules import Transition
from tickets.models import DeadLetter, Device, RuleState

logger = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1  # devices.latest_seq is a 32-bit INTEGER on PostgreSQL
DEVICES = cast(sa.Table, Device.__table__)
RULE_STATES = cast(sa.Table, RuleState.__table__)
DEAD_LETTERS = cast(sa.Table, DeadLetter.__table__)


class TicketSink(Protocol):
    """What the collector needs from `tickets.service.TicketService`."""

    def on_transition(
        self, session: Session, transition: Transition, recent: Sequence[tuple[float, float]] = ()
    ) -> Any: ...

    def on_device_offline(self, session: Session, device_id: str, since: datetime) -> Any: ...

    def on_device_online(self, session: Session, device_id: str, at: datetime) -> Any: ...

    def after_commit(self) -> None: ...


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _insert(session: Session, table: sa.Table) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert_devices(session: Session, batch: Batch) -> None:
    if not batch.seen:
        return
    table = DEVICES
    rows = []
    for device_id, seen in sorted(batch.seen.items()):  # sorted: the same lock order in every process
        at = utc(seen.received_at)
        seq = seen.seq if seen.seq is not None and seen.seq <= INT32_MAX else None
        rows.append({
            "id": device_id, "state": ONLINE, "first_seen_at": at, "last_seen_at": at,
            "agent_version": seen.agent_version, "interval_s": seen.interval_s, "instance": seen.instance,
            "latest_seq": seq, "latest_ts": seen.ts, "latest": seen.latest, "device_class": seen.device_class,
            "offline_since": None,
        })
    stmt = _insert(session, table)
    ex, cur = stmt.excluded, table.c
    stmt = stmt.on_conflict_do_update(
        index_elements=[cur.id],
        set_={
            # Status-only rows carry no sample: keep what is stored.
            "last_seen_at": ex.last_seen_at,
            "state": ex.state,
            "offline_since": None,
            "agent_version": sa.func.coalesce(ex.agent_version, cur.agent_version),
            "interval_s": sa.func.coalesce(ex.interval_s, cur.interval_s),
            "instance": sa.func.coalesce(ex.instance, cur.instance),
            "latest_seq": sa.case((ex.latest_ts.is_(None), cur.latest_seq), else_=ex.latest_seq),
            "latest_ts": sa.func.coalesce(ex.latest_ts, cur.latest_ts),
            "latest": sa.case((ex.latest_ts.is_(None), cur.latest), else_=ex.latest),
            # The class is the server's to set once the device is registered.
            "device_class": sa.func.coalesce(cur.device_class, ex.device_class),
        },
    )
    session.execute(stmt, rows)


def upsert_rule_states(session: Session, devices: Iterable[str], snapshot: Callable[[str], Any]) -> None:
    now = datetime.now(UTC)
    rows = [
        {"device_id": device_id, "state": state, "updated_at": now}
        for device_id in sorted(devices)
        if (state := snapshot(device_id)) is not None
    ]
    if not rows:
        return
    table = RULE_STATES
    stmt = _insert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.device_id], set_={"state": stmt.excluded.state, "updated_at": stmt.excluded.updated_at}
    )
    session.execute(stmt, rows)


def insert_dead_letters(session: Session, batch: Batch) -> None:
    if not batch.dead_letters:
        return
    session.execute(
        sa.insert(DEAD_LETTERS),
        [
            {"received_at": utc(d.received_at), "topic": d.topic, "device_id": d.device_id, "reason": d.reason,
             "detail": d.detail, "payload": d.payload, "payload_size": d.payload_size}
            for d in batch.dead_letters
        ],
    )


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
    session: Session, batch: Batch, service: TicketSink, snapshot: Callable[[str], Any],
    on_ticket_error: Callable[[Transition | DeviceEvent, Exception], None],
) -> None:
    """Everything of `batch` into `session` (the caller commits). A ticket-service failure on one
    transition rolls back that transition alone (a savepoint) and is reported, not raised."""
    upsert_devices(session, batch)
    upsert_rule_states(session, batch.touched, snapshot)
    insert_dead_letters(session, batch)
    for transition, recent in batch.transitions:
        _isolated(session, partial(service.on_transition, session, transition, recent), transition,
                  on_ticket_error)
    for event in batch.events:
        _isolated(session, partial(apply_device_event, session, service, event), event, on_ticket_error)


def _isolated(
    session: Session, action: Callable[[], Any], subject: Transition | DeviceEvent,
    on_error: Callable[[Transition | DeviceEvent, Exception], None],
) -> None:
    try:
        with session.begin_nested():
            action()
    except sa.exc.OperationalError:
        raise  # the database itself is in trouble: the whole batch is retried
    except Exception as exc:
        on_error(subject, exc)
