"""A fleet of thousands of devices written straight into the tables, for the dashboard benchmark and
the browser tests at scale: customers with sites, tags, latest values, and a realistic share of
problems (red and orange alerts in the rule states, offline devices). Seeded: the same fleet each time."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

CUSTOMERS = ("Acme Power", "Beta Water", "华东电网", "Gamma Rail", "深圳水务", "Delta Telecom", "Epsilon Ports",
             "北京地铁", "Zeta Mining", "Eta Logistics")


@dataclass(frozen=True)
class BigFleet:
    devices: int
    red: list[str]
    orange: list[str]
    offline: list[str]
    customers: dict[str, int]


def rule_state(metric: str, severity: str) -> dict[str, Any]:
    """A rule-engine snapshot of one device with one active alert (the `rules` snapshot layout)."""
    return {"seq": 100, "instance": None, "device_class": "gateway", "metrics": {metric: [3, severity, 0]}}


def fill_fleet(engine: Any, devices: int = 10_000, *, seed: int = 17, now: datetime | None = None,
               sites_per_customer: int = 12) -> BigFleet:
    import sqlalchemy as sa

    from tickets.models import Customer, Device, RuleState

    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    customers: dict[str, int] = {}
    red: list[str] = []
    orange: list[str] = []
    offline: list[str] = []
    rows: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    with engine.begin() as conn:
        existing = dict(conn.execute(sa.select(Customer.name, Customer.id)).all())
        for name in CUSTOMERS:
            customers[name] = existing.get(name) or conn.execute(
                sa.insert(Customer).values(name=name, created_at=now).returning(Customer.id)).scalar_one()
        names = list(customers)
        for i in range(devices):
            customer = names[i % len(names)]
            site = f"{customer} site {(i // len(names)) % sites_per_customer + 1:02d}"
            device_id = f"{'rt' if i % 5 == 0 else 'gw'}-{i:05d}"
            roll = rng.random()
            state = "offline" if roll < 0.03 else "online"
            latest = {"cpu_percent": round(rng.uniform(5, 55), 1), "mem_percent": round(rng.uniform(20, 58), 1),
                      "latency_ms": round(rng.lognormvariate(3, 0.5), 1)}
            if state == "offline":
                offline.append(device_id)
            elif roll < 0.04:
                red.append(device_id)
                latest["cpu_percent"] = round(rng.uniform(91, 99), 1)
                states.append({"device_id": device_id, "state": rule_state("cpu_percent", "red"), "updated_at": now})
            elif roll < 0.06:
                orange.append(device_id)
                latest["mem_percent"] = round(rng.uniform(61, 80), 1)
                states.append({"device_id": device_id, "state": rule_state("mem_percent", "orange"),
                               "updated_at": now})
            rows.append({
                "id": device_id, "customer_id": customers[customer], "state": state,
                "device_class": "router" if i % 5 == 0 else "gateway", "name": f"{site} #{i % 97 + 1}",
                "site": site, "tags": ["substation" if i % 3 else "pumping", f"zone-{i % 7}"],
                "first_seen_at": now - timedelta(days=30), "last_seen_at": now - timedelta(seconds=rng.uniform(1, 20)),
                "offline_since": now - timedelta(minutes=rng.uniform(6, 600)) if state == "offline" else None,
                "interval_s": 10.0, "latest_seq": 1000, "latest_ts": now.timestamp(), "latest": latest,
            })
        for start in range(0, len(rows), 2000):
            conn.execute(sa.insert(Device), rows[start:start + 2000])
        if states:
            conn.execute(sa.insert(RuleState), states)
    return BigFleet(devices, red, orange, offline, customers)
