"""Reading device history for the charts: one small interface and its SQLite implementation.

The collector writes the `samples` table of its SQLite telemetry store (core metrics as columns,
others in a JSON `extra` object). The server only reads it, through a read-only connection, and
averages the samples into at most `max_points` buckets so a chart of a month stays small.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)

CORE_COLUMNS = ("cpu_percent", "mem_percent", "latency_ms")


@dataclass(frozen=True, slots=True)
class Series:
    metric: str
    points: list[tuple[float, float | None]]  # (Unix seconds, value)


class TelemetryReader(Protocol):
    available: bool

    def history(self, device_id: str, metrics: list[str], start: float, end: float, max_points: int) -> list[Series]:
        """Each metric's values between start and end (Unix seconds), oldest first, bucket means."""
        ...


class NoTelemetry:
    """No telemetry store the server can read (e.g. InfluxDB): charts show only latest values."""

    available = False

    def history(self, device_id: str, metrics: list[str], start: float, end: float, max_points: int) -> list[Series]:
        return [Series(metric, []) for metric in metrics]


class SqliteTelemetry:
    available = True

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection | None:
        if not self.path.exists():
            return None
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5, check_same_thread=False)
        return conn

    def history(self, device_id: str, metrics: list[str], start: float, end: float, max_points: int) -> list[Series]:
        conn = self._connect()
        if conn is None:
            return [Series(metric, []) for metric in metrics]
        bucket = max((end - start) / max(max_points, 1), 1e-3)
        try:
            # The collector appends to samples_recent and moves those rows into samples every few
            # seconds, in one transaction (collector.store.SqliteStore): the chart reads both. Only
            # a sample delivered again after a crash can be in both until the move; it then counts
            # twice in its bucket's average, which a chart cannot show.
            tables = [t for (t,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('samples', 'samples_recent')")]
            if not tables:
                return [Series(metric, []) for metric in metrics]
            result = []
            for metric in metrics:
                # Core metrics are columns; the metric name is checked against them, never interpolated freely.
                value = metric if metric in CORE_COLUMNS else "json_extract(extra, ?)"
                params: list[object] = [] if metric in CORE_COLUMNS else [f"$.{json.dumps(metric)}"]
                rows_of = " UNION ALL ".join(
                    f"SELECT ts, {value} AS v FROM {table} WHERE device_id = ? AND ts >= ? AND ts <= ?"
                    for table in sorted(tables))
                sql = (f"SELECT CAST((ts - ?) / ? AS INTEGER) AS b, AVG(ts), AVG(v) FROM ({rows_of}) "
                       "GROUP BY b ORDER BY b")
                rows = conn.execute(sql, [start, bucket, *[*params, device_id, start, end] * len(tables)]).fetchall()
                result.append(Series(metric, [(float(ts), None if v is None else float(v)) for _, ts, v in rows]))
            return result
        except sqlite3.Error as exc:
            logger.warning("telemetry store %s unreadable: %s", self.path, exc)
            return [Series(metric, []) for metric in metrics]
        finally:
            conn.close()
