"""The embedded telemetry store: one SQLite file holding raw samples and their 1-minute and 1-hour
roll-ups, written by the collector's store writer and read (read-only) by the server's charts.

Tables:
- `samples`: each device's history in key order (device, device timestamp, seq), the three core
  metrics as columns, any others as a JSON object in `extra`;
- `samples_recent`: where each batch is appended (durable at once, a few pages per batch);
- `rollup_1m`, `rollup_1h`: per (device, metric, bucket start) the count, sum, minimum and maximum
  of the samples in the bucket, and the latest receive time among them (what retention goes by).

Writing into `samples` directly costs a page write per device per batch: with thousands of devices
each batch touches thousands of pages, and the cost per sample grows with the file (8 µs at 0.5
million samples, 22 µs at 3 million, 10 000 devices). So batches are appended to `samples_recent`
and moved into `samples` every `merge_every_s`, sorted, in one transaction: each device's page is
then written once per move, not once per batch. The same transaction adds the moved samples to the
roll-ups, incrementally: a sample whose key is already in `samples` (a redelivery) adds only the
difference between its old and new values, so redelivery never counts twice; a crash before the
commit leaves both tables as they were and the move is done again at the next start.

Retention (by the collector's receive time, so a device whose clock is years off keeps its history):
raw samples after `retention_days`, 1-minute roll-ups after `rollup_1m_days`, 1-hour roll-ups after
`rollup_1h_days`; pruned once per `prune_every_s`, device by device, on the writer thread.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common.files import private_file
from telemetry.errors import PointsRefused, StoreUnavailable
from telemetry.model import CORE_METRICS, HOUR, MINUTE, RAW, History, Latest, Plan, Point, Series, empty_history, plan

logger = logging.getLogger(__name__)

SAMPLE_COLUMNS = "device_id, ts, seq, received_at, cpu_percent, mem_percent, latency_ms, extra"
SCHEMA_VERSION = 1  # PRAGMA user_version: 1 = the roll-up tables exist and hold every sample

_SAMPLE_COLUMNS_DDL = """
    device_id   TEXT    NOT NULL,
    ts          REAL    NOT NULL,
    seq         INTEGER NOT NULL,
    received_at REAL    NOT NULL,
    cpu_percent REAL,
    mem_percent REAL,
    latency_ms  REAL,
    extra       TEXT"""

_ROLLUP_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    device_id   TEXT    NOT NULL,
    metric      TEXT    NOT NULL,
    ts          REAL    NOT NULL,   -- the bucket's start (device clock)
    n           INTEGER NOT NULL,
    total       REAL    NOT NULL,
    lo          REAL,
    hi          REAL,
    received_at REAL    NOT NULL,
    PRIMARY KEY (device_id, metric, ts)
) WITHOUT ROWID;
"""

SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS samples ({_SAMPLE_COLUMNS_DDL},
    PRIMARY KEY (device_id, ts, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS samples_recent ({_SAMPLE_COLUMNS_DDL}
);
{_ROLLUP_DDL.format(table="rollup_1m")}
{_ROLLUP_DDL.format(table="rollup_1h")}
"""

ROLLUPS = ((MINUTE, "rollup_1m"), (HOUR, "rollup_1h"))

_UPSERT = """INSERT INTO {table} (device_id, metric, ts, n, total, lo, hi, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device_id, metric, ts) DO UPDATE SET n = n + excluded.n, total = total + excluded.total,
    lo = min(coalesce(lo, excluded.lo), coalesce(excluded.lo, lo)),
    hi = max(coalesce(hi, excluded.hi), coalesce(excluded.hi, hi)),
    received_at = max(received_at, excluded.received_at)"""


class SqliteStore:
    """Samples and roll-ups in one SQLite file (see the module's docstring)."""

    kind = "sqlite"
    available = True
    prunes = True
    # Where each batch goes (`edgewatch bench store` writes into `samples` itself as its baseline).
    _write_sql = f"INSERT INTO samples_recent ({SAMPLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"

    def __init__(
        self,
        path: Path,
        retention_days: float = 0.0,
        *,
        rollup_1m_days: float = 0.0,
        rollup_1h_days: float = 0.0,
        prune_every_s: float = 3600.0,
        merge_every_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._retention_s = {RAW.name: retention_days * 86400.0, MINUTE.name: rollup_1m_days * 86400.0,
                             HOUR.name: rollup_1h_days * 86400.0}
        self._prune_every_s = prune_every_s
        self._merge_every_s = merge_every_s
        self._clock = clock
        self._next_prune = clock() + min(prune_every_s, 60.0)  # soon after start, then periodically
        self._next_merge = 0.0  # at the first write: what a crash left behind goes first
        self._devices: set[str] | None = None  # known device ids, read from the tables at the first prune
        self.pruned = 0

    @property
    def path(self) -> Path:
        return self._path

    # -- the writer's side (one thread) ---------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            private_file(self._path)
            # Opened by the writer thread, used by it alone afterwards.
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; WAL keeps it consistent
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS moving_fresh ({_SAMPLE_COLUMNS_DDL})")
            with _transaction(conn):
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                for statement in SQLITE_SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if version < SCHEMA_VERSION:
                    _backfill_rollups(conn)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
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
        if now >= self._next_prune:
            self.prune()
        return 0

    def merge(self) -> None:
        """Move the recent samples into `samples`, in key order (the later of two copies wins), and add
        them to the roll-ups, in one transaction."""
        self._next_merge = self._clock() + self._merge_every_s
        try:
            conn = self._connection()
            with _transaction(conn):
                # Samples seen for the first time (the usual case) are summed in SQL; copies of stored or
                # repeated samples (redeliveries) are worked out one by one.
                conn.execute("DELETE FROM temp.moving_fresh")
                fresh = conn.execute(f"INSERT INTO temp.moving_fresh SELECT {SAMPLE_COLUMNS} FROM samples_recent r "
                                     f"WHERE NOT ({_IS_COPY})").rowcount
                recent = conn.execute("SELECT count(*) FROM samples_recent").fetchone()[0]
                deltas = _rollup_deltas(conn) if recent > fresh else {}
                for tier, table in ROLLUPS:
                    for statement in _fresh_rollup_sql(table, tier.seconds):
                        conn.execute(statement)
                    conn.executemany(_UPSERT.format(table=table), _coarsen(deltas, tier.seconds))
                conn.execute(f"INSERT OR REPLACE INTO samples ({SAMPLE_COLUMNS}) SELECT {SAMPLE_COLUMNS} "
                             "FROM samples_recent ORDER BY device_id, ts, seq, rowid")
                conn.execute("DELETE FROM samples_recent")
        except (sqlite3.Error, OSError) as exc:
            # The samples are safe in samples_recent (and read from there); retried at the next write.
            logger.warning("moving recent samples in the SQLite telemetry store %s failed: %s", self._path, exc)

    def prune(self, now: float | None = None) -> int:
        """Delete raw samples and roll-ups received before their tier's retention; returns how many went."""
        now = self._clock() if now is None else now
        self._next_prune = now + self._prune_every_s
        deleted = 0
        if not any(s > 0 for s in self._retention_s.values()):
            return 0
        try:
            conn = self._connection()
            if self._devices is None:
                self._devices = {row[0] for row in conn.execute(
                    "SELECT DISTINCT device_id FROM samples UNION SELECT DISTINCT device_id FROM rollup_1h")}
            for table, tier in (("samples", RAW), ("rollup_1m", MINUTE), ("rollup_1h", HOUR)):
                keep_s = self._retention_s[tier.name]
                if keep_s <= 0:
                    continue
                for device_id in sorted(self._devices):
                    cursor = conn.execute(f"DELETE FROM {table} WHERE device_id = ? AND received_at < ?",
                                          (device_id, now - keep_s))
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

    # -- readers (any thread, read-only connections) --------------------------------------------

    def _reader(self) -> sqlite3.Connection | None:
        if not self._path.exists():
            return None  # the collector has not written yet
        try:
            return sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=5, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite telemetry store {self._path}: {exc}") from exc

    def history(self, device_id: str, metrics: Sequence[str], start: float, end: float, max_points: int,
                *, tier: str | None = None) -> History:
        chosen = plan(start, end, max_points, tier)
        conn = self._reader()
        if conn is None:
            return empty_history(metrics, chosen.tier.name)
        try:
            tables = {t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if chosen.tier is not RAW and f"rollup_{chosen.tier.name}" not in tables:
                chosen = plan(start, end, max_points, RAW.name)  # written by a collector without roll-ups
            recent = ["samples_recent"] if "samples_recent" in tables else []
            series, rows = [], 0
            for metric in metrics:
                if chosen.tier is RAW:
                    points, read = _raw_series(conn, [t for t in ("samples", *recent) if t in tables],
                                               device_id, metric, start, end, chosen)
                else:
                    points, read = _rollup_series(conn, f"rollup_{chosen.tier.name}", recent, device_id, metric,
                                                  start, end, chosen)
                series.append(Series(metric, points))
                rows += read
            return History(series, chosen.tier.name, rows)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite telemetry store {self._path} unreadable: {exc}") from exc
        finally:
            conn.close()

    def latest(self, device_ids: Sequence[str]) -> dict[str, Latest]:
        conn = self._reader()
        if conn is None:
            return {}
        wanted = set(device_ids)
        found: dict[str, tuple[float, int, tuple[Any, ...]]] = {}

        def offer(row: tuple[Any, ...]) -> None:
            device_id, ts, seq = row[0], row[1], row[2]
            if device_id in wanted and (device_id not in found or (ts, seq) >= found[device_id][:2]):
                found[device_id] = (ts, seq, row[4:])

        try:
            tables = {t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "samples" in tables:
                for device_id in sorted(wanted):
                    row = conn.execute(f"SELECT {SAMPLE_COLUMNS} FROM samples WHERE device_id = ? "
                                       "ORDER BY ts DESC, seq DESC LIMIT 1", (device_id,)).fetchone()
                    if row is not None:
                        offer(row)
            if "samples_recent" in tables:
                for row in conn.execute(f"SELECT {SAMPLE_COLUMNS} FROM samples_recent ORDER BY rowid"):
                    offer(row)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite telemetry store {self._path} unreadable: {exc}") from exc
        finally:
            conn.close()
        return {d: Latest(float(ts), int(seq), _values(values)) for d, (ts, seq, values) in found.items()}


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _values(columns: Sequence[Any]) -> dict[str, float]:
    """(cpu_percent, mem_percent, latency_ms, extra JSON) -> the metrics that have a value."""
    out = {name: float(v) for name, v in zip(CORE_METRICS, columns[:3], strict=True) if v is not None}
    if columns[3]:
        for name, v in json.loads(columns[3]).items():
            if isinstance(v, int | float) and not isinstance(v, bool) and name not in out:
                out[name] = float(v)
    return out


# (device, metric, minute start) -> [count, sum, min, max, latest receive time]
Deltas = dict[tuple[str, str, float], list[Any]]


# A recent sample whose key is already stored, or appears more than once among the recent ones.
_IS_COPY = """EXISTS (SELECT 1 FROM samples s WHERE s.device_id = r.device_id AND s.ts = r.ts AND s.seq = r.seq)
    OR (r.device_id, r.ts, r.seq) IN (SELECT device_id, ts, seq FROM samples_recent GROUP BY 1, 2, 3
                                      HAVING count(*) > 1)"""


def _fresh_rollup_sql(table: str, seconds: int, source: str = "temp.moving_fresh") -> list[str]:
    """Statements adding the samples in `source` to a roll-up table, summed per bucket."""
    bucket = f"CAST(ts / {seconds} AS INTEGER) * {float(seconds)}"
    upsert = _UPSERT.format(table=table).replace("VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "{select}")
    out = [upsert.format(select=f"SELECT device_id, '{m}', {bucket}, count({m}), sum({m}), min({m}), max({m}), "
                                f"max(received_at) FROM {source} WHERE {m} IS NOT NULL "
                                f"GROUP BY device_id, {bucket}") for m in CORE_METRICS]
    out.append(upsert.format(
        select=f"SELECT f.device_id, j.key, {bucket.replace('ts', 'f.ts')}, count(j.value), sum(j.value), "
               f"min(j.value), max(j.value), max(f.received_at) FROM {source} f, json_each(f.extra) j "
               "WHERE f.extra IS NOT NULL AND j.type IN ('real', 'integer') GROUP BY 1, 2, 3"))
    return out


def _rollup_deltas(conn: sqlite3.Connection) -> Deltas:
    """What moving the copies among `samples_recent` into `samples` changes in the 1-minute roll-ups: a
    copy of a stored sample adds the difference (its minimum and maximum still count); the first of
    several copies of a new sample adds its values."""
    current: dict[tuple[Any, ...], dict[str, float]] = {}
    for row in conn.execute(
            "SELECT s.device_id, s.ts, s.seq, s.cpu_percent, s.mem_percent, s.latency_ms, s.extra "
            "FROM samples_recent r JOIN samples s ON s.device_id = r.device_id AND s.ts = r.ts AND s.seq = r.seq"):
        current[row[:3]] = _values(row[3:])
    deltas: Deltas = {}
    for row in conn.execute(f"SELECT {SAMPLE_COLUMNS} FROM samples_recent r WHERE {_IS_COPY} ORDER BY rowid"):
        key, received_at = row[:3], row[3]
        new, old = _values(row[4:]), current.get(row[:3], {})
        current[key] = new
        minute = math.floor(key[1] / 60) * 60.0
        for metric in new.keys() | old.keys():
            v, o = new.get(metric), old.get(metric)
            if v == o:
                continue
            d = deltas.setdefault((key[0], metric, minute), [0, 0.0, None, None, received_at])
            d[4] = max(d[4], received_at)
            if o is not None:
                d[0] -= 1
                d[1] -= o
            if v is not None:
                d[0] += 1
                d[1] += v
                d[2] = v if d[2] is None else min(d[2], v)
                d[3] = v if d[3] is None else max(d[3], v)
    return deltas


def _coarsen(deltas: Deltas, seconds: int) -> list[tuple[Any, ...]]:
    """The minute deltas summed into buckets of `seconds`, as rows for `_UPSERT`."""
    out: Deltas = {}
    for (device_id, metric, minute), (n, total, lo, hi, received_at) in deltas.items():
        d = out.setdefault((device_id, metric, math.floor(minute / seconds) * float(seconds)),
                           [0, 0.0, None, None, received_at])
        d[0] += n
        d[1] += total
        d[2] = lo if d[2] is None else (d[2] if lo is None else min(d[2], lo))
        d[3] = hi if d[3] is None else (d[3] if hi is None else max(d[3], hi))
        d[4] = max(d[4], received_at)
    return [(*key, *values) for key, values in out.items()]


def _backfill_rollups(conn: sqlite3.Connection) -> None:
    """Build the roll-ups from the samples already stored (a file written before roll-ups existed). The
    recent samples are moved first, so that the next move does not add them a second time."""
    conn.execute(f"INSERT OR REPLACE INTO samples ({SAMPLE_COLUMNS}) SELECT {SAMPLE_COLUMNS} "
                 "FROM samples_recent ORDER BY device_id, ts, seq, rowid")
    conn.execute("DELETE FROM samples_recent")
    conn.execute("DELETE FROM rollup_1m")
    conn.execute("DELETE FROM rollup_1h")
    for tier, table in ROLLUPS:
        for statement in _fresh_rollup_sql(table, tier.seconds, "samples"):
            conn.execute(statement)


def _value_sql(metric: str, column: str = "extra") -> tuple[str, list[object]]:
    """The SQL expression of a metric's value: a core column, or a JSON path into `extra` (the metric
    name is a parameter, never interpolated)."""
    if metric in CORE_METRICS:
        return metric, []
    return f"json_extract({column}, ?)", [f"$.{json.dumps(metric)}"]


def _bucket_sql(p: Plan) -> str:
    return f"MIN(CAST((ts * 1000 - {p.origin_ms}) / {p.width_ms} AS INTEGER), {p.count - 1})"


def _raw_series(conn: sqlite3.Connection, tables: list[str], device_id: str, metric: str, start: float,
                end: float, p: Plan) -> tuple[list[tuple[float, float | None]], int]:
    if not tables:
        return [], 0
    value, params = _value_sql(metric)
    # Only a sample delivered again after a crash can be in both tables until the move; it then counts
    # twice in its bucket's average, which a chart cannot show.
    rows_of = " UNION ALL ".join(
        f"SELECT ts, {value} AS v FROM {table} WHERE device_id = ? AND ts >= ? AND ts <= ?" for table in tables)
    sql = f"SELECT {_bucket_sql(p)} AS b, AVG(ts), AVG(v), COUNT(*) FROM ({rows_of}) GROUP BY b ORDER BY b"
    rows = conn.execute(sql, [*params, device_id, start, end] * len(tables)).fetchall()
    points = [(p.stamp(float(ts), k, start, end), None if v is None else float(v)) for k, ts, v, _ in rows]
    return points, sum(n for *_, n in rows)


def _rollup_series(conn: sqlite3.Connection, table: str, recent: list[str], device_id: str, metric: str,
                   start: float, end: float, p: Plan) -> tuple[list[tuple[float, float | None]], int]:
    half = p.tier.seconds / 2
    parts = [f"SELECT {_bucket_sql(p)} AS b, ts + {half} AS tm, n, total FROM {table} "
             "WHERE device_id = ? AND metric = ? AND ts >= ? AND ts <= ? AND n > 0"]
    params: list[object] = [device_id, metric, p.origin, end]
    if recent:  # samples not yet moved (and so not yet in the roll-ups): at most `merge_every_s` of them
        value, extra = _value_sql(metric)
        parts.append(f"SELECT {_bucket_sql(p)} AS b, ts AS tm, 1 AS n, {value} AS total FROM samples_recent "
                     f"WHERE device_id = ? AND ts >= ? AND ts <= ? AND {value} IS NOT NULL")
        params += [*extra, device_id, p.origin, end, *extra]
    sql = (f"SELECT b, SUM(n * tm) / SUM(n), SUM(total) / SUM(n), COUNT(*) FROM ({' UNION ALL '.join(parts)}) "
           "GROUP BY b ORDER BY b")
    rows = conn.execute(sql, params).fetchall()
    points = [(p.stamp(None if tm is None else float(tm), k, start, end), None if v is None else float(v))
              for k, tm, v, _ in rows]
    return points, sum(n for *_, n in rows)


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
