"""The rows the collector keeps beside tickets: device registry, rule-engine and predictive snapshots,
dead letters. Written here, by the owner of the tables, in the caller's transaction (the caller
commits); the upserts are `tickets.upsert.Upsert`s, so several collectors can share one database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tickets.models import DeadLetter, Device, DeviceState, PredictiveState, RuleState
from tickets.upsert import Upsert

DEVICES = cast(sa.Table, Device.__table__)
DEAD_LETTERS = cast(sa.Table, DeadLetter.__table__)


class SeenDevice(NamedTuple):
    """What the collector heard from a device: it is online, and its latest facts."""

    id: str
    at: datetime  # when the collector received it
    agent_version: str | None = None
    interval_s: float | None = None
    instance: str | None = None
    latest_seq: int | None = None
    latest_ts: float | None = None  # None: nothing new to record as the latest sample
    latest: dict[str, float] | None = None
    device_class: str | None = None


class Rejected(NamedTuple):
    """A dead letter: a message the collector refused, with the reason."""

    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: str
    payload_size: int


def _seen(new: Any, stored: Any) -> dict[str, Any]:
    # A sample without values (a status message) keeps the latest sample; the registry's class
    # (set by people) wins over the one the samples carry. A device registered before it was ever
    # seen (imported, added by hand) is first seen now.
    no_sample = new.latest_ts.is_(None)
    return {
        "state": new.state,
        "first_seen_at": sa.func.coalesce(stored.first_seen_at, new.first_seen_at),
        "offline_since": new.offline_since,
        "last_seen_at": new.last_seen_at,
        "agent_version": sa.func.coalesce(new.agent_version, stored.agent_version),
        "interval_s": sa.func.coalesce(new.interval_s, stored.interval_s),
        "instance": sa.func.coalesce(new.instance, stored.instance),
        "latest_seq": sa.case((no_sample, stored.latest_seq), else_=new.latest_seq),
        "latest_ts": sa.func.coalesce(new.latest_ts, stored.latest_ts),
        "latest": sa.case((no_sample, stored.latest), else_=new.latest),
        "device_class": sa.func.coalesce(stored.device_class, new.device_class),
    }


SEEN = Upsert(DEVICES, ("id", "state", "first_seen_at", "last_seen_at", "agent_version", "interval_s", "instance",
                        "latest_seq", "latest_ts", "latest", "device_class", "offline_since"), _seen)
OFFLINE = Upsert(DEVICES, ("id", "state", "offline_since"))
RULE_STATES = Upsert(cast(sa.Table, RuleState.__table__), ("device_id", "state", "updated_at"))
PREDICTIVE_STATES = Upsert(cast(sa.Table, PredictiveState.__table__),
                           ("device_id", "state", "forecasts", "updated_at"))


def record_seen(session: Session, devices: Sequence[SeenDevice]) -> None:
    """Register or update each device as online with its latest facts. Give them in one order in
    every process (e.g. sorted by id), so that concurrent writers take row locks in the same order."""
    online = DeviceState.ONLINE.value
    SEEN.run(session, [(d.id, online, d.at, d.at, d.agent_version, d.interval_s, d.instance, d.latest_seq,
                        d.latest_ts, d.latest, d.device_class, None) for d in devices])


def mark_offline(session: Session, device_id: str, since: datetime) -> None:
    """The device went offline at `since` (registered if it never was)."""
    OFFLINE.run(session, [(device_id, DeviceState.OFFLINE.value, since)])


def mark_online(session: Session, device_id: str) -> None:
    """The device is back online (a registered device: nothing happens for an unknown one)."""
    session.execute(sa.update(DEVICES).where(DEVICES.c.id == device_id)
                    .values(state=DeviceState.ONLINE.value, offline_since=None))


def store_rule_states(session: Session, states: Sequence[tuple[str, dict[str, Any]]], at: datetime) -> None:
    """The rule engine's snapshot of each (device id, state)."""
    RULE_STATES.run(session, [(device_id, state, at) for device_id, state in states])


def store_predictive_states(
    session: Session, rows: Sequence[tuple[str, dict[str, Any], dict[str, Any]]], at: datetime
) -> None:
    """The predictive monitor's state and latest forecasts of each (device id, state, forecasts)."""
    PREDICTIVE_STATES.run(session, [(device_id, state, forecasts, at) for device_id, state, forecasts in rows])


def storable(text: str) -> str:
    """PostgreSQL text cannot hold NUL, and a refused dead letter would fail its batch on every retry:
    written as the escape the collector uses for undecodable bytes."""
    return text.replace("\x00", "\\x00")


def insert_dead_letters(session: Session, letters: Sequence[Rejected]) -> None:
    if not letters:
        return
    session.execute(sa.insert(DEAD_LETTERS), [
        {"received_at": d.received_at, "topic": storable(d.topic), "device_id": d.device_id, "reason": d.reason,
         "detail": storable(d.detail), "payload": storable(d.payload), "payload_size": d.payload_size}
        for d in letters
    ])


def prune_dead_letters(session: Session, before: datetime, batch: int = 10_000) -> int:
    """Delete up to `batch` dead letters received before `before` (oldest first); how many went."""
    oldest = sa.select(DEAD_LETTERS.c.id).where(DEAD_LETTERS.c.received_at < before) \
        .order_by(DEAD_LETTERS.c.id).limit(batch)
    result = session.execute(sa.delete(DEAD_LETTERS).where(DEAD_LETTERS.c.id.in_(oldest)))
    return int(getattr(result, "rowcount", 0) or 0)
