"""The parts of the wire contract (docs: contracts.md) the agent must respect when it builds samples.

Metric names and possible values come from `rules.metrics`, the one catalogue every layer reads
(a standard-library module that loads nothing else of `rules`). The rest mirrors `rules.sample`,
the collector's decoder, which the agent does not import: its import graph (dataclasses, inspect,
the rule engine) would add about a megabyte to a process whose memory is measured against
node_exporter's. The tests check that both agree.
"""

from __future__ import annotations

import math
import re

from rules.metrics import METRIC_NAME_PATTERN, range_problem

SAMPLE_VERSION = 1
DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


def telemetry_topic(device_id: str) -> str:
    return f"edgewatch/v1/{device_id}/telemetry"


def status_topic(device_id: str) -> str:
    return f"edgewatch/v1/{device_id}/status"


def metric_problem(name: str, value: float) -> str | None:
    """Why the collector would refuse this metric, or None if it accepts it."""
    if METRIC_NAME_PATTERN.fullmatch(name) is None:
        return f"metric name {name!r} is not lower_snake_case"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"metrics.{name} is not a finite number ({value!r})"
    return range_problem(name, value)
