"""The values that flow through the rule engine: samples in, transitions out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ORANGE = "orange"
    RED = "red"


class Event(StrEnum):
    RAISED = "raised"
    ESCALATED = "escalated"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class Sample:
    """One telemetry sample of one device (the contract's JSON sample, decoded)."""

    device_id: str
    seq: int
    ts: float
    metrics: Mapping[str, float | None]
    # The agent installation's id: a new value means the device's seq counting started again.
    instance: str | None = None
    device_class: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert changing state for one (device, metric)."""

    event: Event
    severity: Severity
    device_id: str
    metric: str
    seq: int
    ts: float
    value: float
    threshold: float
    red_level: float

    def to_dict(self) -> dict[str, object]:
        return {
            "event": self.event.value,
            "severity": self.severity.value,
            "device_id": self.device_id,
            "metric": self.metric,
            "seq": self.seq,
            "ts": self.ts,
            "value": self.value,
            "threshold": self.threshold,
            "red_level": self.red_level,
        }
