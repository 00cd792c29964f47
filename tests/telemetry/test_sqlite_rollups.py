"""The SQLite store's roll-ups: maintained in the same transaction as each move, so redelivery, a
changed copy, a failed move and a file written before roll-ups existed all leave them right."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from telemetry.model import Point
from telemetry.sqlite import SqliteStore

BASE = 1_700_000_000.0 - 1_700_000_000.0 % 3600  # a whole hour


def point(seq: int, value: float | None, device: str = "gw-1", extra: float | None = None) -> Point:
    metrics: dict[str, float | None] = {"cpu_percent": value}
    if extra is not None:
        metrics["temperature_c"] = extra
    return Point(device, seq, BASE + seq * 10, BASE + seq * 10, metrics)


def rollups(path: Path, table: str = "rollup_1m") -> dict[tuple[str, str, float], tuple[int, float, float, float]]:
    with sqlite3.connect(path) as conn:
        return {(d, m, ts): (n, total, lo, hi) for d, m, ts, n, total, lo, hi in conn.execute(
            f"SELECT device_id, metric, ts, n, total, lo, hi FROM {table}")}


def test_minutes_and_hours_count_each_sample_once(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    store = SqliteStore(path)
    store.write([point(i, float(i), extra=20.0) for i in range(12)])  # two minutes
    store.write([point(i, float(i), extra=20.0) for i in range(3, 9)])  # redelivered
    store.merge()
    assert rollups(path) == {("gw-1", "cpu_percent", BASE): (6, 15.0, 0.0, 5.0),
                             ("gw-1", "cpu_percent", BASE + 60): (6, 51.0, 6.0, 11.0),
                             ("gw-1", "temperature_c", BASE): (6, 120.0, 20.0, 20.0),
                             ("gw-1", "temperature_c", BASE + 60): (6, 120.0, 20.0, 20.0)}
    assert rollups(path, "rollup_1h") == {("gw-1", "cpu_percent", BASE): (12, 66.0, 0.0, 11.0),
                                          ("gw-1", "temperature_c", BASE): (12, 240.0, 20.0, 20.0)}
    store.close()


def test_a_changed_copy_replaces_its_value_and_a_dropped_metric_leaves(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    store = SqliteStore(path)
    store.write([point(0, 1.0, extra=30.0), point(1, 2.0, extra=30.0)])
    store.merge()
    store.write([point(1, 8.0)])  # the later copy wins: cpu 2 -> 8, and it has no temperature any more
    store.write([point(1, 4.0)])  # and again, before the move: 8 -> 4
    store.merge()
    found = rollups(path)
    assert found[("gw-1", "cpu_percent", BASE)][:2] == (2, 5.0)
    assert found[("gw-1", "temperature_c", BASE)][:2] == (1, 30.0)
    history = store.history("gw-1", ["cpu_percent"], BASE, BASE + 3600, 10)
    assert history.tier == "1m" and history.series[0].points[0][1] == pytest.approx(2.5)
    store.close()


def test_a_failed_move_leaves_the_roll_ups_as_they_were_and_the_retry_adds_them_once(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    now = [1000.0]
    store = SqliteStore(path, merge_every_s=10, clock=lambda: now[0])
    store.write([point(0, 1.0)])
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON rollup_1h BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    now[0] += 10
    store.write([point(1, 3.0)])  # the move fails at the roll-ups: all of it is rolled back
    assert rollups(path)[("gw-1", "cpu_percent", BASE)][:2] == (1, 1.0)
    assert store.history("gw-1", ["cpu_percent"], BASE, BASE + 3600, 10).series[0].points[0][1] == 2.0
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER refuse")
    now[0] += 10
    store.write([point(2, 5.0)])
    assert rollups(path)[("gw-1", "cpu_percent", BASE)][:2] == (3, 9.0)
    store.close()


def test_a_file_written_before_roll_ups_existed_gets_them_at_the_first_open(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:  # the layout an earlier version wrote
        conn.executescript("""
            CREATE TABLE samples (device_id TEXT NOT NULL, ts REAL NOT NULL, seq INTEGER NOT NULL,
                received_at REAL NOT NULL, cpu_percent REAL, mem_percent REAL, latency_ms REAL, extra TEXT,
                PRIMARY KEY (device_id, ts, seq)) WITHOUT ROWID;
            CREATE TABLE samples_recent (device_id TEXT NOT NULL, ts REAL NOT NULL, seq INTEGER NOT NULL,
                received_at REAL NOT NULL, cpu_percent REAL, mem_percent REAL, latency_ms REAL, extra TEXT);
        """)
        for i in range(360):  # an hour, every 10 s; the last few not yet moved
            table = "samples" if i < 350 else "samples_recent"
            conn.execute(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)",
                         ("gw-old", BASE + i * 10, i, BASE + i * 10, float(i % 60), '{"temperature_c": 25}'))
    reader = SqliteStore(path)
    before = reader.history("gw-old", ["cpu_percent"], BASE, BASE + 3599, 1)
    assert before.tier == "raw" and before.series[0].points[0][1] == pytest.approx(29.5)  # no roll-ups yet
    store = SqliteStore(path)
    store.write([point(400, 1.0, device="gw-new")])  # the collector's first write after the upgrade
    hours = rollups(path, "rollup_1h")
    assert hours[("gw-old", "cpu_percent", BASE)] == (360, 6 * sum(range(60)), 0.0, 59.0)
    assert hours[("gw-old", "temperature_c", BASE)][:2] == (360, 9000.0)
    after = reader.history("gw-old", ["cpu_percent"], BASE, BASE + 3599, 1)
    assert after.tier == "1m" and after.series[0].points[0][1] == pytest.approx(29.5) and after.rows == 60
    store.close()
