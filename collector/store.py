"""The telemetry store: one small interface, chosen by configuration.

- `SqliteStore`: the embedded default, one file, WAL, one transaction per batch (appended, and
  moved into each device's history every few seconds).
- `InfluxStore`: InfluxDB v2 (or anything speaking its `/api/v2/write`) through influxdb-client.
- `NullStore`: keeps nothing (tickets only).

Writes are idempotent: a point is keyed by (device, device timestamp, seq), so a message delivered
again after a crash rewrites the same row instead of adding one. Stores are called from the store
writer's thread only (`collector.writer`), never on the hot path.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from collector.errors import PointsRefused, StoreUnavailable
from common.files import private_file

logger = logging.getLogger(__name__)

CORE_METRICS = ("cpu_percent", "mem_percent", "latency_ms")
MEASUREMENT = "device_health"


class Point(NamedTuple):
    """One sample's values for the telemetry store (a tuple: one is built per sample)."""

    device_id: str
    seq: int
    ts: float  # the device's clock, Unix seconds
    received_at: float  # the collector's clock, Unix seconds
    metrics: Mapping[str, float | None]


class TelemetryStore(Protocol):
    def write(self, points: Sequence[Point]) -> int:
        """Persist the points durably; return how many the store refused as malformed.

        Raise StoreUnavailable when the store cannot take them now (they are kept and retried), and
        PointsRefused when it will never take them (the writer narrows that down to the points).
        """

    def close(self) -> None: ...


class NullStore:
    def write(self, points: Sequence[Point]) -> int:
        return 0

    def close(self) -> None:
        pass


SAMPLE_COLUMNS = "device_id, ts, seq, received_at, cpu_percent, mem_percent, latency_ms, extra"

_SAMPLE_COLUMNS_DDL = """
    device_id   TEXT    NOT NULL,
    ts          REAL    NOT NULL,
    seq         INTEGER NOT NULL,
    received_at REAL    NOT NULL,
    cpu_percent REAL,
    mem_percent REAL,
    latency_ms  REAL,
    extra       TEXT"""

SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS samples ({_SAMPLE_COLUMNS_DDL},
    PRIMARY KEY (device_id, ts, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS samples_recent ({_SAMPLE_COLUMNS_DDL}
);
"""


class SqliteStore:
    """Samples in SQLite: the three core metrics as columns, any others as a JSON object.

    `samples` holds each device's history in order (clustered by device and time, so a chart
    reads one range). Writing there directly costs a page write per device per batch: with
    thousands of devices each batch touches thousands of pages, and the cost per sample grows
    with the file (8 µs at 0.5 million samples, 22 µs at 3 million, 10 000 devices). So batches
    are appended to `samples_recent` (durable at once, a few pages per batch) and moved into
    `samples` every `merge_every_s`, sorted, in one transaction: each device's page is then
    written once per move, not once per batch. Readers take both tables (`read_sqlite_samples`,
    `server.telemetry`); the move is idempotent like every write (a later copy of a sample
    replaces the earlier one), and what a crash leaves in `samples_recent` is moved at the next
    start.

    With a retention, samples received longer ago are deleted once per `prune_every_s`, device by
    device along the primary key, on the writer thread (never on the rules' hot path). Retention
    goes by the collector's receive time, so a device whose clock is years off keeps its history.
    """

    # Where each batch goes (`edgewatch bench store` writes into `samples` itself as its baseline).
    _write_sql = f"INSERT INTO samples_recent ({SAMPLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"

    def __init__(
        self,
        path: Path,
        retention_days: float = 0.0,
        *,
        prune_every_s: float = 3600.0,
        merge_every_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._retention_s = retention_days * 86400.0
        self._prune_every_s = prune_every_s
        self._merge_every_s = merge_every_s
        self._clock = clock
        self._next_prune = clock() + min(prune_every_s, 60.0)  # soon after start, then periodically
        self._next_merge = 0.0  # at the first write: what a crash left behind goes first
        self._devices: set[str] | None = None  # known device ids, read from the table at the first prune
        self.pruned = 0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            private_file(self._path)
            # Opened by the writer thread, used by it alone afterwards.
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; WAL keeps it consistent
            conn.executescript(SQLITE_SCHEMA)
            self._conn = conn
        return self._conn

    def write(self, points: Sequence[Point]) -> int:
        rows = []
        for p in points:
            metrics = p.metrics
            extra = {k: v for k, v in metrics.items() if k not in CORE_METRICS and v is not None}
            rows.append((
                p.device_id, p.ts, p.seq, p.received_at,
                metrics.get("cpu_percent"), metrics.get("mem_percent"), metrics.get("latency_ms"),
                json.dumps(extra, separators=(",", ":")) if extra else None,
            ))
        try:
            conn = self._connection()
            with _transaction(conn):
                conn.executemany(self._write_sql, rows)
        except (sqlite3.DataError, sqlite3.IntegrityError, OverflowError, ValueError, TypeError) as exc:
            raise PointsRefused(f"SQLite telemetry store {self._path}: {exc}") from exc
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"SQLite telemetry store {self._path}: {exc}") from exc
        if self._devices is not None:
            self._devices.update(p.device_id for p in points)
        now = self._clock()
        if now >= self._next_merge:
            self.merge()
        if self._retention_s > 0 and now >= self._next_prune:
            self.prune()
        return 0

    def merge(self) -> None:
        """Move the recent samples into `samples`, in key order; the later of two copies wins."""
        self._next_merge = self._clock() + self._merge_every_s
        try:
            conn = self._connection()
            with _transaction(conn):
                conn.execute(f"INSERT OR REPLACE INTO samples ({SAMPLE_COLUMNS}) SELECT {SAMPLE_COLUMNS} "
                             "FROM samples_recent ORDER BY device_id, ts, seq, rowid")
                conn.execute("DELETE FROM samples_recent")
        except (sqlite3.Error, OSError) as exc:
            # The samples are safe in samples_recent (and read from there); retried at the next write.
            logger.warning("moving recent samples in the SQLite telemetry store %s failed: %s", self._path, exc)

    def prune(self) -> int:
        """Delete samples received before the retention period; returns how many went."""
        now = self._clock()
        self._next_prune = now + self._prune_every_s
        if self._retention_s <= 0:
            return 0
        cutoff = now - self._retention_s
        deleted = 0
        try:
            conn = self._connection()
            if self._devices is None:
                self._devices = {row[0] for row in conn.execute("SELECT DISTINCT device_id FROM samples")}
            for device_id in sorted(self._devices):
                cursor = conn.execute(
                    "DELETE FROM samples WHERE device_id = ? AND received_at < ?", (device_id, cutoff)
                )
                deleted += cursor.rowcount
        except (sqlite3.Error, OSError) as exc:  # retention is housekeeping: retried at the next period
            logger.warning("pruning the SQLite telemetry store %s failed: %s", self._path, exc)
        self.pruned += deleted
        return deleted

    def close(self) -> None:
        if self._conn is not None:
            self.merge()
            self._conn.close()
            self._conn = None


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class InfluxStore:
    """InfluxDB v2: measurement `device_health`, tag `device_id`, one float field per metric plus
    the integer field `seq`; the point's time is the device's timestamp in microseconds."""

    def __init__(self, url: str, token: str | None, org: str, bucket: str, timeout_ms: int = 10_000) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        # retries=0: the store writer does its own retrying with back-off and a bounded buffer.
        self._client = InfluxDBClient(url=url, token=token or "", org=org, timeout=timeout_ms, retries=0)
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._bucket, self._org, self._url = bucket, org, url

    @staticmethod
    def record(point: Point) -> dict[str, Any]:
        fields: dict[str, Any] = {k: float(v) for k, v in point.metrics.items() if v is not None}
        fields["seq"] = point.seq
        return {
            "measurement": MEASUREMENT,
            "tags": {"device_id": point.device_id},
            "fields": fields,
            "time": round(point.ts * 1_000_000),
        }

    def write(self, points: Sequence[Point]) -> int:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        records = [self.record(p) for p in points]
        try:
            self._write_api.write(self._bucket, self._org, records, write_precision=WritePrecision.US)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status in (400, 413, 422):
                # The server refused the data itself: retrying the same bytes cannot succeed. The
                # writer narrows it down to the points refused.
                raise PointsRefused(f"InfluxDB {self._url}: HTTP {exc.status} {exc.reason}") from exc
            raise StoreUnavailable(f"InfluxDB {self._url}: HTTP {exc.status} {exc.reason}") from exc
        except Exception as exc:  # urllib3 connection errors and time-outs
            raise StoreUnavailable(f"InfluxDB {self._url}: {exc}") from exc
        return 0

    def close(self) -> None:
        self._write_api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]


def open_store(kind: str, settings: Any) -> TelemetryStore:
    """The store named in the settings (`collector.settings.TelemetrySettings`)."""
    if kind == "sqlite":
        return SqliteStore(settings.sqlite_path, settings.retention_days)
    if kind == "influxdb":
        return InfluxStore(settings.influx_url, settings.influx_token, settings.influx_org, settings.influx_bucket)
    return NullStore()


def read_sqlite_samples(path: Path) -> list[dict[str, Any]]:
    """All stored samples, in key order, recent ones not yet moved included (for tests and tools)."""
    if not Path(path).exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        for table in ("samples", "samples_recent"):
            if _has_table(conn, table):
                order = "rowid" if table == "samples_recent" else "device_id, ts, seq"
                for row in conn.execute(f"SELECT {SAMPLE_COLUMNS} FROM {table} ORDER BY {order}"):
                    found[(row["device_id"], row["ts"], row["seq"])] = dict(row)  # the later copy wins
        return [found[key] for key in sorted(found)]
    finally:
        conn.close()


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None
