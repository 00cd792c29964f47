"""Telemetry stores against real back ends (an SQLite file, VictoriaMetrics' line-protocol write API)
and the store writer's buffering, retries and drop counting. Every store's reads, writes and
retention are held by the contract suite in tests/telemetry/."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from collector.writer import StoreWriter
from telemetry.errors import PointsRefused, StoreUnavailable
from telemetry.influxdb import InfluxStore
from telemetry.model import Point
from telemetry.sqlite import SqliteStore, read_sqlite_samples
from telemetry.victoriametrics import VictoriaMetricsStore
from tests.collector.vm import victoria_metrics
from tests.support.services import free_port

NOW = time.time()


def points(n: int, device: str = "gw-1", start: int = 0) -> list[Point]:
    return [
        Point(device, seq, NOW - 1000 + seq, NOW, {"cpu_percent": float(seq % 100), "mem_percent": None,
                                                    "latency_ms": 12.5, "temperature_c": 40.0})
        for seq in range(start, start + n)
    ]


def test_sqlite_store_writes_columns_and_extras_idempotently(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.sqlite3")
    store.write(points(3))
    store.write(points(3))  # redelivery: same keys, no new rows
    store.close()
    rows = read_sqlite_samples(tmp_path / "t.sqlite3")
    assert len(rows) == 3
    assert rows[1]["cpu_percent"] == 1.0 and rows[1]["mem_percent"] is None
    assert rows[1]["latency_ms"] == 12.5 and rows[1]["extra"] == '{"temperature_c":40.0}'


def table_counts(path: Path) -> tuple[int, int]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return tuple(int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[return-value]
                     for t in ("samples", "samples_recent"))


def test_sqlite_store_appends_then_moves_each_devices_samples_into_its_history(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    now = [1000.0]
    store = SqliteStore(path, merge_every_s=10, clock=lambda: now[0])
    store.write(points(3))  # the first write moves what an earlier run left: nothing yet
    store.write(points(2, device="gw-2"))
    assert table_counts(path) == (3, 2)
    assert [(r["device_id"], r["seq"]) for r in read_sqlite_samples(path)] == [
        ("gw-1", 0), ("gw-1", 1), ("gw-1", 2), ("gw-2", 0), ("gw-2", 1)]  # readers see both tables
    changed = [p._replace(metrics={**p.metrics, "cpu_percent": 99.0}) for p in points(1, device="gw-2")]
    store.write(changed)  # delivered again with another value: the later copy wins
    assert read_sqlite_samples(path)[3]["cpu_percent"] == 99.0 and len(read_sqlite_samples(path)) == 5
    now[0] += 10
    store.write(points(1, device="gw-1", start=3))
    assert table_counts(path) == (6, 0)
    rows = read_sqlite_samples(path)
    assert len(rows) == 6 and rows[4]["cpu_percent"] == 99.0


def test_sqlite_store_moves_what_a_crash_left_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    crashed = SqliteStore(path, merge_every_s=3600)
    crashed.write(points(2))
    crashed.write(points(2, start=2))
    assert table_counts(path) == (2, 2)  # never closed: as after SIGKILL
    SqliteStore(path).write(points(1, device="gw-2"))
    assert table_counts(path) == (5, 0)


def test_a_failed_move_keeps_the_samples_readable_and_is_retried(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "t.sqlite3"
    now = [1000.0]
    store = SqliteStore(path, merge_every_s=10, clock=lambda: now[0])
    store.write(points(1))
    with sqlite3.connect(path) as conn:  # the history refuses rows for a while (a full disk, say)
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON samples BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    now[0] += 10
    store.write(points(2, start=1))  # stored all the same; the move fails and is logged
    assert table_counts(path) == (1, 2) and len(read_sqlite_samples(path)) == 3
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER refuse")
    now[0] += 10
    store.write(points(1, start=3))
    assert table_counts(path) == (4, 0)
    store.close()


def test_sqlite_store_unwritable_path_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    store = SqliteStore(tmp_path / "file" / "t.sqlite3")
    with pytest.raises(StoreUnavailable, match=r"t\.sqlite3"):
        store.write(points(1))


def test_line_protocol_store_round_trip_through_victoria_metrics() -> None:
    with victoria_metrics() as vm:
        store = VictoriaMetricsStore(vm.url)
        assert store.write(points(5)) == 0
        store.close()
        series = {s["metric"]["__name__"]: s for s in vm.export()}  # type: ignore[index]
    assert set(series) == {"device_health_cpu_percent", "device_health_latency_ms",
                           "device_health_temperature_c", "device_health_seq"}
    cpu = series["device_health_cpu_percent"]
    assert cpu["metric"] == {"__name__": "device_health_cpu_percent", "device_id": "gw-1"}
    assert cpu["values"] == [0, 1, 2, 3, 4]
    expected = [(NOW - 1000 + i) * 1000 for i in range(5)]
    assert all(abs(got - want) <= 1 for got, want in zip(cpu["timestamps"], expected, strict=True))
    assert series["device_health_seq"]["values"] == [0, 1, 2, 3, 4]


def test_influx_store_unreachable_raises_store_unavailable() -> None:
    store = InfluxStore(f"http://127.0.0.1:{free_port()}", database="b", timeout_s=2)
    with pytest.raises(StoreUnavailable):
        store.write(points(1))
    store.close()


class Flaky:
    """Wraps a real store; fails while `down` is set."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.down = threading.Event()
        self.calls = 0

    def write(self, batch: Sequence[Point]) -> int:
        self.calls += 1
        if self.down.is_set():
            raise StoreUnavailable("down for the test")
        return self.inner.write(batch)

    def close(self) -> None:
        self.inner.close()


def wait_until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_writer_acknowledges_after_the_write_and_batches(tmp_path: Path) -> None:
    flaky = Flaky(SqliteStore(tmp_path / "t.sqlite3"))
    acked: list[int] = []
    writer = StoreWriter(flaky, flush_points=100, flush_interval_s=0.05)
    writer.start()
    for i in range(10):
        writer.submit(points(30, start=i * 30), lambda i=i: acked.append(i))
    assert writer.flush(10)
    writer.stop()
    assert acked == list(range(10))  # in order
    assert len(read_sqlite_samples(tmp_path / "t.sqlite3")) == 300
    assert writer.stats.written == 300 and flaky.calls <= 5


def test_writer_buffers_while_down_acks_anyway_and_catches_up(tmp_path: Path) -> None:
    flaky = Flaky(SqliteStore(tmp_path / "t.sqlite3"))
    flaky.down.set()
    acked: list[int] = []
    writer = StoreWriter(flaky, flush_points=50, flush_interval_s=0.01, retry_initial_s=0.05, retry_max_s=0.1)
    writer.start()
    writer.submit(points(10), lambda: acked.append(0))
    wait_until(lambda: writer.stats.failures >= 1)
    writer.submit(points(10, start=10), lambda: acked.append(1))  # submitted while degraded
    assert acked == [0, 1]  # the broker is not held back by the store
    assert writer.depth == 20
    flaky.down.clear()
    assert writer.flush(10)
    writer.stop()
    assert len(read_sqlite_samples(tmp_path / "t.sqlite3")) == 20
    assert writer.stats.dropped == 0


def test_writer_drops_oldest_when_the_buffer_is_full_and_counts(tmp_path: Path) -> None:
    flaky = Flaky(SqliteStore(tmp_path / "t.sqlite3"))
    flaky.down.set()
    dropped: list[int] = []
    writer = StoreWriter(flaky, max_points=25, flush_interval_s=0.01, retry_initial_s=0.05,
                         retry_max_s=0.05, on_dropped=dropped.append)
    writer.start()
    acked: list[int] = []
    writer.submit(points(10), lambda: acked.append(0))
    wait_until(lambda: writer.stats.failures >= 1)
    for i in range(1, 5):
        writer.submit(points(10, start=i * 10), lambda i=i: acked.append(i))
    assert writer.stats.dropped == 30 and sum(dropped) == 30
    assert sorted(acked) == [0, 1, 2, 3, 4]
    flaky.down.clear()
    assert writer.flush(10)
    writer.stop()
    rows = read_sqlite_samples(tmp_path / "t.sqlite3")
    assert [r["seq"] for r in rows] == list(range(30, 50))  # the newest survive


def test_writer_stop_leaves_unwritten_batches_unacknowledged(tmp_path: Path) -> None:
    flaky = Flaky(SqliteStore(tmp_path / "t.sqlite3"))
    writer = StoreWriter(flaky, flush_interval_s=10)  # would wait long for more points
    writer.start()
    acked: list[int] = []
    flaky.down.set()
    writer.submit(points(5), lambda: acked.append(1))
    writer.stop(timeout=5)  # stop forces a write attempt, which fails: nothing is acknowledged
    assert acked == []


class Slow(Flaky):
    """Takes `delay` seconds per write (a store that is up but slow)."""

    def __init__(self, inner: SqliteStore, delay: float) -> None:
        super().__init__(inner)
        self.delay = delay

    def write(self, batch: Sequence[Point]) -> int:
        time.sleep(self.delay)
        return super().write(batch)


def test_a_slow_store_does_not_hold_acknowledgements_past_the_limit(tmp_path: Path) -> None:
    slow = Slow(SqliteStore(tmp_path / "t.sqlite3"), delay=1.5)
    writer = StoreWriter(slow, flush_points=5, flush_interval_s=0.01, max_ack_delay_s=0.2)
    writer.start()
    acked: list[int] = []
    writer.submit(points(5), lambda: acked.append(0))
    wait_until(lambda: slow.calls >= 1)  # the first write is under way, for 1.5 s
    writer.submit(points(5, start=5), lambda: acked.append(1))
    time.sleep(0.3)  # stands for the processing thread's next batches
    writer.submit(points(5, start=10), lambda: acked.append(2))
    assert acked == [0, 1, 2]  # released early: the broker is not held back by a slow store
    assert writer.flush(20)
    writer.stop()
    assert len(read_sqlite_samples(tmp_path / "t.sqlite3")) == 15


def test_a_poison_point_is_refused_alone_and_the_rest_of_its_batch_is_written(tmp_path: Path) -> None:
    """A value the store cannot hold (a seq beyond 64 bits, which the decoder refuses, reaching the store
    some other way) must neither stall the writer nor take the good points of its batch with it."""
    store = SqliteStore(tmp_path / "t.sqlite3")
    poison = Point("gw-9", 2**70, NOW, NOW, {"cpu_percent": 1.0})
    with pytest.raises(PointsRefused):
        store.write([poison])
    refused: list[tuple[Point, str]] = []
    acked = threading.Event()
    writer = StoreWriter(store, flush_points=1000, flush_interval_s=0.01,
                         on_refused=lambda p, exc: refused.append((p, str(exc))))
    writer.start()
    good = points(40)
    writer.submit([*good[:17], poison, *good[17:]], acked.set)
    assert writer.flush(10) and acked.is_set()
    writer.submit(points(5, device="gw-2"))
    assert writer.flush(10)
    writer.stop()
    assert [p for p, _ in refused] == [poison] and "SQLite" in refused[0][1]
    assert writer.stats.refused == 1 and writer.stats.written == 45 and writer.stats.failures == 0
    stored = read_sqlite_samples(tmp_path / "t.sqlite3")
    assert sorted((s["device_id"], s["seq"]) for s in stored) == sorted(
        [("gw-1", i) for i in range(40)] + [("gw-2", i) for i in range(5)])
