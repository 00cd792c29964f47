"""The rule engine: a pure state machine from samples to alert transitions.

No I/O, no clock, no logging: time travels inside the samples, and the whole state can be
snapshotted and restored. Everything the collector, `edgewatch rules replay` and the tests need is
re-exported here, imported on first use: the agent imports `rules.metrics` alone, and a small
device should not pay for the engine it never runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rules.engine import SNAPSHOT_VERSION, FeedResult, RuleEngine, SnapshotError
    from rules.metrics import METRICS
    from rules.model import Event, Sample, Severity, Transition
    from rules.sample import SampleError, parse_sample
    from rules.thresholds import DEVICE_CLASSES, MetricRule, ThresholdError, Thresholds, parse_thresholds, with_devices

_HOME = {
    "DEVICE_CLASSES": "rules.thresholds",
    "METRICS": "rules.metrics",
    "SNAPSHOT_VERSION": "rules.engine",
    "Event": "rules.model",
    "FeedResult": "rules.engine",
    "MetricRule": "rules.thresholds",
    "RuleEngine": "rules.engine",
    "Sample": "rules.model",
    "SampleError": "rules.sample",
    "Severity": "rules.model",
    "SnapshotError": "rules.engine",
    "ThresholdError": "rules.thresholds",
    "Thresholds": "rules.thresholds",
    "Transition": "rules.model",
    "parse_sample": "rules.sample",
    "parse_thresholds": "rules.thresholds",
    "with_devices": "rules.thresholds",
}

__all__ = [
    "DEVICE_CLASSES",
    "METRICS",
    "SNAPSHOT_VERSION",
    "Event",
    "FeedResult",
    "MetricRule",
    "RuleEngine",
    "Sample",
    "SampleError",
    "Severity",
    "SnapshotError",
    "ThresholdError",
    "Thresholds",
    "Transition",
    "parse_sample",
    "parse_thresholds",
    "with_devices",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'rules' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value
