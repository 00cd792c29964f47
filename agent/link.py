"""The agent's one interface to the MQTT broker: a thin wrapper around paho-mqtt.

Each connection uses a fresh paho client, so nothing paho would queue or resend by itself carries
over from a lost connection: after a reconnect, the agent resends from its spool, in seq order,
and only from there. paho runs without threads: the agent's own loop waits on the link's socket
(`fileno()`, `wants_write()`) and calls `pump()`.
"""

from __future__ import annotations

import logging
import ssl
from typing import NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.settings import MqttSettings
from common.config import ConfigError

logger = logging.getLogger(__name__)


class LinkError(Exception):
    """The broker could not be reached or refused the agent; the message says why."""


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """TLS that verifies the broker's certificate and host name, with the client certificate if any.

    Made afresh for each connection, so renewed certificate files are picked up on the next
    reconnect. A file that cannot be loaded is a `ConfigError` naming its setting.
    """
    try:
        context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(str(settings.ca_file), "mqtt.ca_file", f"cannot load CA certificates from it: {exc}") \
            from None
    if settings.cert_file is not None and settings.key_file is not None:
        try:
            context.load_cert_chain(str(settings.cert_file), str(settings.key_file))
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(str(settings.cert_file), "mqtt.cert_file",
                              f"cannot load it with mqtt.key_file {settings.key_file}: {exc}") from None
    return context


class Message(NamedTuple):
    topic: str
    payload: bytes
    retain: bool = False


class BrokerLink:
    """One MQTT connection at a time. Callbacks only record what happened; the caller polls:
    `connected`, `closed`, `take_acks()`."""

    def __init__(self, settings: MqttSettings, client_id: str, will: Message, on_connect: Message) -> None:
        self.settings = settings
        self.client_id = client_id
        self.will = will
        self.on_connect_message = on_connect
        self._client: mqtt.Client | None = None
        self.connected = False
        self.closed = True
        self.close_reason = ""
        self._acks: list[int] = []

    def _new_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        client.connect_timeout = s.connect_timeout
        client.enable_logger(logging.getLogger("agent.paho"))
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set_context(tls_context(s))
        client.will_set(self.will.topic, self.will.payload, qos=1, retain=self.will.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def open(self) -> None:
        """Connect (blocking for at most the connect timeout) and send CONNECT. `connected`
        becomes true once the broker accepts; `closed` if it refuses."""
        self.close()
        try:
            self._client = self._new_client()
            self.closed = False
            self.close_reason = ""
            self._client.connect(self.settings.host, self.settings.port, keepalive=self.settings.keepalive)
        except (OSError, ssl.SSLError, ValueError, ConfigError) as exc:  # ConfigError: a TLS file went bad
            self._drop()
            raise LinkError(f"cannot connect to {self.settings.url}: {exc}") from exc

    def _drop(self) -> None:
        self._client = None
        self.connected = False
        self.closed = True

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                    properties: object) -> None:
        if getattr(reason, "is_failure", False):
            self.close_reason = f"the broker refused the connection: {reason}"
            return
        self.connected = True
        message = self.on_connect_message
        client.publish(message.topic, message.payload, qos=1, retain=message.retain)

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                       properties: object) -> None:
        self.connected = False
        self.closed = True
        self.close_reason = self.close_reason or f"connection lost: {reason}"

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason: object,
                    properties: object) -> None:
        self._acks.append(mid)

    def fileno(self) -> int | None:
        sock = self._client.socket() if self._client is not None else None
        return sock.fileno() if sock is not None else None

    def has_buffered_input(self) -> bool:
        """TLS may hold decrypted bytes that select() cannot see."""
        sock = self._client.socket() if self._client is not None else None
        pending = getattr(sock, "pending", None)
        return bool(pending and pending() > 0)

    def wants_write(self) -> bool:
        return self._client is not None and self._client.want_write()

    def pump(self, readable: bool, writable: bool) -> None:
        """Do the socket work select() said is possible, and keep-alive pings."""
        client = self._client
        if client is None:
            return
        if readable or self.has_buffered_input():
            client.loop_read()
        if client.socket() is not None and (writable or client.want_write()):
            client.loop_write()
        if client.socket() is not None:
            client.loop_misc()
        if client.socket() is None or self.closed:
            self._drop()

    def publish(self, message: Message) -> int:
        """Send with QoS 1; the returned message id comes back from `take_acks()` once acknowledged."""
        if self._client is None or not self.connected:
            raise LinkError("not connected")
        info = self._client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise LinkError(f"publish failed: {mqtt.error_string(info.rc)}")
        return info.mid

    def take_acks(self) -> list[int]:
        acks, self._acks = self._acks, []
        return acks

    def disconnect(self) -> None:
        """A clean DISCONNECT: the broker then does not publish the last will."""
        if self._client is not None:
            self._client.disconnect()
            self.pump(False, True)
        self._drop()

    def close(self) -> None:
        """Drop the connection without DISCONNECT (the broker publishes the last will)."""
        if self._client is not None:
            sock = self._client.socket()
            if sock is not None:
                sock.close()
        self._drop()
