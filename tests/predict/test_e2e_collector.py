"""End to end through the collector: a simulated memory leak published to a real mosquitto, the
collector in-process with the real ticket service on SQLite. A blue predictive ticket must open
before the orange one, hours ahead, and be closed with a note when the orange alert takes over;
the forecast the server shows is stored, and the warning is not raised again after a restart.

Time comes from the samples, so 9 hours of one-minute samples are published in a few seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from collector.app import Collector
from tests.collector.helpers import handled, pub_lines, settings, wait_for
from tests.support.services import Mosquitto
from tickets.models import PredictiveState, Ticket, TicketNote

pytestmark = pytest.mark.mosquitto
HOUR = 3600.0
INTERVAL = 60.0
DEVICE = "gw-0012"
TOPIC = f"edgewatch/v1/{DEVICE}/telemetry"


def leak(start: float, first: int, last: int) -> list[tuple[str, dict]]:
    """Memory flat near 40 % for 3 h, then +4 % an hour (60 % after about 8 h); CPU and latency calm."""
    messages = []
    for seq in range(first, last + 1):
        t = seq * INTERVAL
        noise = 0.3 * ((seq * 7919) % 11 - 5) / 5
        mem = 40.0 + noise + max(0.0, t - 3 * HOUR) / HOUR * 4.0
        messages.append((TOPIC, {"v": 1, "device_id": DEVICE, "seq": seq, "ts": start + t, "device_class": "gateway",
                                 "metrics": {"cpu_percent": 25.0 + noise, "mem_percent": round(mem, 3),
                                             "latency_ms": 12.0 + noise}}))
    return messages


def tickets(collector: Collector) -> list[Ticket]:
    with collector.db_engine.connect() as conn:
        return list(conn.execute(sa.select(Ticket).order_by(Ticket.id)).all())  # type: ignore[arg-type]


@pytest.mark.timeout(120)
def test_a_leak_opens_a_predictive_ticket_before_the_orange_one(broker: Mosquitto, tmp_path: Path) -> None:
    start = time.time() - 10 * HOUR
    last = int(8.6 * HOUR / INTERVAL)
    collector = Collector(settings(tmp_path, broker.port, predictive_flush_s=0.0))
    collector.start(timeout=10)
    try:
        pub_lines(broker.port, leak(start, 1, last))
        wait_for(lambda: handled(collector) >= last, timeout=60, what=f"{last} messages")
        rows = wait_for(lambda: len(tickets(collector)) >= 2 and tickets(collector), what="two tickets")
    finally:
        collector.stop()
    predictive, orange = rows[0], rows[1]
    assert len(rows) == 2
    assert (predictive.kind, predictive.level, predictive.metric) == ("predictive", "blue", "mem_percent")
    assert (orange.kind, orange.severity, orange.metric) == ("pre_maintenance", "orange", "mem_percent")
    assert predictive.title.startswith(f"mem_percent on {DEVICE} forecast to pass 60 % in about")
    warned_at, orange_at = predictive.details["ts"], orange.details["ts"]
    assert orange_at - warned_at >= HOUR, (warned_at - start, orange_at - start)
    assert predictive.details["expected_at"] > warned_at
    # The orange alert took over: the predictive ticket is closed with a note naming the orange one.
    assert predictive.status == "closed" and predictive.open_key is None and orange.status == "received"
    assert predictive.details["superseded_by"] == orange.id
    with collector.db_engine.connect() as conn:
        notes = conn.execute(sa.select(TicketNote.text).where(TicketNote.ticket_id == predictive.id)).scalars().all()
        stored = conn.execute(sa.select(PredictiveState.forecasts).where(PredictiveState.device_id == DEVICE)).scalar_one()
    assert any("superseded by the threshold alert" in n and f"ticket {orange.id}" in n for n in notes), notes
    assert set(stored) == {"cpu_percent", "mem_percent", "latency_ms"}
    assert stored["mem_percent"]["threshold"] == 60.0 and stored["mem_percent"]["forecast"]["slope"] > 0
    assert stored["mem_percent"]["warning"] is None  # withdrawn

    # A restarted collector continues from the stored state: the leak goes on, the orange alert is
    # still active, so no second predictive ticket; and nothing is raised twice.
    again = Collector(settings(tmp_path, broker.port, predictive_flush_s=0.0))
    again.start(timeout=10)
    try:
        more = leak(start, last + 1, last + 30)
        pub_lines(broker.port, more)
        wait_for(lambda: handled(again) >= len(more), timeout=30, what="the samples after the restart")
    finally:
        again.stop()
    assert [(t.id, t.kind) for t in tickets(again)] == [(predictive.id, "predictive"), (orange.id, "pre_maintenance")]
