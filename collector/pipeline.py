"""One batch of inbound messages through decoding, the rules and the device registry.

Pure apart from the in-memory state it advances (rule engine, device tracker): the result is a
`Batch` describing everything to write in one transaction (`collector.persist`) and the telemetry
points for the store. Nothing here touches the network or a database.
"""

from __future__ import annotations

import json
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.decode import Decoder, Ignored, Rejected, Status, Telemetry
from collector.devices import DeviceEvent, DeviceTracker
from collector.mqtt import Inbound
from collector.predictive import PredictiveStage
from rules import RuleEngine, Sample, Transition
from rules.predict import PredictiveEvent
from rules.sample import DEVICE_ID_PATTERN
from telemetry.model import Point

RECENT_SAMPLES = 10  # per device, handed to the ticket service as context for a new ticket
MAX_TOPIC = 500
MAX_DETAIL = 1000


@dataclass(slots=True)
class DeviceSeen:
    """What a batch learned about one device (written to its registry row)."""

    received_at: float
    seq: int | None = None
    ts: float | None = None
    latest: dict[str, float] | None = None
    instance: str | None = None
    device_class: str | None = None
    agent_version: str | None = None
    interval_s: float | None = None


@dataclass(slots=True)
class DeadLetterRow:
    received_at: float
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: str
    payload_size: int


STORE_TOPIC = "(telemetry store)"


def refused_point_letter(point: Point, reason: str, at: float) -> DeadLetterRow:
    """The dead letter of a sample the telemetry store refused after it was accepted."""
    payload = json.dumps({"device_id": point.device_id, "seq": point.seq, "ts": point.ts,
                          "received_at": point.received_at, "metrics": dict(point.metrics)}, default=str)
    return DeadLetterRow(at, STORE_TOPIC, point.device_id, "store_refused", reason[:2000], payload, len(payload))


@dataclass(slots=True)
class Batch:
    messages: Sequence[Inbound]
    points: list[Point] = field(default_factory=list)
    transitions: list[tuple[Transition, tuple[tuple[float, float], ...]]] = field(default_factory=list)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    seen: dict[str, DeviceSeen] = field(default_factory=dict)  # every device heard from
    registry: dict[str, DeviceSeen] = field(default_factory=dict)  # device rows due to be written
    touched: set[str] = field(default_factory=set)  # devices fed a new sample
    unsettled: set[str] = field(default_factory=set)  # of those, whose rule state changed beyond the seq
    states: dict[str, dict[str, Any]] = field(default_factory=dict)  # rule-state snapshots to write
    events: list[DeviceEvent] = field(default_factory=list)
    # Predictive warnings raised or withdrawn, each after the first n transitions of the batch
    # (so that tickets change in the order the samples came), and the monitor rows to write.
    predictions: list[tuple[int, PredictiveEvent]] = field(default_factory=list)
    predictive_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)


def truncate_payload(payload: bytes, limit: int) -> str:
    """Readable text of at most `limit` bytes of the payload (invalid bytes as \\x escapes)."""
    return payload[:limit].decode("utf-8", errors="backslashreplace")


class Pipeline:
    def __init__(
        self, decoder: Decoder, engine: RuleEngine, tracker: DeviceTracker, *, topic_prefix: str,
        payload_limit: int = 2048, registry: RegistryBuffer | None = None,
        clock: Callable[[], float] = time.time, state_flush_s: float = 5.0, state_rows: int = 500,
        predictive: PredictiveStage | None = None,
    ) -> None:
        self._decoder = decoder
        self._engine = engine
        self._tracker = tracker
        self._prefix = topic_prefix.strip("/") + "/"
        self._payload_limit = payload_limit
        self._recent: dict[str, deque[Sample]] = {}
        self._persisted: dict[str, tuple[Any, ...]] = {}
        self._stale: OrderedDict[str, float] = OrderedDict()  # device -> since when its seq is unwritten
        self._state_flush_s = state_flush_s
        self._state_rows = state_rows
        self._registry = registry or RegistryBuffer()
        self._clock = clock
        self._predictive = predictive

    def process(self, messages: Sequence[Inbound], now: float | None = None) -> Batch:
        """Decode and evaluate `messages`; with `now`, also declare silent devices offline."""
        batch = Batch(messages)
        decode = self._decoder.decode
        for message in messages:
            decoded = decode(message.topic, message.payload, message.received_at)
            if isinstance(decoded, Telemetry):
                self._telemetry(batch, decoded, message.received_at)
            elif isinstance(decoded, Status):
                self._status(batch, decoded, message.received_at)
            elif isinstance(decoded, Ignored):
                batch.outcomes["ignored"] += 1
            else:
                self._reject(batch, message, decoded)
        if now is not None:
            batch.events.extend(self._tracker.silent(now))
        at = self._clock() if now is None else now
        self._changed_states(batch, at)
        if self._predictive is not None:
            urgent = {event.device_id for _, event in batch.predictions}
            batch.predictive_states = self._predictive.take(at, batch.touched, urgent)
        batch.registry = self._registry.take(batch.seen, at)
        return batch

    def drain_predictive(self) -> dict[str, dict[str, Any]]:
        """Every unwritten predictive monitor row (at shutdown)."""
        return self._predictive.drain() if self._predictive is not None else {}

    def drain_states(self) -> dict[str, dict[str, Any]]:
        """Snapshots of every device whose latest seq is not yet stored (at shutdown)."""
        snapshot = self._engine.snapshot_device
        states = {d: state for d in self._stale if (state := snapshot(d)) is not None}
        self._stale.clear()
        return states

    def remember_state(self, device_id: str, snapshot: dict[str, Any]) -> None:
        """A snapshot known to be in the database (restored at start)."""
        self._persisted[device_id] = _signature(snapshot)

    def _changed_states(self, batch: Batch, now: float) -> None:
        """Snapshots of the devices whose rule state changed beyond the seq, and of those whose
        seq alone has been unwritten for `state_flush_s`.

        A device whose streaks, alerts, instance and class are what the database already holds is
        not written at once: should the collector crash before acknowledging, the broker
        redelivers its samples, and the engine, being deterministic, replays them from the stored
        state to the same state without a transition (a batch with a transition always writes).
        Its seq follows within `state_flush_s` (and at shutdown), which bounds the window in which
        a sample repeated by its agent across a collector crash could be taken for a new one. This
        keeps a healthy fleet's batches from rewriting every device's row.
        """
        alerted = {t.device_id for t, _ in batch.transitions}
        snapshot = self._engine.snapshot_device
        stale = self._stale
        unsettled = batch.unsettled
        for device_id in batch.touched:
            if device_id not in unsettled:
                # Only the seq moved (the engine says so): the stored row differs in nothing else.
                if device_id not in stale:
                    stale[device_id] = now
                continue
            state = snapshot(device_id)
            if state is None:
                continue
            signature = _signature(state)
            if device_id in alerted or self._persisted.get(device_id) != signature:
                batch.states[device_id] = state
                self._persisted[device_id] = signature
                stale.pop(device_id, None)
            elif device_id not in stale:
                stale[device_id] = now
        while stale and len(batch.states) < self._state_rows:
            device_id, since = next(iter(stale.items()))
            if now - since < self._state_flush_s:
                break
            stale.popitem(last=False)
            state = snapshot(device_id)
            if state is not None:
                batch.states[device_id] = state

    def _telemetry(self, batch: Batch, decoded: Telemetry, received_at: float) -> None:
        feed, fresh, predictive = self._engine.feed, False, self._predictive
        for sample in decoded.samples:
            device_id = sample.device_id
            batch.points.append(Point(device_id, sample.seq, sample.ts, received_at, sample.metrics))
            result = feed(sample)
            if result.duplicate:
                continue
            fresh = True
            batch.touched.add(device_id)
            if not result.settled:
                batch.unsettled.add(device_id)
            recent = self._recent.get(device_id)
            if recent is None:
                recent = self._recent[device_id] = deque(maxlen=RECENT_SAMPLES)
            recent.append(sample)
            for transition in result.transitions:
                batch.transitions.append((transition, _context(recent, transition.metric)))
            if predictive is not None:
                warned = predictive.feed(sample, result.transitions)
                if warned:
                    position = len(batch.transitions)
                    batch.predictions.extend((position, event) for event in warned)
            seen = batch.seen.get(device_id)
            if seen is None:
                seen = batch.seen[device_id] = DeviceSeen(received_at)
            seen.received_at = received_at
            seen.seq, seen.ts = sample.seq, sample.ts
            seen.latest = {k: v for k, v in sample.metrics.items() if v is not None}
            seen.instance = sample.instance or seen.instance
            seen.device_class = sample.device_class or seen.device_class
            seen.agent_version = decoded.agent_version or seen.agent_version
            event = self._tracker.telemetry(device_id, received_at)
            if event is not None:
                batch.events.append(event)
            if decoded.interval_s is not None:
                seen.interval_s = decoded.interval_s
                self._tracker.set_interval(device_id, decoded.interval_s)
        batch.outcomes["processed" if fresh else "duplicate"] += 1

    def _status(self, batch: Batch, status: Status, received_at: float) -> None:
        batch.outcomes["processed"] += 1
        device_id = status.device_id
        event = self._tracker.status(device_id, status.online, received_at)
        if event is not None:
            batch.events.append(event)
        if status.interval_s is not None:
            self._tracker.set_interval(device_id, status.interval_s)
        if status.online or status.agent_version or status.interval_s:
            seen = batch.seen.get(device_id)
            if seen is None:
                seen = batch.seen[device_id] = DeviceSeen(received_at)
            seen.agent_version = status.agent_version or seen.agent_version
            seen.interval_s = status.interval_s or seen.interval_s

    def _reject(self, batch: Batch, message: Inbound, rejected: Rejected) -> None:
        batch.outcomes["rejected"] += 1
        batch.reasons[rejected.reason] += 1
        topic = message.topic if message.topic is not None else "(invalid UTF-8 topic)"
        batch.dead_letters.append(
            DeadLetterRow(
                message.received_at, topic[:MAX_TOPIC], self._device_of(message.topic), rejected.reason,
                rejected.detail[:MAX_DETAIL], truncate_payload(message.payload, self._payload_limit),
                len(message.payload),
            )
        )

    def _device_of(self, topic: str | None) -> str | None:
        if topic is None or not topic.startswith(self._prefix):
            return None
        device_id = topic[len(self._prefix) :].partition("/")[0]
        return device_id if DEVICE_ID_PATTERN.fullmatch(device_id) else None


def _signature(snapshot: dict[str, Any]) -> tuple[Any, ...]:
    return snapshot.get("instance"), snapshot.get("device_class"), snapshot.get("metrics")


class RegistryBuffer:
    """Coalesces device-row updates: a device's row is rewritten at most every `interval_s`.

    A new device, and a change of its agent version, instance, interval or class, is written with
    the batch that brings it; last-seen time and latest values may lag by up to `interval_s`
    (liveness itself is tracked in memory by `DeviceTracker`).
    """

    def __init__(self, interval_s: float = 5.0, max_due: int = 500) -> None:
        self._interval = interval_s
        # Rows that fall due together (a whole fleet after a backlog) are spread over batches so
        # that no single transaction, and no red sample waiting behind it, gets slow.
        self._max_due = max_due
        self._known: dict[str, tuple[Any, ...]] = {}
        self._pending: OrderedDict[str, tuple[float, DeviceSeen]] = OrderedDict()

    def load(self, device_id: str, identity: tuple[Any, ...]) -> None:
        self._known[device_id] = identity

    def take(self, seen: dict[str, DeviceSeen], now: float) -> dict[str, DeviceSeen]:
        due: dict[str, DeviceSeen] = {}
        pending, known_ids = self._pending, self._known
        for device_id, update in seen.items():
            queued = pending.get(device_id)
            if queued is not None:
                _merge_into(queued[1], update)
                update = queued[1]
            known = known_ids.get(device_id)
            if known is None or _identity_changed(update, known):
                known_ids[device_id] = _identity(update, known)
                if queued is not None:
                    del pending[device_id]
                due[device_id] = update
            elif queued is None:
                pending[device_id] = (now, update)
        while pending and len(due) < self._max_due:
            device_id, (since, update) = next(iter(pending.items()))
            if now - since < self._interval:
                break
            pending.popitem(last=False)
            due[device_id] = update
        return due

    def has_due(self, now: float) -> bool:
        if not self._pending:
            return False
        since, _ = next(iter(self._pending.values()))
        return now - since >= self._interval

    def drain(self) -> dict[str, DeviceSeen]:
        """Everything still pending (at shutdown)."""
        due = {device_id: update for device_id, (_, update) in self._pending.items()}
        self._pending.clear()
        return due


def _identity(update: DeviceSeen, known: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """What a device row must not lag on: agent version, instance, interval, class."""
    fresh = (update.agent_version, update.instance, update.interval_s, update.device_class)
    if known is None:
        return fresh
    return tuple(new if new is not None else old for new, old in zip(fresh, known, strict=True))


def _identity_changed(u: DeviceSeen, known: tuple[Any, ...]) -> bool:
    return (
        (u.agent_version is not None and u.agent_version != known[0])
        or (u.instance is not None and u.instance != known[1])
        or (u.interval_s is not None and u.interval_s != known[2])
        or (u.device_class is not None and u.device_class != known[3])
    )


def _merge_into(old: DeviceSeen, new: DeviceSeen) -> None:
    """Fold a newer update into a queued one (newest values win, known values are kept)."""
    old.received_at = max(old.received_at, new.received_at)
    if new.ts is not None:
        old.seq, old.ts = new.seq, new.ts
    if new.latest is not None:
        old.latest = new.latest
    old.instance = new.instance or old.instance
    old.device_class = new.device_class or old.device_class
    old.agent_version = new.agent_version or old.agent_version
    old.interval_s = new.interval_s or old.interval_s


def _context(recent: deque[Sample], metric: str) -> tuple[tuple[float, float], ...]:
    """(ts, value) of the device's recent samples that carry the metric, oldest first."""
    return tuple((s.ts, v) for s in recent if (v := s.metrics.get(metric)) is not None)
