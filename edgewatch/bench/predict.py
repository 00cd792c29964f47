"""`edgewatch bench predict`: how good and how cheap the predictive maintenance core is.

Three parts, each printing figures (docs/predictive.md and docs/performance.md record them):

- `--nab DIR`: the anomaly detector over the whole Numenta Anomaly Benchmark corpus, as a stream
  per file, scored with NAB's method for its three profiles, beside the published scoreboard;
  `--out DIR` also writes per-file results in NAB's own layout (OUT/edgewatch/CATEGORY/
  edgewatch_NAME.csv with timestamp,value,anomaly_score,label) and the scores as JSON;
- simulated slow leaks: how long before the orange alert the predictive warning comes, and how
  many predictive warnings a healthy simulated fleet raises per device-day;
- cost: samples per second on one core and bytes of state per series, with the threshold rule
  engine (the collector's existing per-sample work) as the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import ConfigError, read_toml
from edgewatch import nab
from edgewatch.bench import _fleet
from rules import RuleEngine, Sample, Thresholds
from rules.anomaly import AnomalyDetector
from rules.forecast import TrendForecaster
from rules.predict import Change, PredictiveConfig, PredictiveConfigError, PredictiveMonitor, parse_predictive

DETECTOR_NAME = "edgewatch"
# Published NAB v1.1 standard-profile scores (NAB's scoreboard).
SCOREBOARD = (
    ("ARTime", 74.9),
    ("Numenta HTM", 70.5),
    ("CAD OSE", 69.9),
    ("earthgecko Skyline", 58.2),
    ("KNN CAD", 58.0),
    ("Relative Entropy", 54.6),
    ("Random Cut Forest", 51.7),
    ("Twitter ADVec", 47.1),
    ("Windowed Gaussian", 39.6),
    ("Random", 11.0),
    ("Null", 0.0),
)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="edgewatch bench predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--nab", type=Path, help="a NAB directory (data/, labels/, config/): score the detector")
    parser.add_argument("--out", type=Path, help="write NAB results files and scores here")
    parser.add_argument("--devices", type=int, default=60, help="healthy simulated devices (default 60)")
    parser.add_argument("--days", type=float, default=2.0, help="days simulated per healthy device (default 2)")
    parser.add_argument("--leaks", type=int, default=40, help="simulated leak cases (default 40)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--config", type=Path, help="a settings file whose [predictive] section the fleet uses")
    parser.add_argument("--skip-fleet", action="store_true", help="skip the simulated fleet")
    parser.add_argument("--skip-cost", action="store_true", help="skip the cost measurements")
    args = parser.parse_args(list(argv))
    if args.out is not None and args.nab is None:
        parser.error("--out needs --nab")
    if min(args.devices, args.leaks, args.jobs) < 0 or args.days <= 0 or args.interval <= 0:
        parser.error("counts must not be negative; --days and --interval must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv or [])
    config = PredictiveConfig()
    if args.config is not None:
        try:
            section = read_toml(args.config).get("predictive", {})
            config = parse_predictive(section, source=str(args.config))
        except (ConfigError, PredictiveConfigError) as exc:
            print(f"edgewatch bench predict: {exc}", file=sys.stderr)
            return 2
    if args.nab is not None:
        try:
            run_nab(args.nab, args.out, args.jobs)
        except nab.NabError as exc:
            print(f"edgewatch bench predict: {exc}", file=sys.stderr)
            return 2
    if not args.skip_cost:
        run_cost()
    if not args.skip_fleet:
        run_fleet(args.devices, args.days, args.leaks, args.interval, args.seed, args.jobs, config)
    return 0


# -- NAB --------------------------------------------------------------------------------------------


def detect(data: nab.DataFile) -> list[float]:
    """The detector's score for every row of one NAB file, fed as a stream."""
    update = AnomalyDetector().update
    return [update(ts, value) for ts, value in zip(data.times, data.values, strict=True)]


def _map(function: Callable[[Any], Any], items: Iterable[Any], jobs: int) -> list[Any]:
    if jobs <= 1:
        return [function(item) for item in items]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(function, items, chunksize=1))


def run_nab(root: Path, out: Path | None, jobs: int) -> list[nab.ProfileResult]:
    files = nab.read_corpus(root)
    profiles = nab.read_profiles(root / "config" / "profiles.json")
    rows = sum(len(f.values) for f in files)
    started = time.perf_counter()
    # Longest files first keeps both workers busy to the end.
    order = sorted(files, key=lambda f: -len(f.values))
    scores = dict(zip((f.name for f in order), _map(detect, order, jobs), strict=True))
    elapsed = time.perf_counter() - started
    results = nab.score_corpus(files, scores, profiles)
    print(f"NAB: {len(files)} files, {rows} rows, {sum(len(f.windows) for f in files)} anomaly windows; "
          f"detection took {elapsed:.1f} s with {jobs} worker(s)")
    print(f"{'profile':<20} {'score':>7} {'threshold':>10} {'detected':>9} {'missed':>7} {'false pos.':>10}")
    for result in results:
        detected = sum(f.detected for f in result.files)
        missed = sum(f.missed for f in result.files)
        false_positives = sum(f.false_positives for f in result.files)
        print(f"{result.profile:<20} {result.normalised:7.1f} {result.threshold:10.4f} {detected:9d} "
              f"{missed:7d} {false_positives:10d}")
    standard = next((r for r in results if r.profile == "standard"), results[0])
    print("\nNAB scoreboard, standard profile:")
    board = sorted([*SCOREBOARD, (f"edgewatch (this run, {DETECTOR_NAME})", round(standard.normalised, 1))],
                   key=lambda row: -row[1])
    for name, score in board:
        print(f"  {score:5.1f}  {name}")
    if out is not None:
        for data in files:
            nab.write_results(out, DETECTOR_NAME, data, scores[data.name])
        summary = {
            r.profile: {
                "score": r.normalised, "threshold": r.threshold, "raw": r.raw, "null": r.null,
                "perfect": r.perfect,
                "files": {f.name: {"score": f.score, "detected": f.detected, "missed": f.missed,
                                   "false_positives": f.false_positives} for f in r.files},
            }
            for r in results
        }
        path = out / f"{DETECTOR_NAME}_scores.json"
        path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(f"\nresults written under {out / DETECTOR_NAME} and {path}")
    return results


# -- cost -------------------------------------------------------------------------------------------


def _rate(function: Callable[[float, float], object], series: Sequence[tuple[float, float]]) -> float:
    """Samples per CPU second of this process: other work on a shared machine does not count."""
    started = time.process_time()
    for ts, value in series:
        function(ts, value)
    return len(series) / max(time.process_time() - started, 1e-9)


def deep_size(obj: object) -> int:
    """Bytes held by an object with __slots__ and its (flat) attribute values."""
    size = sys.getsizeof(obj)
    for name in getattr(type(obj), "__slots__", ()):
        value = getattr(obj, name, None)
        if value is None or name == "params":  # parameters are shared by every series
            continue
        size += sys.getsizeof(value)
    return size


def run_cost(samples: int = 200_000) -> dict[str, float]:
    rng = random.Random(7)
    series = list(_fleet.healthy("cpu_percent", rng, 1.7e9, samples * 10.0, 10.0))
    engine = RuleEngine(Thresholds())
    seq = iter(range(1, 10**9))

    def rules(ts: float, value: float) -> object:
        return engine.feed(Sample("gw-0001", next(seq), ts, {"cpu_percent": value}))

    monitor = PredictiveMonitor()
    limits = {"cpu_percent": 60.0}
    # The monitor's samples are built before the clock starts: what is timed is its own work.
    prepared = iter([Sample("gw-0001", n, ts, {"cpu_percent": value})
                     for n, (ts, value) in enumerate(series, start=1)])

    def predictive(ts: float, value: float) -> object:
        return monitor.feed(next(prepared), limits, ())

    detector = AnomalyDetector()
    forecaster = TrendForecaster()
    nab_like = [(1.4e9 + 300.0 * i, value) for i, (_, value) in enumerate(series)]
    figures = {
        "rule engine (baseline)": _rate(rules, series),
        "anomaly detector": _rate(detector.update, series),
        "anomaly detector, 5-minute samples": _rate(AnomalyDetector().update, nab_like),
        "trend forecaster": _rate(forecaster.update, series),
        "predictive monitor (both + warnings)": _rate(predictive, series),
    }
    base = figures["rule engine (baseline)"]
    print(f"\ncost on one core (CPU time of this process), {samples} samples of one metric:")
    for name, rate in figures.items():
        print(f"  {name:<38} {rate:10,.0f} samples/s  ({rate / base:4.2f} x baseline)")
    figures.update(run_stream_cost(max(1, samples // 20)))
    detector_bytes = deep_size(detector)
    forecaster_bytes = deep_size(forecaster)
    snapshot = monitor.snapshot_device("gw-0001") or {}
    snapshot_bytes = len(json.dumps(snapshot).encode())
    print("state per series:")
    print(f"  anomaly detector in memory {detector_bytes} B, snapshot "
          f"{len(json.dumps(detector.snapshot()).encode())} B JSON")
    print(f"  trend forecaster in memory {forecaster_bytes} B")
    print(f"  whole predictive series (detector, forecaster, warning state) as JSON {snapshot_bytes} B")
    figures.update(detector_bytes=detector_bytes, forecaster_bytes=forecaster_bytes,
                   snapshot_bytes=snapshot_bytes)
    return figures


def run_stream_cost(devices: int, samples: int = 20) -> dict[str, float]:
    """The collector's view: many devices, each metric of each message fed to the monitor, new
    series created along the way (the first samples of a device cost more than later ones)."""
    rng = random.Random(3)
    stream = [
        (f"gw-{d:05d}", 1.7e9 + s * 10.0 + d * 1e-4,
         {"cpu_percent": 20 + rng.gauss(0, 3), "mem_percent": 40 + rng.gauss(0, 1),
          "latency_ms": 30 * rng.lognormvariate(0, 0.2)})
        for s in range(samples) for d in range(devices)
    ]
    engine = RuleEngine(Thresholds())
    started = time.process_time()
    for seq, (device_id, ts, metrics) in enumerate(stream, start=1):
        engine.feed(Sample(device_id, seq, ts, metrics))
    rules_cpu = max(time.process_time() - started, 1e-9)
    # The samples are built before the clock starts: what is timed is the monitor's own work.
    prepared = [Sample(device_id, seq, ts, metrics, None, "gateway")
                for seq, (device_id, ts, metrics) in enumerate(stream, start=1)]
    feed = PredictiveMonitor().feed
    started = time.process_time()
    for sample in prepared:
        feed(sample, THRESHOLDS, ())
    monitor_cpu = max(time.process_time() - started, 1e-9)
    feeds = 3 * len(stream)
    print(f"stream of {devices} devices x {samples} samples x 3 metrics (new series included):")
    print(f"  rule engine (baseline)                 {len(stream) / rules_cpu:10,.0f} messages/s")
    print(f"  predictive monitor                     {feeds / monitor_cpu:10,.0f} samples/s  "
          f"({monitor_cpu / feeds * 1e6:.2f} us per sample; {monitor_cpu / rules_cpu:.2f} x the rule engine's "
          f"time per message)")
    return {"stream monitor": feeds / monitor_cpu, "stream rule engine": len(stream) / rules_cpu}


# -- the simulated fleet ----------------------------------------------------------------------------

THRESHOLDS = {"cpu_percent": 60.0, "mem_percent": 60.0, "latency_ms": 200.0}


@dataclass(frozen=True, slots=True)
class Run:
    """What one simulated (device, metric) produced."""

    metric: str
    warnings: tuple[tuple[float, str], ...]  # (seconds since start, kind) of every raise
    oranges: tuple[float, ...]  # seconds since start of every orange/red raise
    leak: _fleet.Leak | None = None


def simulate(device_id: str, metric: str, seed: int, seconds: float, interval: float,
             leak: _fleet.Leak | None = None, config: PredictiveConfig | None = None) -> Run:
    """Feed one simulated metric through the rule engine and the predictive monitor."""
    engine = RuleEngine(Thresholds())
    monitor = PredictiveMonitor(config)
    threshold = THRESHOLDS[metric]
    active = False
    warnings: list[tuple[float, str]] = []
    oranges: list[float] = []
    start = 1.7e9
    series = _fleet.healthy(metric, random.Random(seed), start, seconds, interval, leak)
    # A leak case runs beside its healthy twin (same seed, same noise and bursts, no leak): an
    # orange alert the twin has too is the device's ordinary behaviour, not the leak's doing.
    twin = _Twin(device_id, metric, seed, start, seconds, interval) if leak is not None else None
    limits = {metric: threshold}
    for seq, (ts, value) in enumerate(series, start=1):
        twin_active = twin.step(seq) if twin is not None else False
        sample = Sample(device_id, seq, ts, {metric: value})
        for transition in engine.feed(sample).transitions:
            if transition.event == "raised" and not twin_active:
                oranges.append(ts - start)
            active = transition.event != "cleared"
        for event in monitor.feed(sample, limits, (metric,) if active else ()):
            if event.change is Change.RAISED:
                warnings.append((ts - start, event.kind.value))
        if leak is not None and oranges and oranges[-1] >= leak.start:
            break  # the leak reached orange: the case is decided
    return Run(metric, tuple(warnings), tuple(oranges), leak)


class _Twin:
    """The healthy twin of a leak case: the same series without the leak, through the rules only."""

    def __init__(self, device_id: str, metric: str, seed: int, start: float, seconds: float, interval: float):
        self.device_id = device_id
        self.metric = metric
        self.series = _fleet.healthy(metric, random.Random(seed), start, seconds, interval)
        self.engine = RuleEngine(Thresholds())
        self.active = False

    def step(self, seq: int) -> bool:
        """Advance one sample; whether the twin has an alert active now."""
        ts, value = next(self.series)
        for transition in self.engine.feed(Sample(self.device_id, seq, ts, {self.metric: value})).transitions:
            self.active = transition.event != "cleared"
        return self.active


def _healthy_job(job: tuple[int, str, int, float, float, PredictiveConfig]) -> Run:
    device, metric, seed, seconds, interval, config = job
    return simulate(f"gw-{device:04d}", metric, seed, seconds, interval, None, config)


def _leak_job(job: tuple[int, int, float, PredictiveConfig]) -> Run:
    case, seed, interval, config = job
    rng = random.Random(seed)
    leak = _fleet.leak_case(rng)
    # Long enough for the slowest leak to reach orange, plus slack.
    return simulate(f"leak-{case:04d}", leak.metric, seed + 1, leak.start + 48 * _fleet.HOUR, interval, leak,
                    config)


def lead_times(runs: Iterable[Run]) -> list[float | None]:
    """Per leak: seconds from the first warning after the leak began to its orange (None: no warning first)."""
    leads: list[float | None] = []
    for run in runs:
        assert run.leak is not None
        orange = next((t for t in run.oranges if t >= run.leak.start), None)
        warning = next((t for t, _ in run.warnings if t >= run.leak.start), None)
        if orange is None:
            leads.append(math.inf if warning is not None else None)
        elif warning is None or warning > orange:
            leads.append(None)
        else:
            leads.append(orange - warning)
    return leads


def run_fleet(devices: int, days: float, leaks: int, interval: float, seed: int, jobs: int,
              config: PredictiveConfig | None = None) -> dict[str, float]:
    config = config if config is not None else PredictiveConfig()
    started = time.perf_counter()
    healthy_jobs = [
        (d, metric, seed * 1_000_003 + d * 10 + m, days * _fleet.DAY, interval, config)
        for d in range(devices) for m, metric in enumerate(_fleet.METRICS)
    ]
    leak_jobs = [(k, seed * 7_000_001 + k * 2, interval, config) for k in range(leaks)]
    healthy_runs = _map(_healthy_job, healthy_jobs, jobs)
    leak_runs = _map(_leak_job, leak_jobs, jobs)
    elapsed = time.perf_counter() - started
    device_days = devices * days
    by_kind: dict[str, int] = {}
    for run in healthy_runs:
        for _, kind in run.warnings:
            by_kind[run.metric + " " + kind] = by_kind.get(run.metric + " " + kind, 0) + 1
    false_total = sum(by_kind.values())
    oranges = sum(len(run.oranges) for run in healthy_runs)
    print(f"\nsimulated fleet ({interval:g} s between samples, seed {seed}, {elapsed:.0f} s):")
    rate = false_total / device_days if device_days else 0.0
    print(f"  healthy: {devices} devices x {days:g} days = {device_days:g} device-days, "
          f"{false_total} predictive warnings = {rate:.3f} per device-day "
          f"(goal <= 0.05); {oranges} threshold alerts")
    for key in sorted(by_kind):
        print(f"    {key}: {by_kind[key]}")
    leads = lead_times(leak_runs)
    warned = [lead for lead in leads if lead is not None]
    early = [lead for lead in warned if lead >= _fleet.HOUR]
    share = len(early) / len(leads) if leads else 0.0
    print(f"  slow leaks: {len(leads)} cases, warned before orange in {len(warned)}, "
          f"at least 1 h before in {len(early)} = {100 * share:.0f} % (goal >= 90 %)")
    finite = sorted(lead for lead in warned if math.isfinite(lead))
    if finite:
        print(f"    lead time before orange: median {statistics.median(finite) / _fleet.HOUR:.1f} h, "
              f"shortest {finite[0] / _fleet.HOUR:.1f} h, longest {finite[-1] / _fleet.HOUR:.1f} h")
    pre_leak = sum(1 for run in leak_runs for t, _ in run.warnings if run.leak and t < run.leak.start)
    print(f"    warnings on the leak devices before their leak began: {pre_leak}")
    return {"false_per_device_day": rate, "early_share": share, "healthy_warnings": false_total}
