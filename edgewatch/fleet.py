"""A simulated fleet: each device a deterministic sequence of realistic health values.

Pure: no clock, no network. `edgewatch simulate` and the demo publish what it produces; the
benchmarks and tests use it to generate streams. Behaviours:

- `normal`     everyday load: CPU and memory wander well below their thresholds, latency low
- `leak`       memory creeps up by `rate` % per sample: orange after it passes 60 %, red past 90 %
- `spike`      latency jumps to `level` ms for `length` samples from sample `start` (red at once)
- `overload`   CPU sits between threshold and red level from sample `start` (orange, never red)
- `flapping`   CPU crosses the threshold every other sample or two: never three in a row, no alert
- `offline`    normal until sample `start`, then silent (the collector marks it offline)
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BEHAVIOURS = ("normal", "leak", "spike", "overload", "flapping", "offline")
DEFAULT_CUSTOMERS = ("Acme Rail", "Borealis Water", "Cobalt Logistics")
# The demo fleet's special cases: the first devices each show one behaviour, the rest are normal.
DEFAULT_SPECIALS: tuple[tuple[str, dict[str, float]], ...] = (
    ("leak", {"rate": 1.2}),
    ("spike", {"start": 8, "length": 4, "level": 420}),
    ("overload", {"start": 3}),
    ("flapping", {}),
    ("offline", {"start": 12}),
)


class FleetError(ValueError):
    """A scenario file is wrong; the message names the key and the reason."""


@dataclass(frozen=True, slots=True)
class SimDevice:
    device_id: str
    device_class: str
    customer: str
    behaviour: str = "normal"
    params: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0

    def metrics(self, step: int) -> dict[str, float] | None:
        """The values of sample number `step` (0-based); None once the device has gone silent."""
        p = self.params
        if self.behaviour == "offline" and step >= p.get("start", 12):
            return None
        rng = random.Random(self.seed * 1_000_003 + step)
        phase = self.seed % 97
        cpu = 30 + 12 * math.sin((step + phase) / 9) + rng.uniform(-6, 6)
        mem = 42 + 6 * math.sin((step + phase) / 40) + rng.uniform(-1.5, 1.5)
        latency = 18 + 10 * abs(math.sin((step + phase) / 13)) + rng.expovariate(1 / 6)
        if self.behaviour == "leak":
            mem = min(99.5, p.get("base", 45.0) + p.get("rate", 1.2) * step + rng.uniform(-0.3, 0.3))
        elif self.behaviour == "spike":
            start, length = int(p.get("start", 8)), int(p.get("length", 4))
            if start <= step < start + length:
                latency = p.get("level", 420.0) + rng.uniform(-20, 20)
        elif self.behaviour == "overload" and step >= p.get("start", 3):
            cpu = 72 + rng.uniform(-6, 6)
        elif self.behaviour == "flapping":
            cpu = (57.0, 63.0, 64.0, 58.0)[step % 4] + rng.uniform(-1.5, 1.5)
        return {
            "cpu_percent": round(min(max(cpu, 0.5), 100.0), 2),
            "mem_percent": round(min(max(mem, 1.0), 100.0), 2),
            "latency_ms": round(max(latency, 0.3), 2),
        }


def default_fleet(count: int, customers: tuple[str, ...] = DEFAULT_CUSTOMERS, seed: int = 1) -> list[SimDevice]:
    """`count` devices, gateways and routers alternating, spread over the customers."""
    devices = []
    for i in range(count):
        kind = "gateway" if i % 2 == 0 else "router"
        behaviour, params = DEFAULT_SPECIALS[i] if i < len(DEFAULT_SPECIALS) else ("normal", {})
        devices.append(
            SimDevice(
                device_id=f"{'gw' if kind == 'gateway' else 'rt'}-{i:04d}",
                device_class=kind,
                customer=customers[i % len(customers)],
                behaviour=behaviour,
                params=params,
                seed=seed * 100_003 + i,
            )
        )
    return devices


def fleet_from_scenario(data: Mapping[str, Any], count: int | None = None, source: str = "scenario") -> list[SimDevice]:
    """Build a fleet from a scenario document:

    [fleet]
    devices = 50
    customers = ["Acme Rail", "Borealis Water"]
    seed = 3

    [[behaviour]]
    kind = "leak"
    count = 2        # the next 2 devices not yet given a behaviour
    rate = 0.8
    """
    fleet = data.get("fleet", {})
    if not isinstance(fleet, Mapping):
        raise FleetError(f"{source}: fleet: must be a table")
    total = count if count is not None else fleet.get("devices", 200)
    customers = fleet.get("customers", list(DEFAULT_CUSTOMERS))
    seed = fleet.get("seed", 1)
    if not isinstance(total, int) or isinstance(total, bool) or total < 1:
        raise FleetError(f"{source}: fleet.devices: must be a whole number of devices, at least 1, got {total!r}")
    if not isinstance(customers, list) or not customers or not all(isinstance(c, str) and c for c in customers):
        raise FleetError(f"{source}: fleet.customers: must be a non-empty list of names")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise FleetError(f"{source}: fleet.seed: must be an integer, got {seed!r}")
    base = default_fleet(total, tuple(customers), seed)
    plan: list[tuple[str, dict[str, float]]] = []
    entries = data.get("behaviour", [])
    if not isinstance(entries, list):
        raise FleetError(f"{source}: behaviour: must be an array of tables ([[behaviour]])")
    for n, entry in enumerate(entries):
        where = f"{source}: behaviour[{n}]"
        if not isinstance(entry, Mapping):
            raise FleetError(f"{where}: must be a table")
        kind = entry.get("kind")
        if kind not in BEHAVIOURS:
            raise FleetError(f"{where}.kind: must be one of {', '.join(BEHAVIOURS)}, got {kind!r}")
        how_many = entry.get("count", 1)
        if not isinstance(how_many, int) or isinstance(how_many, bool) or how_many < 0:
            raise FleetError(f"{where}.count: must be a whole number, got {how_many!r}")
        params: dict[str, float] = {}
        for key, value in entry.items():
            if key in ("kind", "count"):
                continue
            if key not in ("rate", "base", "start", "length", "level"):
                raise FleetError(f"{where}.{key}: unknown setting")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise FleetError(f"{where}.{key}: must be a non-negative number, got {value!r}")
            params[key] = float(value)
        plan += [(kind, params)] * how_many
    if len(plan) > total:
        raise FleetError(f"{source}: behaviour: {len(plan)} devices given behaviours but the fleet has {total}")
    if not entries:
        return base
    return [
        SimDevice(d.device_id, d.device_class, d.customer, *(plan[i] if i < len(plan) else ("normal", {})), seed=d.seed)
        for i, d in enumerate(base)
    ]
