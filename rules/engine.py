"""The orange/red breach state machine (semantics: docs/rules.md and the public contract).

Per (device, metric): a breach streak, the active alert's severity and a clear streak.
Per device: the last seq processed and the agent instance that seq belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.model import Event, Sample, Severity, Transition
from rules.thresholds import MetricRule, Thresholds

SNAPSHOT_VERSION = 1


class SnapshotError(ValueError):
    """A snapshot cannot be restored (wrong version or shape); the engine is left unchanged."""


@dataclass(frozen=True, slots=True)
class FeedResult:
    transitions: tuple[Transition, ...] = ()
    duplicate: bool = False
    # The sample came from a new agent instance (reinstalled device): seq counting started again.
    restarted: bool = False
    # Nothing but the seq changed: every metric idle before and after, same instance and class, a
    # device already known. Its snapshot then differs from the last one only in the seq, so a
    # caller persisting snapshots need not take one for every sample.
    settled: bool = False


_SETTLED = FeedResult(settled=True)
_CHANGED = FeedResult()
_DUPLICATE = FeedResult(duplicate=True)


class _MetricState:
    __slots__ = ("active", "clear", "streak")

    def __init__(self, streak: int = 0, active: Severity | None = None, clear: int = 0) -> None:
        self.streak = streak
        self.active = active
        self.clear = clear

    def is_idle(self) -> bool:
        return self.streak == 0 and self.active is None and self.clear == 0


@dataclass(slots=True)
class _DeviceState:
    last_seq: int = -1
    instance: str | None = None
    device_class: str | None = None
    metrics: dict[str, _MetricState] = field(default_factory=dict)
    rules: dict[str, MetricRule | None] = field(default_factory=dict)  # cache, not state


class RuleEngine:
    """Feed samples in seq order per device; get the alert transitions they cause."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self._thresholds = thresholds if thresholds is not None else Thresholds()
        self._devices: dict[str, _DeviceState] = {}

    @property
    def thresholds(self) -> Thresholds:
        return self._thresholds

    def set_thresholds(self, thresholds: Thresholds) -> None:
        """Apply new thresholds from the next sample on; streaks and active alerts are kept."""
        self._thresholds = thresholds
        for device in self._devices.values():
            device.rules.clear()

    def set_device_class(self, device_id: str, device_class: str | None) -> None:
        device = self._device(device_id)
        if device.device_class != device_class:
            device.device_class = device_class
            device.rules.clear()

    def _device(self, device_id: str) -> _DeviceState:
        device = self._devices.get(device_id)
        if device is None:
            device = self._devices[device_id] = _DeviceState()
        return device

    def active_alerts(self) -> dict[tuple[str, str], Severity]:
        return {
            (device_id, metric): state.active
            for device_id, device in self._devices.items()
            for metric, state in device.metrics.items()
            if state.active is not None
        }

    def rearm(self, device_id: str, metric: str) -> Severity | None:
        """Forget the (device, metric) alert and its streaks, so the next breach counts afresh (a
        ticket resolved by force while its alert was active). Returns the severity that was active."""
        device = self._devices.get(device_id)
        state = device.metrics.pop(metric, None) if device is not None else None
        return state.active if state is not None else None

    def last_seq(self, device_id: str) -> int | None:
        device = self._devices.get(device_id)
        return None if device is None or device.last_seq < 0 else device.last_seq

    def feed(self, sample: Sample) -> FeedResult:
        device = self._devices.get(sample.device_id)
        settled = device is not None
        if device is None:
            device = self._devices[sample.device_id] = _DeviceState()
        restarted = False
        if sample.instance is not None and sample.instance != device.instance:
            restarted = device.instance is not None
            device.instance = sample.instance
            device.last_seq = -1
            settled = False
        if sample.seq <= device.last_seq:
            return _DUPLICATE
        device.last_seq = sample.seq
        if sample.device_class is not None and sample.device_class != device.device_class:
            device.device_class = sample.device_class
            device.rules.clear()
            settled = False

        transitions: list[Transition] | None = None
        for metric, value in sample.metrics.items():
            if value is None:
                continue
            rules = device.rules
            if metric in rules:
                rule = rules[metric]
            else:
                rule = rules[metric] = self._thresholds.rule_for(sample.device_id, device.device_class, metric)
            if rule is None:
                continue
            state = device.metrics.get(metric)
            if state is None:
                state = device.metrics[metric] = _MetricState()
            elif settled and (state.streak or state.clear or state.active is not None):
                settled = False
            change = _step(state, rule, value)
            if state.streak:  # (from idle, a step can only start a streak or raise an alert)
                settled = False
            if change is not None:
                if transitions is None:
                    transitions = []
                transitions.append(
                    Transition(
                        change[0],
                        change[1],
                        sample.device_id,
                        metric,
                        sample.seq,
                        sample.ts,
                        value,
                        rule.threshold,
                        rule.red_level,
                    )
                )
        if transitions is None:
            if restarted:
                return FeedResult(restarted=True)
            return _SETTLED if settled else _CHANGED
        return FeedResult(tuple(transitions), restarted=restarted)

    # -- snapshot and restore -------------------------------------------------------------------

    def snapshot_device(self, device_id: str) -> dict[str, Any] | None:
        """One device's state as plain JSON-able data (what the collector persists per device)."""
        device = self._devices.get(device_id)
        if device is None:
            return None
        return {
            "seq": device.last_seq,
            "instance": device.instance,
            "device_class": device.device_class,
            "metrics": {
                metric: [state.streak, state.active.value if state.active else None, state.clear]
                for metric, state in sorted(device.metrics.items())
                if not state.is_idle()
            },
        }

    def snapshot(self) -> dict[str, Any]:
        """The whole state, versioned; `restore` of it gives an engine that behaves identically."""
        devices = {}
        for device_id in sorted(self._devices):
            devices[device_id] = self.snapshot_device(device_id)
        return {"version": SNAPSHOT_VERSION, "devices": devices}

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Replace the whole state with a snapshot's; on error nothing changes."""
        if not isinstance(snapshot, Mapping) or snapshot.get("version") != SNAPSHOT_VERSION:
            found = snapshot.get("version") if isinstance(snapshot, Mapping) else snapshot
            raise SnapshotError(f"snapshot version {found!r} is not {SNAPSHOT_VERSION}")
        devices = snapshot.get("devices")
        if not isinstance(devices, Mapping):
            raise SnapshotError("snapshot has no 'devices' table")
        restored = {device_id: _device_from(device_id, data) for device_id, data in devices.items()}
        self._devices = restored

    def restore_device(self, device_id: str, data: Mapping[str, Any]) -> None:
        """Replace one device's state (as produced by `snapshot_device`)."""
        self._devices[device_id] = _device_from(device_id, data)


def _device_from(device_id: str, data: Any) -> _DeviceState:
    try:
        seq = data["seq"]
        instance = data["instance"]
        device_class = data["device_class"]
        metrics = {
            str(metric): _MetricState(int(streak), Severity(active) if active else None, int(clear))
            for metric, (streak, active, clear) in data["metrics"].items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"device {device_id!r}: malformed state ({exc})") from None
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise SnapshotError(f"device {device_id!r}: seq must be an integer, got {seq!r}")
    return _DeviceState(seq, instance, device_class, metrics)


def _step(state: _MetricState, rule: MetricRule, value: float) -> tuple[Event, Severity] | None:
    """Advance one (device, metric) by one value; the transition it causes, if any."""
    active = state.active
    if value > rule.red_level:
        state.clear = 0
        if active is None:
            state.streak = 0
            state.active = Severity.RED
            return Event.RAISED, Severity.RED
        if active is Severity.ORANGE:
            state.active = Severity.RED
            return Event.ESCALATED, Severity.RED
        return None
    if value > rule.threshold:
        if active is not None:
            state.clear = 0
            return None
        state.streak += 1
        if state.streak >= rule.orange_count:
            state.streak = 0
            state.active = Severity.ORANGE
            return Event.RAISED, Severity.ORANGE
        return None
    if active is None:
        state.streak = 0
        return None
    if value > rule.clear_level:
        state.clear = 0
        return None
    state.clear += 1
    if state.clear >= rule.clear_count:
        state.clear = 0
        state.active = None
        return Event.CLEARED, active
    return None
