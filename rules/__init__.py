"""The rule engine: a pure state machine from samples to alert transitions.

No I/O, no clock, no logging: time travels inside the samples, and the whole state can be
snapshotted and restored. Everything the collector, `edgewatch rules replay` and the tests need is
re-exported here.
"""

from rules.engine import SNAPSHOT_VERSION, FeedResult, RuleEngine, SnapshotError
from rules.model import Event, Sample, Severity, Transition
from rules.sample import SampleError, parse_sample
from rules.thresholds import (
    DEVICE_CLASSES,
    METRICS,
    MetricRule,
    ThresholdError,
    Thresholds,
    parse_thresholds,
)

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
]
