"""`edgewatch bench telemetry`: the telemetry stores side by side, each a real server (or file) on
this machine: SQLite, VictoriaMetrics and InfluxDB 1.x (`influxd`), whichever are installed.

1. Writes: a fleet of `--devices` devices, `--samples` each, round-robin, in batches of `--batch`
   as the collector's store writer sends them (roll-up upkeep included). Points per second, and
   the ratio to the SQLite store in the same run.
2. A long chart: one device with `--days` of samples every `--interval` seconds, read back as a
   chart of `--points` buckets, once through the tier the store picks (the 1-hour roll-ups for 90
   days) and once forced to the raw samples (the baseline): median time of `--repeat` reads, rows
   the store read, and the ratios. VictoriaMetrics downsamples inside the server either way; its
   rows are the points it returned.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import httpx

from edgewatch.bench import _servers
from telemetry.influxdb import InfluxStore
from telemetry.model import Point, TelemetryStore
from telemetry.sqlite import SqliteStore
from telemetry.victoriametrics import VictoriaMetricsStore

BACKENDS = ("sqlite", "victoriametrics", "influxdb")


def fleet(devices: int, per_device: int, start: float, every: float) -> Iterator[Point]:
    ids = [f"gw-{d:05d}" for d in range(devices)]
    for i in range(per_device):
        ts = start + i * every
        for d, device_id in enumerate(ids):
            yield Point(device_id, i, ts + d * 0.001, ts + 0.5, {
                "cpu_percent": float((i + d) % 97), "mem_percent": float((i * 3 + d) % 89),
                "latency_ms": float((i + 2 * d) % 53)})


def batched(points: Iterator[Point], size: int) -> Iterator[list[Point]]:
    batch: list[Point] = []
    for p in points:
        batch.append(p)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Backend:
    def __init__(self, kind: str, make: Callable[[str], TelemetryStore], settle: Callable[[TelemetryStore], None]):
        self.kind, self.make, self.settle = kind, make, settle


def backends(names: Sequence[str], stack: ExitStack, workdir: Path) -> list[Backend]:
    found = []
    for kind in names:
        if kind == "sqlite":
            found.append(Backend(kind, lambda name: SqliteStore(workdir / f"{name}.sqlite3"),
                                 lambda s: s.merge() if isinstance(s, SqliteStore) else None))
        elif kind == "victoriametrics":
            try:
                url = stack.enter_context(_servers.victoria_metrics())
            except FileNotFoundError as exc:
                print(f"skipped VictoriaMetrics: {exc}")
                continue

            def flush(store: TelemetryStore, url: str = url) -> None:
                httpx.get(f"{url}/internal/force_flush", timeout=30).raise_for_status()

            def vm_store(name: str, url: str = url) -> TelemetryStore:
                return VictoriaMetricsStore(url, timeout_s=120)  # each part writes its own devices

            found.append(Backend(kind, vm_store, flush))
        elif kind == "influxdb":
            try:
                url = stack.enter_context(_servers.influxdb())
            except FileNotFoundError as exc:
                print(f"skipped InfluxDB: {exc}")
                continue
            def influx_store(name: str, url: str = url) -> TelemetryStore:
                return InfluxStore(url, database=f"bench_{name}", timeout_s=120)

            found.append(Backend(kind, influx_store, lambda s: s.roll_up() if isinstance(s, InfluxStore) else None))
        else:
            raise SystemExit(f"edgewatch bench telemetry: unknown back end {kind!r}; choose from {', '.join(BACKENDS)}")
    return found


def write_all(backend: Backend, store: TelemetryStore, batches: Iterator[list[Point]]) -> tuple[int, float]:
    written, started = 0, time.perf_counter()
    for batch in batches:
        store.write(batch)
        written += len(batch)
    backend.settle(store)
    return written, time.perf_counter() - started


def timed_reads(store: TelemetryStore, device: str, start: float, end: float, points: int, tier: str | None,
                repeat: int) -> tuple[float, int, str, int]:
    """Median seconds of `repeat` chart reads, rows read, the tier that answered, buckets returned."""
    times, history = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        history = store.history(device, ["cpu_percent", "mem_percent", "latency_ms"], start, end, points, tier=tier)
        times.append(time.perf_counter() - began)
    assert history is not None
    return statistics.median(times), history.rows, history.tier, max(len(s.points) for s in history.series)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgewatch bench telemetry", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated, from: " + ", ".join(BACKENDS))
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--samples", type=int, default=60, help="samples per device in the write part")
    parser.add_argument("--batch", type=int, default=2_000, help="points per write (the store writer's batch)")
    parser.add_argument("--days", type=float, default=90.0, help="history of the chart device")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between the chart device's samples")
    parser.add_argument("--points", type=int, default=300, help="buckets of the chart")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(list(argv or []))
    now = time.time()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="edgewatch-bench-telemetry-") as tmp:
        found = backends([b.strip() for b in args.backends.split(",") if b.strip()], stack, Path(tmp))
        writes: dict[str, float] = {}
        reads: dict[str, list[tuple[float, int, str, int]]] = {}
        for backend in found:
            store = backend.make("fleet")
            count, seconds = write_all(backend, store, batched(
                fleet(args.devices, args.samples, now - args.samples * 10.0 - 60, 10.0), args.batch))
            store.close()
            writes[backend.kind] = count / seconds
            chart = backend.make("chart")
            per_device = int(args.days * 86400 / args.interval)
            start = now - args.days * 86400
            count, seconds = write_all(backend, chart, batched(
                (p._replace(device_id="gw-chart") for p in fleet(1, per_device, start, args.interval)), 5_000))
            print(f"{backend.kind}: wrote the chart device's {count:,} samples in {seconds:.1f} s")
            reads[backend.kind] = [timed_reads(chart, "gw-chart", start, now, args.points, tier, args.repeat)
                                   for tier in (None, "raw")]
            chart.close()
    base = writes.get("sqlite") or next(iter(writes.values()))
    print(f"\nWrites: {args.devices:,} devices x {args.samples} samples, batches of {args.batch:,}")
    print(f"{'store':<16}{'points/s':>12}{'vs SQLite':>11}")
    for kind, rate in writes.items():
        print(f"{kind:<16}{rate:>12,.0f}{rate / base:>10.2f}x")
    samples = int(args.days * 86400 / args.interval)
    print(f"\nA {args.days:g}-day chart of {args.points} buckets, 3 metrics, {samples:,} samples a metric; "
          f"median of {args.repeat} reads")
    print(f"{'store':<16}{'tier':>5}{'rows':>11}{'buckets':>9}{'time':>11}{'raw rows':>11}{'raw time':>11}"
          f"{'rows ratio':>12}{'speed-up':>10}")
    for kind, ((t, rows, tier, buckets), (raw_t, raw_rows, _, _)) in reads.items():
        print(f"{kind:<16}{tier:>5}{rows:>11,}{buckets:>9}{t * 1000:>8.1f} ms{raw_rows:>11,}{raw_t * 1000:>8.1f} ms"
              f"{raw_rows / max(rows, 1):>11.0f}x{raw_t / t:>9.1f}x")
    return 0
