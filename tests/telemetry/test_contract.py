"""One contract, every telemetry store: SQLite, VictoriaMetrics and InfluxDB, each a real server (or
file) on 127.0.0.1. What a chart reads must not depend on which store the collector writes to."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence

import pytest

from telemetry.errors import StoreUnavailable
from telemetry.influxdb import InfluxStore
from telemetry.model import Plan, Point, Series, TelemetryStore, plan
from telemetry.null import NullStore
from telemetry.sqlite import SqliteStore
from telemetry.victoriametrics import VictoriaMetricsStore
from tests.support.services import free_port
from tests.telemetry.conftest import Backend, Retention

HOUR = 3600.0
DAY = 86400.0
NOW = time.time()
BASE = math.floor((NOW - 3 * DAY) / HOUR) * HOUR  # a whole hour three days back


def samples(device: str, start: float, count: int, every: float, *, received_at: float | None = None,
            extra: bool = False) -> list[Point]:
    out = []
    for i in range(count):
        ts = start + i * every
        metrics: dict[str, float | None] = {"cpu_percent": float(i % 50), "mem_percent": 40.0 + i % 7,
                                            "latency_ms": None if i % 5 == 0 else 10.0 + i % 3}
        if extra:
            metrics["temperature_c"] = 30.0 + i % 11
            metrics["fan rpm"] = 1000.0 + i
        out.append(Point(device, i, ts, ts if received_at is None else received_at, metrics))
    return out


def expected(points: Iterable[Point], metric: str, p: Plan, start: float, end: float) -> list[float]:
    """Bucket means the plan asks for: raw samples by their time; roll-ups by their bucket's start."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for point in points:
        value = point.metrics.get(metric)
        anchor = point.ts if not p.tier.seconds else math.floor(point.ts / p.tier.seconds) * p.tier.seconds
        low = start if not p.tier.seconds else p.origin
        if value is not None and low <= anchor <= end:
            buckets[p.index(anchor)].append(value)
    return [sum(v) / len(v) for _, v in sorted(buckets.items())]


def values(series: Series) -> list[float]:
    return [v for _, v in series.points if v is not None]


def assert_close(got: Sequence[float], want: Sequence[float]) -> None:
    assert len(got) == len(want), (got, want)
    assert all(math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-9) for g, w in zip(got, want, strict=True)), (got, want)


def write(backend: Backend, store: TelemetryStore, points: list[Point], batch: int = 100) -> None:
    for i in range(0, len(points), batch):
        assert store.write(points[i:i + batch]) == 0
    backend.settle(store)


@pytest.mark.parametrize("max_points, tier", [(1000, "raw"), (12, "1m")])
def test_round_trip_averages_each_bucket(backend: Backend, device: str, max_points: int, tier: str) -> None:
    points = samples(device, BASE + 5, 360, 10.0)  # an hour of samples every 10 s
    store = backend.store()
    write(backend, store, points)
    start, end = BASE, BASE + HOUR
    p = plan(start, end, max_points)
    assert p.tier.name == tier
    history = store.history(device, ["cpu_percent", "latency_ms"], start, end, max_points)
    assert history.tier == tier and [s.metric for s in history.series] == ["cpu_percent", "latency_ms"]
    for series in history.series:
        assert_close(values(series), expected(points, series.metric, p, start, end))
    assert history.rows > 0


def test_writing_again_changes_nothing(backend: Backend, device: str) -> None:
    points = samples(device, BASE + 5, 120, 10.0)
    store = backend.store()
    write(backend, store, points)
    start, end = BASE, BASE + 20 * 60
    before = [store.history(device, ["cpu_percent", "mem_percent"], start, end, n) for n in (1000, 10)]
    latest = store.latest([device])
    write(backend, store, points[30:90], batch=7)  # redelivered, in other batches
    write(backend, backend.store(), points[:40])  # and by another writer (a restarted collector)
    after = [store.history(device, ["cpu_percent", "mem_percent"], start, end, n) for n in (1000, 10)]
    assert [[values(s) for s in h.series] for h in after] == [[values(s) for s in h.series] for h in before]
    assert store.latest([device]) == latest


@pytest.mark.parametrize("max_points", [1, 2, 7, 10, 300, 2000])
def test_never_more_buckets_than_asked_and_all_within_the_range(backend: Backend, device: str,
                                                                 max_points: int) -> None:
    store = backend.store()
    write(backend, store, samples(device, BASE + 0.25, 721, 5.0))
    start, end = BASE + 17.3, BASE + HOUR - 0.7  # not aligned to anything
    history = store.history(device, ["cpu_percent"], start, end, max_points)
    stamps = [t for t, _ in history.series[0].points]
    assert 1 <= len(stamps) <= max_points
    assert all(start <= t <= end for t in stamps) and stamps == sorted(stamps)


def test_latest_is_each_devices_newest_sample(backend: Backend, device: str) -> None:
    store = backend.store()
    other = device + "-b"
    write(backend, store, [*samples(device, BASE, 30, 10.0), *samples(other, BASE, 3, 10.0)])
    latest = store.latest([device, other, device + "-never-seen"])
    assert set(latest) == {device, other}
    newest = samples(device, BASE, 30, 10.0)[-1]
    assert latest[device].ts == pytest.approx(newest.ts, abs=1e-3) and latest[device].seq == newest.seq
    assert latest[device].metrics == {k: v for k, v in newest.metrics.items() if v is not None}
    assert latest[other].seq == 2


def test_an_unknown_device_has_empty_series(backend: Backend, device: str) -> None:
    store = backend.store()
    write(backend, store, samples(device, BASE, 10, 10.0))
    for n in (1000, 10):
        history = store.history(device + "-unknown", ["cpu_percent", "temperature_c"], BASE, BASE + HOUR, n)
        assert [(s.metric, s.points) for s in history.series] == [("cpu_percent", []), ("temperature_c", [])]
    assert store.history(device, ["no_such_metric"], BASE, BASE + HOUR, 10).series[0].points == []
    assert store.latest([device + "-unknown"]) == {}


@pytest.mark.parametrize("max_points", [1000, 12])
def test_extra_metrics_round_trip_like_core_ones(backend: Backend, device: str, max_points: int) -> None:
    points = samples(device, BASE + 5, 360, 10.0, extra=True)
    store = backend.store()
    write(backend, store, points)
    start, end = BASE, BASE + HOUR
    p = plan(start, end, max_points)
    history = store.history(device, ["temperature_c", "fan rpm"], start, end, max_points)
    for series in history.series:
        assert_close(values(series), expected(points, series.metric, p, start, end))
    assert store.latest([device])[device].metrics["fan rpm"] == 1359.0


@pytest.mark.parametrize("name", ["Zürich gw 1,a=b", "网关 01", "quote's \"double\" = and, comma"])
def test_unicode_and_space_device_ids(backend: Backend, device: str, name: str) -> None:
    device_id = f"{name} {device}"
    points = samples(device_id, BASE + 5, 60, 10.0)
    store = backend.store()
    write(backend, store, [*points, *samples(device_id + " twin", BASE + 5, 60, 10.0)])
    start, end = BASE, BASE + 10 * 60
    p = plan(start, end, 1000)
    assert_close(values(store.history(device_id, ["cpu_percent"], start, end, 1000).series[0]),
                 expected(points, "cpu_percent", p, start, end))
    assert store.latest([device_id])[device_id].seq == 59


def test_retention_deletes_what_is_older_than_each_tier_keeps(backend: Backend, device: str) -> None:
    old = samples(device, NOW - 5 * DAY, 30, 60.0)
    recent = samples(device, NOW - 2 * HOUR, 30, 60.0)
    writing = backend.store(Retention(raw_days=10, minute_days=20, hour_days=30))
    write(backend, writing, [*old, *recent])
    store = backend.store(Retention(raw_days=1, minute_days=4, hour_days=30))
    store.prune(NOW)
    backend.settle(store)
    old_raw = store.history(device, ["cpu_percent"], NOW - 5 * DAY, NOW - 5 * DAY + HOUR, 1000, tier="raw")
    old_minutes = store.history(device, ["cpu_percent"], NOW - 5 * DAY, NOW - 5 * DAY + HOUR, 10, tier="1m")
    old_hours = store.history(device, ["cpu_percent"], NOW - 6 * DAY, NOW - 4 * DAY, 10, tier="1h")
    new_raw = store.history(device, ["cpu_percent"], NOW - 3 * HOUR, NOW, 1000, tier="raw")
    assert len(values(new_raw.series[0])) == 30
    assert values(old_hours.series[0])  # the coarsest tier outlives the others
    if store.prunes:
        assert values(old_raw.series[0]) == [] and values(old_minutes.series[0]) == []
    else:  # VictoriaMetrics: one retention for everything, the server's own (-retentionPeriod)
        assert store.prune(NOW) == 0 and len(values(old_raw.series[0])) == 30


def test_a_long_range_reads_the_hourly_roll_up_even_after_raw_samples_are_gone(backend: Backend, device: str) -> None:
    first = math.floor((NOW - 10 * DAY) / HOUR) * HOUR
    points = samples(device, first + 30, 48 * 12, 300.0)  # two days, a sample every 5 minutes
    back_then = first + 2 * DAY + 60  # written as they came in, when raw samples were still kept
    writing = backend.store(Retention(raw_days=7, minute_days=30, hour_days=365), clock=lambda: back_then)
    write(backend, writing, points, batch=50)
    store = backend.store(Retention(raw_days=7, minute_days=30, hour_days=365))
    store.prune(NOW)
    backend.settle(store)
    start, end = first, first + 2 * DAY
    history = store.history(device, ["cpu_percent", "mem_percent"], start, end, 24)
    p = plan(start, end, 24)
    assert history.tier == "1h" and p.width >= 2 * HOUR
    for series in history.series:
        assert_close(values(series), expected(points, series.metric, p, start, end))
    if store.prunes:  # the raw samples are gone; the roll-up answered
        assert values(store.history(device, ["cpu_percent"], start, end, 24, tier="raw").series[0]) == []
    if isinstance(store, SqliteStore | InfluxStore):
        assert history.rows == 2 * 48  # one hourly row per metric and hour, not 576 samples


@pytest.mark.parametrize("kind", ["sqlite", "victoriametrics", "influxdb"])
def test_a_store_that_is_down_raises_store_unavailable(kind: str, tmp_path) -> None:
    if kind == "sqlite":
        (tmp_path / "file").write_text("not a directory")
        store: TelemetryStore = SqliteStore(tmp_path / "file" / "t.sqlite3")
        (tmp_path / "dir.sqlite3").mkdir()
        reader: TelemetryStore = SqliteStore(tmp_path / "dir.sqlite3")
    else:
        url = f"http://127.0.0.1:{free_port()}"
        store = reader = VictoriaMetricsStore(url, timeout_s=2) if kind == "victoriametrics" else \
            InfluxStore(url, database="edgewatch", timeout_s=2)
    with pytest.raises(StoreUnavailable):
        store.write(samples("gw-down", BASE, 3, 10.0))
    with pytest.raises(StoreUnavailable):
        reader.history("gw-down", ["cpu_percent"], BASE, BASE + HOUR, 10)
    with pytest.raises(StoreUnavailable):
        reader.latest(["gw-down"])
    store.close()
    reader.close()


def test_the_null_store_keeps_nothing() -> None:
    store = NullStore()
    assert store.write(samples("gw-1", BASE, 5, 10.0)) == 0
    history = store.history("gw-1", ["cpu_percent"], BASE, BASE + HOUR, 10)
    assert [s.points for s in history.series] == [[]] and not store.available
    assert store.latest(["gw-1"]) == {} and store.prune() == 0


def test_influxdb_rolls_up_late_or_at_close_and_an_interrupted_run_is_caught_up(influx, device: str) -> None:
    """InfluxDB's minutes are recomputed every `rollup_every_s`, not per batch; what a run wrote and had
    not rolled up when it stopped (closed, or killed) is rolled up by the next one."""
    database = f"deferred_{device.replace('-', '_')}"
    now = [NOW]
    start = math.floor(NOW / 60) * 60 - 240

    def store() -> InfluxStore:
        return InfluxStore(influx.url, database=database, rollup_every_s=3600, clock=lambda: now[0])

    def minutes(s: InfluxStore) -> list[float]:
        return values(s.history(device, ["cpu_percent"], start, start + 240, 10, tier="1m").series[0])

    first = store()
    first.write(samples(device, start, 6, 10.0))  # the first write rolls up at once
    first.write(samples(device, start + 60, 6, 10.0))  # later ones wait for the period
    assert len(minutes(first)) == 1
    first.close()  # closing rolls up what is due
    assert len(minutes(store())) == 2
    killed = store()
    killed.write(samples(device, start + 120, 6, 10.0))
    killed.write(samples(device, start + 180, 6, 10.0))  # never rolled up: the process dies here
    assert len(minutes(killed)) == 3
    now[0] += 30
    store().write(samples(device + "-other", start + 200, 1, 10.0))  # the next run catches up
    assert len(minutes(killed)) == 4
