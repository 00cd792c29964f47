"""The SQLite telemetry store deletes samples older than its retention, by receive time."""

from __future__ import annotations

from pathlib import Path

from telemetry.model import Point
from telemetry.sqlite import SqliteStore, read_sqlite_samples

DAY = 86400.0


def point(device: str, seq: int, received_at: float, ts: float | None = None) -> Point:
    return Point(device, seq, received_at if ts is None else ts, received_at, {"cpu_percent": 10.0})


def test_old_samples_are_pruned_periodically_by_receive_time(tmp_path: Path) -> None:
    now = [100 * DAY]
    store = SqliteStore(tmp_path / "t.sqlite3", retention_days=30, prune_every_s=3600, clock=lambda: now[0])
    store.write([point("gw-1", 1, now[0] - 40 * DAY), point("gw-2", 1, now[0] - 31 * DAY)])
    # a device whose clock is decades behind keeps its recent samples: retention goes by receive time
    store.write([point("gw-1", 2, now[0] - 1 * DAY), point("gw-3", 1, now[0], ts=1000.0)])
    assert len(read_sqlite_samples(tmp_path / "t.sqlite3")) == 4  # the first prune comes a minute after start

    now[0] += 61
    store.write([point("gw-4", 1, now[0])])  # the write that finds the prune due
    kept = {(r["device_id"], r["seq"]) for r in read_sqlite_samples(tmp_path / "t.sqlite3")}
    assert kept == {("gw-1", 2), ("gw-3", 1), ("gw-4", 1)}
    assert store.pruned == 2

    # devices first seen after the first prune are pruned too, an hour later
    store.write([point("gw-5", 1, now[0] - 45 * DAY)])
    now[0] += 1800
    store.write([])
    assert ("gw-5", 1) in {(r["device_id"], r["seq"]) for r in read_sqlite_samples(tmp_path / "t.sqlite3")}
    now[0] += 1801
    store.write([])
    assert ("gw-5", 1) not in {(r["device_id"], r["seq"]) for r in read_sqlite_samples(tmp_path / "t.sqlite3")}
    store.close()


def test_zero_retention_keeps_everything(tmp_path: Path) -> None:
    now = [100 * DAY]
    store = SqliteStore(tmp_path / "t.sqlite3", retention_days=0, clock=lambda: now[0])
    store.write([point("gw-1", 1, 0.0)])
    now[0] += 10 * DAY
    store.write([point("gw-1", 2, now[0])])
    assert store.prune() == 0
    assert len(read_sqlite_samples(tmp_path / "t.sqlite3")) == 2
    store.close()
