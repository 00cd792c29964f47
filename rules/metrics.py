"""The one table of metric names: canonical names, old spellings, labels, units and possible values.

Every layer reads it: the agent (what it sends, which readings are possible), the sample contract
(`rules.sample`), the threshold parser (`rules.thresholds`), the collector, the server's API and,
through `GET /api/v1/metrics-catalog`, the dashboard. A metric not in the table is still accepted
(agents may add their own); it is a plain non-negative number, or 0..100 when its name ends in
`_percent`.

Standard library only and no dataclasses: the agent imports this module on small devices without
loading the rest of `rules` (the package's `__init__` imports lazily).
"""

from __future__ import annotations

import re
from typing import NamedTuple

# A metric's name in a sample, a thresholds file, the predictive settings and the API: the one
# pattern every layer checks names with.
METRIC_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
METRIC_NAME_RULE = "lower_snake_case: a-z, then up to 63 of a-z 0-9 _"


class Metric(NamedTuple):
    name: str
    label: str  # for people, in English: "CPU usage"
    short: str  # a word for tight spaces such as the fleet grid's tiles: "CPU"
    unit: str  # "%", "ms", "°C"; "" for a plain number
    minimum: float  # the lowest value a reading can have
    maximum: float | None  # the highest, or None
    default_threshold: float | None = None  # None: evaluated only once a threshold is configured

    @property
    def bounded(self) -> bool:
        """A percentage: readings lie in 0..100, so a red level of 100 or more can never be exceeded."""
        return self.maximum is not None


ABSOLUTE_ZERO_C = -273.15

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("cpu_percent", "CPU usage", "CPU", "%", 0.0, 100.0, 60.0),
        Metric("mem_percent", "Memory usage", "mem", "%", 0.0, 100.0, 60.0),
        Metric("latency_ms", "Network latency", "latency", "ms", 0.0, None, 200.0),
        Metric("packet_loss_percent", "Packet loss", "loss", "%", 0.0, 100.0),
        Metric("swap_percent", "Swap usage", "swap", "%", 0.0, 100.0),
        Metric("disk_percent", "Disk usage", "disk", "%", 0.0, 100.0),
        Metric("load1_per_core", "Load per core, 1 min", "load1", "", 0.0, None),
        Metric("load5_per_core", "Load per core, 5 min", "load5", "", 0.0, None),
        Metric("load15_per_core", "Load per core, 15 min", "load15", "", 0.0, None),
        Metric("temperature_c", "Temperature", "temp", "°C", ABSOLUTE_ZERO_C, None),
        Metric("uptime_s", "Uptime", "uptime", "s", 0.0, None),
        Metric("spool_backlog", "Samples waiting in the spool", "backlog", "samples", 0.0, None),
    )
}

# The metrics every device reports and the dashboard shows first; the only ones with default thresholds.
CORE_METRICS = tuple(name for name, m in METRICS.items() if m.default_threshold is not None)

# Old spellings, still accepted in samples and in settings and read as the canonical name.
ALIASES: dict[str, str] = {
    "temp_c": "temperature_c",  # what earlier edgewatch agents sent
    "load_per_core": "load1_per_core",  # what earlier thresholds files called it
}


def canonical(name: str) -> str:
    """The canonical name of a metric (its own name unless it is an old spelling)."""
    return ALIASES.get(name, name)


def bounds(name: str) -> tuple[float, float | None]:
    """(lowest, highest or None) possible value of a metric; the catalogue's, else by the name."""
    metric = METRICS.get(canonical(name))
    if metric is not None:
        return metric.minimum, metric.maximum
    return 0.0, 100.0 if name.endswith("_percent") else None


def unit_of(name: str) -> str:
    """The unit of a metric; "%" for any `*_percent`, "" when unknown."""
    metric = METRICS.get(canonical(name))
    if metric is not None:
        return metric.unit
    return "%" if name.endswith("_percent") else ""


def range_problem(name: str, value: float) -> str | None:
    """Why a finite `value` cannot be a reading of metric `name`, or None when it can."""
    lowest, highest = bounds(name)
    if value < lowest:
        if lowest == 0:
            return f"metrics.{name} is negative ({value!r})"
        return f"metrics.{name} is below {lowest:g}{_spaced(unit_of(name))}, the lowest possible value ({value!r})"
    if highest is not None and value > highest:
        return f"metrics.{name} is over {highest:g}{_spaced(unit_of(name))} ({value!r})"
    return None


def _spaced(unit: str) -> str:
    return f" {unit}" if unit else ""
