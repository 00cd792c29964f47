"""`edgewatch simulate` against a real mosquitto: what arrives is what agents would send."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from rules import parse_sample
from tests.support.services import Mosquitto

ROOT = Path(__file__).resolve().parents[2]


def collect(broker: Mosquitto, topic: str, count: int, run: list[str], timeout: float = 30) -> list[mqtt.MQTTMessage]:
    received: list[mqtt.MQTTMessage] = []
    done, subscribed = threading.Event(), threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        received.append(message)
        if len(received) >= count:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        result = subprocess.run(run, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        assert done.wait(timeout), f"only {len(received)} of {count} messages"
        return received
    finally:
        client.loop_stop()
        client.disconnect()


def test_simulated_samples_follow_the_contract(broker: Mosquitto) -> None:
    run = [
        sys.executable,
        "-m",
        "edgewatch.cli",
        "simulate",
        "--devices",
        "10",
        "--interval",
        "0.05",
        "--steps",
        "3",
        "--url",
        broker.url,
    ]
    messages = collect(broker, "edgewatch/v1/+/telemetry", 30, run)
    by_device: dict[str, list[int]] = {}
    for message in messages:
        sample = parse_sample(json.loads(message.payload))
        assert message.topic == f"edgewatch/v1/{sample.device_id}/telemetry"
        assert message.qos == 1
        by_device.setdefault(sample.device_id, []).append(sample.seq)
    assert len(by_device) == 10
    assert all(seqs == [1, 2, 3] for seqs in by_device.values())


def test_status_is_retained_online(broker: Mosquitto) -> None:
    run = [
        sys.executable,
        "-m",
        "edgewatch.cli",
        "simulate",
        "--devices",
        "2",
        "--interval",
        "0.05",
        "--steps",
        "1",
        "--url",
        broker.url,
    ]
    collect(broker, "edgewatch/v1/+/telemetry", 2, run)
    # a late subscriber still gets the retained status
    statuses = collect(broker, "edgewatch/v1/+/status", 2, [sys.executable, "-c", "pass"])
    assert {json.loads(m.payload)["state"] for m in statuses} == {"online"}
    assert all(m.retain for m in statuses)


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text('[[behaviour]]\nkind = "melt"\n')
    base = [sys.executable, "-m", "edgewatch.cli", "simulate"]
    result = subprocess.run([*base, "--scenario", str(bad)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and f"{bad}: behaviour[0].kind" in result.stderr
    result = subprocess.run([*base, "--url", "http://x"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "mqtt://" in result.stderr
    result = subprocess.run([*base, "--devices", "3", "--list"], capture_output=True, text=True, timeout=30)
    assert result.stdout.splitlines()[0] == "gw-0000\tgateway\tAcme Rail\tleak"
