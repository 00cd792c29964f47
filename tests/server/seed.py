"""A small, realistic fleet for the dashboard tests and screenshots: devices in every health,
tickets in every status with history, telemetry with a breach, and two weeks of KPIs."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

from telemetry.model import Point
from telemetry.sqlite import SqliteStore
from tests.server.harness import Harness
from tickets.models import RuleState, Ticket


def rule_state(metric: str, severity: str) -> dict:
    return {"seq": 100, "instance": None, "device_class": "gateway", "metrics": {metric: [3, severity, 0]}}


def fleet(h: Harness, telemetry: Path) -> dict[str, int]:
    healthy = [f"gw-{i:04d}" for i in range(1, 13)]
    for device in healthy:
        h.add_device(device, "Acme Power", latest={"cpu_percent": 22.0 + len(device), "mem_percent": 41.0,
                                                    "latency_ms": 18.0})
    h.add_device("rt-0001", "Beta Water", device_class="router",
                 latest={"cpu_percent": 35.0, "mem_percent": 52.0, "latency_ms": 140.0})
    h.add_device("gw-0101", "Acme Power", latest={"cpu_percent": 96.5, "mem_percent": 48.0, "latency_ms": 21.0})
    h.add_device("gw-0102", "Acme Power", latest={"cpu_percent": 30.0, "mem_percent": 71.0, "latency_ms": 25.0})
    h.add_device("rt-0009", "Beta Water", state="offline", device_class="router")
    tickets = {
        "red": h.raise_alert("gw-0101", "cpu_percent", "red", 96.5),
        "orange": h.raise_alert("gw-0102", "mem_percent", "orange", 71.0),
    }
    with h.sessions() as session:
        session.add(RuleState(device_id="gw-0101", state=rule_state("cpu_percent", "red")))
        session.add(RuleState(device_id="gw-0102", state=rule_state("mem_percent", "orange")))
        session.commit()
    with h.sessions() as session:
        ticket = h.service.on_device_offline(session, "rt-0009", h.clock.now() - timedelta(minutes=12))
        session.commit()
        assert ticket is not None
        tickets["offline"] = ticket.id
    done = h.raise_alert("gw-0003", "latency_ms", "red", 320.0)
    for action in ("acknowledge", "dispatch", "check_in", "resolve", "close"):
        with h.sessions() as session:
            h.service.perform(session, done, action, "Li Wei", note=None, assignee="Li Wei")
            session.commit()
    with h.sessions() as session:
        h.service.rate(session, done, "Acme ops", 5, "fast and friendly")
        session.commit()
    tickets["closed"] = done

    store = SqliteStore(telemetry)
    now = h.clock.now().timestamp()
    points = []
    for device, base in (("gw-0101", 45.0), ("gw-0102", 50.0), ("gw-0001", 25.0)):
        for i in range(360):
            ts = now - (360 - i) * 60
            cpu = base + 8 * math.sin(i / 20) + (50 if device == "gw-0101" and i > 340 else 0)
            mem = 40 + 0.08 * i if device == "gw-0102" else 40 + 3 * math.cos(i / 30)
            points.append(Point(device, i, ts, ts, {"cpu_percent": min(cpu, 99.0), "mem_percent": mem,
                                                     "latency_ms": 20 + 5 * math.sin(i / 7)}))
    store.write(points)
    store.close()
    return tickets


def history(h: Harness, days: int = 14) -> None:
    """Past tickets with first responses, resolutions and ratings, for the efficiency board."""
    now = h.clock.now()
    with h.sessions() as session:
        for day in range(days):
            for n in range(3 + day % 4):
                opened = now - timedelta(days=days - day, hours=n * 3)
                ack = opened + timedelta(minutes=2 + (n * 7 + day) % 19)
                resolved = opened + timedelta(hours=2 + n)
                session.add(Ticket(
                    device_id=None, metric="cpu_percent", severity="red" if n % 3 == 0 else "orange",
                    kind="on_site" if n % 3 == 0 else "pre_maintenance", level="red" if n % 3 == 0 else "yellow",
                    priority=1, status="closed" if n % 5 else "in_progress", title=f"history {day}/{n}",
                    opened_at=opened, acknowledged_at=ack,
                    resolved_at=resolved if n % 5 else None, closed_at=resolved if n % 5 else None,
                    rating=(5, 4, 5, 3, 5)[n % 5] if n % 5 else None, updated_at=opened,
                ))
        session.commit()
