"""SIGKILL mid-stream: `edgewatch collector` killed while a fleet publishes, then restarted.
Nothing may be lost (every sample stored, every device at its last seq) and no ticket, note or
recovery message may be duplicated."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as paho
import psutil
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from rules import RuleEngine, Sample
from telemetry.sqlite import read_sqlite_samples
from tests.collector.helpers import sample, wait_for
from tests.support.services import Mosquitto, free_port
from tickets.db import create_engine_for
from tickets.models import Device, Ticket, TicketNote

pytestmark = pytest.mark.mosquitto

DEVICES = 20
# The short form by default; EDGEWATCH_SOAK=1 runs five times as many samples.
PER_DEVICE = 600 if os.environ.get("EDGEWATCH_SOAK") == "1" else 120
PATTERN = [95.0, 10.0, 10.0, 10.0, 70.0, 70.0, 70.0, 95.0, 10.0, 10.0, 10.0, 20.0]  # red, clear, orange→red, clear


def fleet() -> list[dict[str, object]]:
    out = []
    for seq in range(1, PER_DEVICE + 1):
        for d in range(DEVICES):
            cpu = PATTERN[(seq + d) % len(PATTERN)]
            out.append(sample(f"k-{d:02d}", seq, cpu_percent=cpu, mem_percent=30.0, latency_ms=15.0))
    return out


def expected(messages: list[dict[str, object]]) -> Counter[tuple[str, str, int]]:
    engine = RuleEngine()
    found: Counter[tuple[str, str, int]] = Counter()
    for m in messages:
        result = engine.feed(Sample(str(m["device_id"]), int(m["seq"]), float(m["ts"]), m["metrics"]))  # type: ignore[arg-type]
        for t in result.transitions:
            found[(t.device_id, t.event.value, t.seq)] += 1
    return found


def start(tmp: Path, broker: Mosquitto) -> subprocess.Popen[bytes]:
    env = {**os.environ, "EDGEWATCH_MQTT_URL": broker.url, "EDGEWATCH_MQTT_CLIENT_ID": "crash-test",
           "EDGEWATCH_DATA_DIR": str(tmp), "EDGEWATCH_METRICS_PORT": str(free_port())}
    log = (tmp / "collector.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "edgewatch.cli", "collector", "--log-level", "WARNING"],
                            env=env, stdout=log, stderr=log)


def prepare_session(broker: Mosquitto) -> None:
    """Create the collector's persistent session and subscription, as the collector itself would."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="crash-test", protocol=paho.MQTTv5)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe("edgewatch/v1/+/telemetry", qos=1)
    assert subscribed.wait(10)
    client.disconnect()
    client.loop_stop()


def stored(tmp: Path) -> int:
    try:
        return len(read_sqlite_samples(tmp / "telemetry.sqlite3"))
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.slow
def test_sigkill_mid_stream_loses_nothing_and_duplicates_nothing(broker: Mosquitto, tmp_path: Path) -> None:
    messages = fleet()
    prepare_session(broker)  # the broker queues for the collector from the first message on
    first = start(tmp_path, broker)

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="crash-publisher")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    done = threading.Event()

    def publish() -> None:
        import json

        for i, m in enumerate(messages):
            client.publish(f"edgewatch/v1/{m['device_id']}/telemetry", json.dumps(m), qos=1)
            if i % 200 == 199:
                time.sleep(0.1)  # about 2 000 messages a second
        done.set()

    threading.Thread(target=publish, daemon=True).start()
    try:
        wait_for(lambda: stored(tmp_path) >= len(messages) // 4, timeout=120, what="a quarter stored")
        children = psutil.Process(first.pid).children(recursive=True)
        assert children, "the MQTT client runs in a child process"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        # The orphaned MQTT process notices and goes, leaving the session to the next collector.
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive
        killed_at = stored(tmp_path)
        assert killed_at < len(messages), "the kill came too late to test anything"
        second = start(tmp_path, broker)
        try:
            assert done.wait(120)
            wait_for(lambda: stored(tmp_path) >= len(messages), timeout=180, what="every sample stored")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0
    finally:
        client.loop_stop()
        client.disconnect()
        if first.poll() is None:
            first.kill()

    assert stored(tmp_path) == len(messages)
    engine = create_engine_for(f"sqlite:///{tmp_path / 'edgewatch.db'}")
    try:
        with engine.connect() as conn:
            seqs = dict(conn.execute(sa.select(Device.id, Device.latest_seq)).all())  # type: ignore[arg-type]
            tickets = conn.execute(sa.select(Ticket.id, Ticket.device_id, Ticket.metric, Ticket.details)).all()
            notes = conn.execute(sa.select(TicketNote.ticket_id, TicketNote.text)).all()
    finally:
        engine.dispose()
    assert seqs == {f"k-{d:02d}": PER_DEVICE for d in range(DEVICES)}

    want = expected(messages)
    first_raise = {}
    for device_id, event, seq in sorted(want, key=lambda k: k[2]):
        if event == "raised":
            first_raise.setdefault(device_id, seq)
    # The first raise opened the ticket; every later raise and every clear is a note naming its seq.
    want_notes = {k: v for k, v in want.items() if k[1] != "escalated" and k[2] != first_raise.get(k[0])}
    assert len(tickets) == DEVICES and Counter(t.metric for t in tickets) == {"cpu_percent": DEVICES}
    device_of = {t.id: t.device_id for t in tickets}
    got: Counter[tuple[str, str, int]] = Counter()
    for ticket_id, text in notes:
        match = re.search(r"alert (raised|cleared)\b.*\(seq (\d+)\)", text) or re.search(
            r"alert on \S+ (cleared)\b.*\(seq (\d+)\)", text)
        if match:
            got[(device_of[ticket_id], match.group(1), int(match.group(2)))] += 1
    assert got == want_notes
    assert len(want_notes) > DEVICES * 10
