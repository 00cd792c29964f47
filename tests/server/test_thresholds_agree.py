"""The collector and the server resolve the same thresholds for a device from the same database:
the fleet-wide document with the device rows' own thresholds and classes laid over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from collector.thresholds import ThresholdSource
from rules.metrics import CORE_METRICS
from server import thresholds as server_thresholds
from tickets.db import create_engine_for, migrate, session_factory
from tickets.models import THRESHOLDS_KEY, Device, Setting

DOCUMENT: dict[str, Any] = {
    "metrics": {"cpu_percent": 62, "latency_ms": 180},
    "classes": {"router": {"latency_ms": 150, "mem_percent": 50}},
    "devices": {
        "gw-1": {"device_class": "gateway", "cpu_percent": 50, "mem_percent": {"threshold": 40, "red": 80}},
        "gw-3": {"latency_ms": {"threshold": 100, "clear_level": 90}},
        "rt-5": {"device_class": "router"},
    },
}

# (id, the row's own thresholds, the row's class)
ROWS: list[tuple[str, dict[str, Any] | None, str | None]] = [
    ("gw-1", {"mem_percent": 55}, None),  # the document's cpu_percent 50 and class still apply
    ("gw-2", {"latency_ms": {"threshold": 120, "red": 250}}, "router"),
    ("gw-3", {"cpu_percent": 65}, "router"),
    ("gw-4", None, "router"),  # a class alone
    ("rt-5", None, None),  # the document's class
    ("gw-6", None, None),  # nothing of its own
]


@pytest.fixture
def session(tmp_path: Path) -> Session:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        s.add(Setting(key=THRESHOLDS_KEY, value=DOCUMENT, version=3))
        for device_id, own, device_class in ROWS:
            s.add(Device(id=device_id, state="online", thresholds=own, device_class=device_class))
    return sessions()


def test_collector_and_server_resolve_the_same_rule_for_every_device_and_metric(session: Session) -> None:
    collector_side = ThresholdSource().poll(session)
    assert collector_side is not None
    compared = 0
    for device_id, own, device_class in ROWS:
        server_side = server_thresholds.resolved(None, session, device_id, device_class, own)
        assert server_side is not None
        for metric in CORE_METRICS:
            collector_rule = collector_side.rule_for(device_id, device_class, metric)
            assert collector_rule == server_side.rule_for(device_id, device_class, metric), (device_id, metric)
            compared += 1
    assert compared == len(ROWS) * len(CORE_METRICS)
    # The overlay keeps the document's own table for gw-1: its cpu_percent and its red mem level.
    cpu = collector_side.rule_for("gw-1", None, "cpu_percent")
    mem = collector_side.rule_for("gw-1", None, "mem_percent")
    assert cpu is not None and cpu.threshold == 50
    assert mem is not None and (mem.threshold, mem.red_level) == (55, 55 * 1.5)
    latency = collector_side.rule_for("gw-2", "router", "latency_ms")
    assert latency is not None and (latency.threshold, latency.red_level) == (120, 250)
