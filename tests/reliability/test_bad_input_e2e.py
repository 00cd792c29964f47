"""Bad input through the whole path: real broker, `edgewatch collector`, PostgreSQL.

Payloads the decoder accepts or refuses can still choke what comes after it (a database column, the
telemetry store, a date conversion). Each nasty message is followed by a healthy device's sample:
that sample must be processed (the collector is not stuck), and every message must be accounted
for, processed or rejected with its reason in the dead letters and the metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from tests.reliability.figures import Figures
from tests.reliability.stack import CollectorProcess, create_database, stored_samples, wait_until
from tests.support import services
from tickets.db import create_engine_for
from tickets.models import DeadLetter, Device

pytestmark = [pytest.mark.mosquitto, pytest.mark.postgres]

NOW = 1_780_000_000.0


def sample(device: str, seq: int, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"v": 1, "device_id": device, "seq": seq, "ts": NOW + seq,
                               "metrics": {"cpu_percent": 95.0, "mem_percent": 40.0, "latency_ms": 20.0}}
    body.update(extra)
    return body


# (what, topic device, payload): valid JSON samples with extreme but contract-legal fields, and
# refused payloads whose dead letter itself is awkward to store.
NASTY: list[tuple[str, str, bytes]] = [
    ("seq beyond 64 bits", "odd-seq", json.dumps(sample("odd-seq", 2**70)).encode()),
    ("seq of exactly 2**63", "odd-seq2", json.dumps(sample("odd-seq2", 2**63)).encode()),
    ("ts after year 9999", "odd-ts", json.dumps(sample("odd-ts", 1, ts=1e12)).encode()),
    ("ts of 0 (clock reset)", "odd-ts0", json.dumps(sample("odd-ts0", 1, ts=0)).encode()),
    ("NUL in instance", "odd-inst", json.dumps(sample("odd-inst", 1, instance="a\u0000b")).encode()),
    ("lone surrogate in instance", "odd-sur", json.dumps(sample("odd-sur", 1, instance="\ud800")).encode()),
    ("NUL in agent_version", "odd-ver", json.dumps(sample("odd-ver", 1, agent_version="1\u00000")).encode()),
    ("device_class of 200 characters", "odd-cls", json.dumps(sample("odd-cls", 1, device_class="g" * 200)).encode()),
    ("unknown device_class", "odd-cls2", json.dumps(sample("odd-cls2", 1, device_class="toaster")).encode()),
    ("256 metrics", "odd-many", json.dumps(sample("odd-many", 1, metrics={f"m{i}": float(i) for i in range(256)})).encode()),
    ("NUL byte in a refused payload", "odd-nul", b'{"v": 1, "device_id": "odd-nul"\x00}'),
    ("invalid UTF-8", "odd-utf8", b'{"v": 1, "device_id": "\xff\xfe"}'),
    ("NUL escaped in a refused field", "odd-nul2", json.dumps({**sample("odd-nul2", 1), "seq": "\u0000"}).encode()),
    ("status with NUL version", "odd-status", json.dumps({"state": "online", "version": "\u0000"}).encode()),
    ("topic and payload disagree", "odd-topic", json.dumps(sample("someone-else", 1)).encode()),
    ("oversize", "odd-big", b" " * (64 * 1024 + 1)),
    ("deeply nested", "odd-deep", b"[" * 50_000 + b"]" * 50_000),
]


@pytest.fixture
def broker() -> Iterator[services.Mosquitto]:
    with services.mosquitto() as server:
        yield server


def publish(client: paho.Client, topic: str, payload: bytes) -> None:
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(timeout=10)
    assert info.is_published()


@pytest.mark.timeout(300)
def test_nasty_payloads_never_stall_the_collector(
    tmp_path: Path, broker: services.Mosquitto, postgres_server: services.Postgres, figures: Figures
) -> None:
    url = create_database(postgres_server)
    collector = CollectorProcess(tmp_path, broker.url, url)
    collector.start()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="rel-nasty")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    stuck: list[str] = []
    try:
        for n, (what, device, payload) in enumerate(NASTY, start=1):
            kind = "status" if what.startswith("status") else "telemetry"
            publish(client, f"edgewatch/v1/{device}/{kind}", payload)
            publish(client, "edgewatch/v1/healthy-1/telemetry", json.dumps(sample("healthy-1", n)).encode())
            try:
                wait_until(lambda n=n: ("healthy-1", n) in stored_samples(collector.telemetry_path)
                           if collector.telemetry_path.exists() else False, 20, f"the sample after {what!r}")
            except AssertionError:
                stuck.append(what)
                break
        metrics = collector.metrics() if collector.alive() else {}
    finally:
        client.loop_stop()
        client.disconnect()
        code = collector.stop()
    log = collector.log()
    assert not stuck, f"the collector stalled after: {stuck}\n{log[-4000:]}"
    assert code == 0
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            dead = conn.execute(sa.select(DeadLetter.device_id, DeadLetter.reason)).all()
            devices = {r.id: r for r in conn.execute(sa.select(Device.id, Device.state, Device.latest_seq))}
    finally:
        engine.dispose()
    processed = metrics.get('edgewatch_collector_messages_total{outcome="processed"}', 0)
    rejected = metrics.get('edgewatch_collector_messages_total{outcome="rejected"}', 0)
    assert rejected == len(dead), "every rejection is counted and kept as a dead letter"
    assert processed + rejected == 2 * len(NASTY)
    assert devices["healthy-1"].latest_seq == len(NASTY)
    figures.record(
        "bad input", "nasty payloads end to end (broker, collector, PostgreSQL)",
        tried=f"{len(NASTY)} payloads: {', '.join(w for w, _, _ in NASTY)}",
        result="the collector never stalled; every message processed or rejected with its reason",
        lost=0, processed=int(processed), rejected=int(rejected),
        reasons=sorted({r.reason for r in dead}),
    )
    _ = time
