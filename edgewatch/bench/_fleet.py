"""A small simulated fleet for the predictive benchmark: healthy devices and slow leaks.

Each generator yields (ts, value) for one metric of one device. Healthy behaviour is what makes
predictive warnings hard, so it is not a flat line with noise: CPU has a working-day cycle,
autocorrelated noise and short bursts; memory has a garbage-collector sawtooth and a slow random
wander; latency is log-normal with a daily cycle and congestion episodes. A leak adds a steady
rise to one metric from a random moment on. Everything is seeded: the same seed, the same fleet.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

DAY = 86400.0
HOUR = 3600.0
METRICS = ("cpu_percent", "mem_percent", "latency_ms")


@dataclass(frozen=True, slots=True)
class Leak:
    metric: str
    start: float  # seconds after the series begins
    rate: float  # per hour: points for percentages, a growth factor exponent for latency


def _clip(value: float, low: float, high: float) -> float:
    return low if value < low else (high if value > high else value)


def healthy(metric: str, rng: random.Random, start: float, seconds: float, interval: float,
            leak: Leak | None = None) -> Iterator[tuple[float, float]]:
    """One metric of one device; with `leak`, the same device developing a slow leak."""
    if metric == "cpu_percent":
        yield from _cpu(rng, start, seconds, interval, leak)
    elif metric == "mem_percent":
        yield from _memory(rng, start, seconds, interval, leak)
    elif metric == "latency_ms":
        yield from _latency(rng, start, seconds, interval, leak)
    else:
        raise ValueError(f"no simulation for metric {metric!r}")


def _leak_amount(leak: Leak | None, metric: str, t: float) -> float:
    if leak is None or leak.metric != metric or t < leak.start:
        return 0.0
    return (t - leak.start) / HOUR * leak.rate


def _cpu(rng: random.Random, start: float, seconds: float, interval: float,
         leak: Leak | None) -> Iterator[tuple[float, float]]:
    base = rng.uniform(8, 30)
    amplitude = rng.uniform(0, 12)
    peak_hour = rng.uniform(10, 16)
    sigma = rng.uniform(1.5, 5)
    phi = math.exp(-interval / 120.0)  # noise correlated over ~2 minutes
    burst_rate = rng.uniform(1, 6) / DAY  # bursts per second
    noise = 0.0
    burst_until, burst_height = -1.0, 0.0
    steps = int(seconds / interval)
    for i in range(steps):
        t = i * interval
        ts = start + t
        hour = (ts % DAY) / HOUR
        daily = amplitude * max(0.0, math.cos((hour - peak_hour) / 24 * 2 * math.pi)) ** 2
        noise = phi * noise + math.sqrt(1 - phi * phi) * rng.gauss(0, sigma)
        if t >= burst_until and rng.random() < burst_rate * interval:
            burst_until = t + rng.uniform(60, 600)
            burst_height = rng.uniform(10, 30)
        burst = burst_height if t < burst_until else 0.0
        value = base + daily + noise + burst + _leak_amount(leak, "cpu_percent", t)
        yield ts, round(_clip(value, 0.0, 100.0), 1)


def _memory(rng: random.Random, start: float, seconds: float, interval: float,
            leak: Leak | None) -> Iterator[tuple[float, float]]:
    base = rng.uniform(25, 45)
    sawtooth = rng.uniform(0, 6)  # garbage collector: a slow climb, then a drop
    period = rng.uniform(1, 4) * HOUR
    phase = rng.uniform(0, period)
    sigma = rng.uniform(0.2, 1.2)
    wander = 0.0
    steps = int(seconds / interval)
    for i in range(steps):
        t = i * interval
        wander = 0.9995 * wander + rng.gauss(0, 0.03 * math.sqrt(interval / 10.0))
        saw = sawtooth * (((t + phase) % period) / period)
        value = base + saw + wander + rng.gauss(0, sigma) + _leak_amount(leak, "mem_percent", t)
        yield start + t, round(_clip(value, 0.0, 100.0), 1)


def _latency(rng: random.Random, start: float, seconds: float, interval: float,
             leak: Leak | None) -> Iterator[tuple[float, float]]:
    median = rng.uniform(8, 50)
    spread = rng.uniform(0.1, 0.35)
    amplitude = rng.uniform(0, 0.4)
    peak_hour = rng.uniform(9, 20)
    congestion_rate = rng.uniform(0.5, 3) / DAY
    congested_until, factor = -1.0, 1.0
    steps = int(seconds / interval)
    for i in range(steps):
        t = i * interval
        ts = start + t
        hour = (ts % DAY) / HOUR
        daily = 1 + amplitude * max(0.0, math.cos((hour - peak_hour) / 24 * 2 * math.pi))
        if t >= congested_until and rng.random() < congestion_rate * interval:
            congested_until = t + rng.uniform(120, 1200)
            factor = rng.uniform(1.3, 2.2)
        congestion = factor if t < congested_until else 1.0
        growth = math.exp(_leak_amount(leak, "latency_ms", t))
        value = median * daily * congestion * growth * math.exp(rng.gauss(0, spread))
        yield ts, round(value, 1)


def leak_case(rng: random.Random) -> Leak:
    """A slow leak on one metric, starting after a day of healthy history."""
    metric = rng.choice(("mem_percent", "mem_percent", "cpu_percent", "latency_ms"))
    start = rng.uniform(1.0, 1.5) * DAY
    # Latency grows by 10-35 % an hour; percentages creep up 1-4 points an hour.
    rate = rng.uniform(0.1, 0.3) if metric == "latency_ms" else rng.uniform(1.0, 4.0)
    return Leak(metric, start, rate)
