"""The broker client: paho-mqtt wrapped once.

paho's network thread only turns each PUBLISH into an `Inbound` and puts it on a bounded queue;
the processing thread takes them off, and acknowledges them (PUBACK) itself once their effects are
committed (`manual_ack_set(True)`). MQTT v5 with a fixed client id, `clean_start=False` and a
session expiry interval: the broker keeps the subscription and queues messages while we are away.
Receive Maximum caps how many unacknowledged messages the broker sends us, so the queue never
has to hold more than that.

After a reconnect the broker redelivers every unacknowledged message with new packet ids, so
acknowledgements of messages from an earlier connection are skipped (they would ack the wrong
message): `Inbound.generation` tells the connections apart.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from collector.errors import BrokerError
from collector.settings import MqttSettings

logger = logging.getLogger(__name__)

MAX_RECEIVE_MAXIMUM = 65_535


class Inbound(NamedTuple):
    """One received message (a tuple: built once per message on the hot path, so it is cheap)."""

    topic: str | None  # None when the topic is not valid UTF-8
    payload: bytes
    qos: int
    mid: int
    retain: bool
    received_at: float  # wall clock, Unix seconds
    received_mono: float  # monotonic, for latency measurements
    generation: int  # which connection delivered it


class MqttSource:
    """Subscribes with QoS 1 on a persistent session; `get_batch` and `ack` from one consumer thread."""

    def __init__(
        self, settings: MqttSettings, subscriptions: Sequence[str], queue_size: int, generation_base: int = 0
    ) -> None:
        self._settings = settings
        self._subscriptions = list(subscriptions)
        self._queue: queue.Queue[Inbound] = queue.Queue(maxsize=queue_size)
        self._receive_maximum = min(queue_size, MAX_RECEIVE_MAXIMUM)
        self._generation = generation_base
        self._stopping = threading.Event()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        s = self._settings
        if s.protocol == "3.1.1":  # persistent session the 3.1.1 way: clean_session=False
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=paho.MQTTv311,
                                 clean_session=False)
        else:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=paho.MQTTv5)
        client.manual_ack_set(True)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set(ca_certs=str(s.ca_file) if s.ca_file else None, cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def start(self, timeout: float | None = None) -> None:
        """Connect in the background; with `timeout`, wait for the subscription (BrokerError if late)."""
        s = self._settings
        if s.protocol == "3.1.1":
            # No Receive Maximum in 3.1.1: the bounded queue holds paho's thread back instead.
            self._client.connect_async(s.host, s.port, s.keepalive_s)
        else:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
            props.ReceiveMaximum = self._receive_maximum
            self._client.connect_async(s.host, s.port, s.keepalive_s, clean_start=False, properties=props)
        self._client.loop_start()
        if timeout is not None and not self.subscribed.wait(timeout):
            self.stop()
            raise BrokerError(f"no subscription at mqtt://{s.host}:{s.port} within {timeout:g} s")

    def stop(self) -> None:
        """Disconnect without acknowledging anything still queued: the broker keeps it for us."""
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()

    # -- paho's network thread -----------------------------------------------------------------

    def _on_connect(self, client: paho.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            logger.error("broker refused the connection: %s", reason)
            return
        self._generation += 1
        logger.info("connected to the broker (session present: %s)", flags.session_present)
        self.connected.set()
        if self._settings.protocol == "3.1.1":
            client.subscribe([(topic, 1) for topic in self._subscriptions])
        else:
            options = SubscribeOptions(qos=1)
            client.subscribe([(topic, options) for topic in self._subscriptions])

    def _on_connect_fail(self, _c: Any, _u: Any) -> None:
        s = self._settings
        logger.warning("cannot reach the broker at %s:%d; retrying", s.host, s.port)

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: list[Any], _p: Any) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            logger.error("subscription refused: %s", ", ".join(failed))
        else:
            self.subscribed.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            logger.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        try:
            topic: str | None = message.topic
        except UnicodeDecodeError:
            topic = None
        item = Inbound(topic, bytes(message.payload), message.qos, message.mid, bool(message.retain),
                       time.time(), time.monotonic(), self._generation)
        # Blocking here stops paho reading the socket: backpressure to the broker, nothing lost.
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    # -- the consumer thread -------------------------------------------------------------------

    def get_batch(self, max_items: int, linger_s: float, idle_s: float = 0.2) -> list[Inbound]:
        """Up to `max_items` messages: waits up to `idle_s` for the first, takes what is queued, and
        lingers at most `linger_s` for more. A backlog fills whole batches; a trickle gets small,
        prompt ones (a red sample is not held back to fill a batch)."""
        try:
            first = self._queue.get(timeout=idle_s)
        except queue.Empty:
            return []
        batch = [first]
        get = self._queue.get_nowait
        deadline = 0.0
        while len(batch) < max_items:
            try:
                batch.append(get())
                continue
            except queue.Empty:
                pass
            now = time.monotonic()
            if not deadline:
                deadline = now + linger_s
            if now >= deadline:
                break
            try:
                batch.append(self._queue.get(timeout=deadline - now))
            except queue.Empty:
                break
        return batch

    def ack(self, messages: Iterable[Inbound]) -> int:
        """Acknowledge messages of the current connection; returns how many were sent."""
        return self.ack_ids((m.mid, m.qos, m.generation) for m in messages)

    def ack_ids(self, ids: Iterable[tuple[int, int, int]]) -> int:
        """Acknowledge (mid, qos, generation) triples of the current connection."""
        current, sent, ack = self._generation, 0, self._client.ack
        for mid, qos, generation in ids:
            if qos > 0 and generation == current:
                ack(mid, qos)
                sent += 1
        return sent
