"""`edgewatch bench rules`: rule evaluations per second on one core.

Generates samples for a fleet (default 1 000 000 samples over 10 000 devices, three metrics each,
with realistic values and some breaches), then times `RuleEngine.feed` over them. One evaluation
is one (device, metric) value run through the state machine. The baseline measured in the same
run is a bare loop that only touches every value, so the ratio shows the engine's own cost.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from collections.abc import Sequence

from rules import RuleEngine, Sample

METRICS = ("cpu_percent", "mem_percent", "latency_ms")


def generate(samples: int, devices: int, seed: int = 7) -> list[Sample]:
    """Realistic values around normal load; about 3 % breaching and 0.3 % red, in short bursts."""
    rng = random.Random(seed)
    ids = [f"{'gw' if i % 2 else 'rt'}-{i:05d}" for i in range(devices)]
    out = []
    for n in range(samples):
        device = ids[n % devices]
        seq = n // devices + 1
        burst = rng.random()
        if burst < 0.003:
            cpu, mem, lat = 95.0, 92.0, 350.0
        elif burst < 0.03:
            cpu, mem, lat = rng.uniform(61, 85), rng.uniform(61, 80), rng.uniform(201, 280)
        else:
            cpu, mem, lat = rng.uniform(5, 55), rng.uniform(20, 58), rng.uniform(2, 80)
        out.append(Sample(device, seq, 1764072000.0 + seq * 10, {METRICS[0]: cpu, METRICS[1]: mem, METRICS[2]: lat}))
    return out


def baseline(samples: list[Sample]) -> float:
    start = time.perf_counter()
    total = 0.0
    for sample in samples:
        for value in sample.metrics.values():
            if value is not None:
                total += value
    return time.perf_counter() - start


def run_engine(samples: list[Sample]) -> tuple[float, int]:
    engine = RuleEngine()
    transitions = 0
    start = time.perf_counter()
    for sample in samples:
        transitions += len(engine.feed(sample).transitions)
    return time.perf_counter() - start, transitions


def run_replay(samples: list[Sample]) -> tuple[float, float]:
    """`rules replay` end to end (JSON decode, validation, engine, JSON encode) vs. json.loads alone."""
    lines = [
        json.dumps({"v": 1, "device_id": s.device_id, "seq": s.seq, "ts": s.ts, "metrics": dict(s.metrics)}) + "\n"
        for s in samples
    ]
    from edgewatch.rules_cli import replay  # the command's own loop

    start = time.perf_counter()
    for line in lines:
        json.loads(line)
    decode_only = time.perf_counter() - start
    start = time.perf_counter()
    replay(lines, RuleEngine(), io.StringIO(), io.StringIO())
    return time.perf_counter() - start, decode_only


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgewatch bench rules", description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    parser.add_argument("--replay-samples", type=int, default=200_000, help="lines for the replay measurement")
    args = parser.parse_args(argv)
    print(f"generating {args.samples:,} samples for {args.devices:,} devices ...")
    samples = generate(args.samples, args.devices)
    evaluations = sum(len(s.metrics) for s in samples)
    base = min(baseline(samples) for _ in range(args.repeat))
    runs = [run_engine(samples) for _ in range(args.repeat)]
    best = min(elapsed for elapsed, _ in runs)
    transitions = runs[0][1]
    rate = evaluations / best
    print(f"evaluations:       {evaluations:,} ({transitions:,} transitions)")
    print(f"rule engine:       {best:.3f} s  = {rate:,.0f} evaluations/s  ({args.samples / best:,.0f} samples/s)")
    print(f"baseline loop:     {base:.3f} s  = {evaluations / base:,.0f} values/s")
    print(f"engine / baseline: {best / base:.1f} x the time of touching every value")
    print(f"goal >= 300,000 evaluations/s: {'met' if rate >= 300_000 else 'NOT met'}")
    replay_samples = samples[: args.replay_samples]
    replay_time, decode_time = run_replay(replay_samples)
    print(
        f"rules replay:      {len(replay_samples) / replay_time:,.0f} lines/s "
        f"(json.loads alone: {len(replay_samples) / decode_time:,.0f} lines/s, ratio {replay_time / decode_time:.1f} x)"
    )
    return 0
