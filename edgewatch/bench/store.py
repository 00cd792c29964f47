"""`edgewatch bench store`: the SQLite telemetry store under a large fleet, as the collector's store
writer drives it, against the baseline of writing every batch straight into the device-ordered
history (what the store did before it appended and moved).

A fleet of `--devices` devices reports round-robin (one sample each per "second"), written in
batches of `--batch` samples; the store's move runs every `--move-every` samples. Printed per
`--report-every` samples: the CPU microseconds per sample of each way, and their ratio.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from telemetry.model import Point
from telemetry.sqlite import SAMPLE_COLUMNS, SqliteStore


class DirectStore(SqliteStore):
    """The baseline: each batch written into `samples` itself (`samples_recent` stays empty)."""

    _write_sql = f"INSERT OR REPLACE INTO samples ({SAMPLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def batches(devices: int, total: int, batch: int) -> Iterator[list[Point]]:
    ids = [f"gw-{d:05d}" for d in range(devices)]
    start = 1.7e9
    out: list[Point] = []
    for n in range(total):
        second = n // devices
        metrics = {"cpu_percent": float(n % 97), "mem_percent": float(n % 89), "latency_ms": float(n % 53)}
        out.append(Point(ids[n % devices], second, start + second, start + second + 0.01, metrics))
        if len(out) == batch:
            yield out
            out = []
    if out:
        yield out


def run(store: SqliteStore, devices: int, total: int, batch: int, report_every: int,
        written_so_far: list[float]) -> list[float]:
    """CPU microseconds per sample for each `report_every` samples written."""
    figures = []
    written, mark, cpu = 0, 0, time.process_time()
    for points in batches(devices, total, batch):
        written += len(points)
        written_so_far[0] = written
        store.write(points)
        if written - mark >= report_every:
            now = time.process_time()
            figures.append((now - cpu) / (written - mark) * 1e6)
            mark, cpu = written, now
    store.close()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgewatch bench store", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=3_000_000)
    parser.add_argument("--batch", type=int, default=2_000, help="samples per write (the collector's batch)")
    parser.add_argument("--move-every", type=int, default=100_000,
                        help="samples between moves (10 s of a 10 000-device fleet at 1 s)")
    parser.add_argument("--report-every", type=int, default=500_000)
    args = parser.parse_args(list(argv or []))
    with tempfile.TemporaryDirectory(prefix="edgewatch-bench-store-") as tmp:
        # The move is timed by samples written, not by the clock, so that both runs are repeatable.
        written = [0.0]
        appended = SqliteStore(Path(tmp) / "appended.sqlite3", merge_every_s=args.move_every,
                               clock=lambda: written[0])
        direct = DirectStore(Path(tmp) / "direct.sqlite3")
        base = run(direct, args.devices, args.samples, args.batch, args.report_every, [0.0])
        ours = run(appended, args.devices, args.samples, args.batch, args.report_every, written)
        with sqlite3.connect(Path(tmp) / "appended.sqlite3") as conn:
            stored = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
    assert stored == args.samples, f"{stored} of {args.samples} samples in the history"
    print(f"SQLite telemetry store, {args.devices:,} devices, batches of {args.batch:,}, "
          f"moved every {args.move_every:,} samples; CPU per sample")
    print(f"{'samples stored':>16}{'direct':>12}{'append+move':>14}{'ratio':>8}")
    for i, (b, o) in enumerate(zip(base, ours, strict=False)):
        print(f"{(i + 1) * args.report_every:>16,}{b:>10.1f} µs{o:>12.1f} µs{o / b:>8.2f}")
    return 0
