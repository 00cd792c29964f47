"""deploy/mosquitto: with per-device credentials and the shipped ACL, a device cannot speak for another."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.services import Mosquitto, start_secured_mosquitto

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
USERS = {"gw-0001": "pw-one", "gw-0002": "pw-two", "edgewatch-collector": "pw-collector"}


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    shipped = (DEPLOY / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in shipped and "acl_file" in shipped
    # The shipped access settings with this test's paths and port instead of the container's.
    limits = "".join(line + "\n" for line in shipped.splitlines() if line.startswith("max_packet_size"))
    assert limits, "the shipped configuration must bound the packet size"
    broker = start_secured_mosquitto(tmp_path, USERS, DEPLOY / "acl", limits)
    try:
        yield broker
    finally:
        broker.stop()


class Client:
    """A v5 client that records connect results, publish acknowledgements and messages."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.connected = threading.Event()
        self.connect_reason: ReasonCode | None = None
        self.acks: dict[int, ReasonCode] = {}
        self.acked = threading.Condition()
        self.messages: list[mqtt.MQTTMessage] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: ReasonCode, props: Properties | None
    ) -> None:
        self.connect_reason = reason
        self.connected.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, reason: ReasonCode, props: Properties | None
    ) -> None:
        with self.acked:
            self.acks[mid] = reason
            self.acked.notify_all()

    def publish(self, topic: str, payload: str) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.acks, timeout=10)
            return self.acks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_device_may_publish_only_as_itself(secured_broker: Mosquitto) -> None:
    collector = Client(secured_broker.port, "edgewatch-collector", USERS["edgewatch-collector"])
    device = Client(secured_broker.port, "gw-0001", USERS["gw-0001"])
    try:
        assert collector.connected.wait(10) and device.connected.wait(10)
        assert not collector.connect_reason.is_failure and not device.connect_reason.is_failure  # type: ignore[union-attr]
        subscribed = threading.Event()
        collector.client.on_subscribe = lambda *a: subscribed.set()
        collector.client.subscribe("edgewatch/v1/+/telemetry", qos=1)
        assert subscribed.wait(10)

        own = device.publish("edgewatch/v1/gw-0001/telemetry", "mine")
        forged = device.publish("edgewatch/v1/gw-0002/telemetry", "forged")
        assert not own.is_failure
        assert forged.is_failure and forged.getName() == "Not authorized"

        marker = device.publish("edgewatch/v1/gw-0001/telemetry", "last")
        assert not marker.is_failure
        pause = threading.Event()  # never set: a plain bounded wait
        for _ in range(100):
            if any(m.payload == b"last" for m in collector.messages):
                break
            pause.wait(0.05)
        assert [m.payload for m in collector.messages] == [b"mine", b"last"]
    finally:
        collector.close()
        device.close()


def test_wrong_password_and_anonymous_are_refused(secured_broker: Mosquitto) -> None:
    wrong = Client(secured_broker.port, "gw-0001", "guess")
    try:
        assert wrong.connected.wait(10)
        assert wrong.connect_reason is not None and wrong.connect_reason.is_failure
    finally:
        wrong.close()


def test_an_oversized_message_is_refused_by_the_broker(secured_broker: Mosquitto) -> None:
    collector = Client(secured_broker.port, "edgewatch-collector", USERS["edgewatch-collector"])
    device = Client(secured_broker.port, "gw-0002", USERS["gw-0002"])
    try:
        assert collector.connected.wait(10) and device.connected.wait(10)
        subscribed = threading.Event()
        collector.client.on_subscribe = lambda *a: subscribed.set()
        collector.client.subscribe("edgewatch/v1/+/telemetry", qos=1)
        assert subscribed.wait(10)
        assert not device.publish("edgewatch/v1/gw-0002/telemetry", "x" * 60_000).is_failure  # a sample's size
        disconnected = threading.Event()
        device.client.on_disconnect = lambda *a: disconnected.set()
        device.client.publish("edgewatch/v1/gw-0002/telemetry", "y" * 300_000, qos=1)
        assert disconnected.wait(10), "the broker kept a client that sent 300 kB"
        pause = threading.Event()
        for _ in range(40):
            if collector.messages:
                break
            pause.wait(0.05)
        pause.wait(0.5)
        assert [len(m.payload) for m in collector.messages] == [60_000]
    finally:
        collector.close()
        device.close()
