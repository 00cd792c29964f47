"""What crosses the telemetry seam: points in, series out, and the one interface every store offers.

`TelemetryStore` is the seam between the collector (which writes) and the server (which reads
device charts): a batch write keyed by (device, device timestamp, seq), a range read averaged into
at most N buckets, the latest values per device, and retention. `plan` decides, for a range read,
which tier (raw samples, 1-minute or 1-hour roll-ups) answers and where the buckets fall; every
store follows it, so the same read gives the same buckets on every back end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

CORE_METRICS = ("cpu_percent", "mem_percent", "latency_ms")
MEASUREMENT = "device_health"


class Point(NamedTuple):
    """One sample's values for the telemetry store (a tuple: one is built per sample)."""

    device_id: str
    seq: int
    ts: float  # the device's clock, Unix seconds
    received_at: float  # the collector's clock, Unix seconds
    metrics: Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class Series:
    metric: str
    points: list[tuple[float, float | None]]  # (Unix seconds, value), oldest first


@dataclass(frozen=True, slots=True)
class History:
    """A range read's answer: one series per metric asked for, and what it cost."""

    series: list[Series]
    tier: str  # the tier that answered: "raw", "1m" or "1h"
    rows: int = 0  # rows (samples or roll-up rows) the store read; for VictoriaMetrics, points returned


@dataclass(frozen=True, slots=True)
class Latest:
    """A device's most recent sample the store holds."""

    ts: float
    seq: int | None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    seconds: int  # a roll-up's bucket length; 0 for raw samples


RAW = Tier("raw", 0)
MINUTE = Tier("1m", 60)
HOUR = Tier("1h", 3600)
TIERS = (RAW, MINUTE, HOUR)
TIER_NAMES = tuple(t.name for t in TIERS)


@dataclass(frozen=True, slots=True)
class Plan:
    """Where a range read's buckets fall: bucket k covers [origin + k*width, origin + (k+1)*width).

    Times are whole milliseconds (VictoriaMetrics keeps milliseconds, InfluxQL takes them), and
    `end - origin < count * width`, so no sample at or before `end` falls past the last bucket."""

    tier: Tier
    origin_ms: int
    width_ms: int
    count: int  # at most this many buckets

    @property
    def origin(self) -> float:
        return self.origin_ms / 1000

    @property
    def width(self) -> float:
        return self.width_ms / 1000

    def index(self, ts: float) -> int:
        return math.floor((ts * 1000 - self.origin_ms) / self.width_ms)

    def stamp(self, mean_ts: float | None, k: int, start: float, end: float) -> float:
        """The time shown for bucket k: the samples' mean time when known, else the bucket's middle,
        kept within [start, end] (a roll-up bucket may begin before the range does)."""
        if mean_ts is None:
            mean_ts = (self.origin_ms + (k + 0.5) * self.width_ms) / 1000
        return min(max(mean_ts, start), end)


def plan(start: float, end: float, max_points: int, tier: str | None = None) -> Plan:
    """The coarsest tier whose resolution still gives buckets of (end - start) / max_points, or `tier`
    when named; buckets aligned to that tier, at most `max_points` of them."""
    count = max(int(max_points), 1)
    want = max(end - start, 0.0) / count
    if tier is None:
        chosen = RAW
        for candidate in TIERS:
            if candidate.seconds and candidate.seconds <= want:
                chosen = candidate
    else:
        chosen = next((t for t in TIERS if t.name == tier), None) or _unknown_tier(tier)
    unit = chosen.seconds * 1000 or 1
    origin_ms = math.floor(start * 1000 / unit) * unit
    span_ms = max(math.ceil(end * 1000) - origin_ms, 0)
    # The smallest multiple of the tier's resolution with span < count * width.
    width_ms = (span_ms // (count * unit) + 1) * unit
    return Plan(chosen, origin_ms, width_ms, count)


def _unknown_tier(name: str) -> Tier:
    raise ValueError(f"unknown tier {name!r}: expected one of {', '.join(TIER_NAMES)}")


class TelemetryStore(Protocol):
    """The seam. Writes come from one thread (the collector's store writer); reads may come from many
    (the server's request threads) and never need the writer."""

    kind: str  # "sqlite", "influxdb", "victoriametrics", "none"
    available: bool  # False: the store keeps nothing to read (charts show latest values only)
    prunes: bool  # True: `prune` deletes by the configured retentions; False: the server's own retention

    def write(self, points: Sequence[Point]) -> int:
        """Persist the points durably; return how many the store refused as malformed.

        Idempotent: a point is keyed by (device, device timestamp, seq), so writing it again rewrites
        it. Raise StoreUnavailable when the store cannot take them now (they are kept and retried),
        and PointsRefused when it will never take them (the writer narrows that down to the points).
        """
        ...

    def history(self, device_id: str, metrics: Sequence[str], start: float, end: float, max_points: int,
                *, tier: str | None = None) -> History:
        """Each metric's bucket means between start and end (Unix seconds), oldest first, at most
        `max_points` buckets, from the tier `plan` picks (or `tier`). An unknown device or metric
        gives empty series; a store that cannot answer raises StoreUnavailable."""
        ...

    def latest(self, device_ids: Sequence[str]) -> dict[str, Latest]:
        """Each known device's most recent sample; devices the store has nothing for are left out."""
        ...

    def prune(self, now: float | None = None) -> int:
        """Delete what is older than each tier's retention; returns how many rows went (0 when the
        store's server keeps its own retention)."""
        ...

    def close(self) -> None: ...


def empty_history(metrics: Sequence[str], tier: str = RAW.name) -> History:
    return History([Series(m, []) for m in metrics], tier, 0)
