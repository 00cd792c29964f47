"""Helpers for the agent's integration tests: run `edgewatch agent` as a real process, and listen
to the broker with a real MQTT client. Every wait has a timeout."""

from __future__ import annotations

import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass
class Received:
    topic: str
    payload: dict[str, Any]
    retain: bool
    dup: bool = False  # the broker redelivering to this listener (its leg of QoS 1), not a new publish


class Listener:
    """A subscriber to `edgewatch/#` with a persistent session, so that nothing published while it
    reconnects (e.g. after a broker restart) is missed."""

    def __init__(
        self,
        port: int,
        *,
        client_id: str = "test-listener",
        tls: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.messages: queue.Queue[Received] = queue.Queue()
        self.redelivered: list[Received] = []
        self._seen: set[tuple[str, object]] = set()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if tls is not None:
            self.client.tls_set_context(tls)
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, *_: c.subscribe("edgewatch/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        received = Received(message.topic, json.loads(message.payload), bool(message.retain), bool(message.dup))
        key = (received.topic, received.payload.get("seq"))
        if received.dup and key in self._seen:
            # The broker resends to this listener what it delivered just before a restart but had
            # not seen acknowledged: a duplicate on the listener's side, not one the agent sent.
            self.redelivered.append(received)
            return
        self._seen.add(key)
        self.messages.put(received)

    def next(self, where: Callable[[Received], bool] = lambda _: True, timeout: float = 15.0) -> Received:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if where(message):
                return message
        raise TimeoutError(f"no matching message within {timeout} s")

    def samples(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < count:
            left = deadline - time.monotonic()
            out.append(self.next(lambda m: m.topic.endswith("/telemetry"), timeout=max(left, 0.01)).payload)
        return out

    def drain(self, quiet: float = 0.5) -> list[Received]:
        """Everything that arrives until nothing has for `quiet` seconds."""
        out = []
        while True:
            try:
                out.append(self.messages.get(timeout=quiet))
            except queue.Empty:
                return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout} s")
        time.sleep(0.05)


class AgentProcess:
    """`edgewatch agent` in a child process with the given environment."""

    def __init__(self, env: dict[str, str], log: Path, args: tuple[str, ...] = ()) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWATCH_")}
        full_env.update(env)
        self.log = log
        self._log_file = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edgewatch.cli", "agent", *args],
            env=full_env, stdout=self._log_file, stderr=subprocess.STDOUT,
        )

    def terminate(self, timeout: float = 15.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self._log_file.close()


def agent_env(broker_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "EDGEWATCH_MQTT_URL": broker_url,
        "EDGEWATCH_DEVICE_ID": "gw-test",
        "EDGEWATCH_AGENT_INTERVAL": "0.2",
        "EDGEWATCH_DATA_DIR": str(data_dir),
        "EDGEWATCH_AGENT_PROBE_TIMEOUT": "0.2",
        "EDGEWATCH_AGENT_RECONNECT_MIN": "0.2",
        "EDGEWATCH_AGENT_RECONNECT_MAX": "0.5",
        "EDGEWATCH_AGENT_PUBLISH_RATE": "200",
    }
    env.update({f"EDGEWATCH_{k.upper()}": v for k, v in extra.items()})
    return env


def running_agent(env: dict[str, str], log: Path, args: tuple[str, ...] = ()) -> Iterator[AgentProcess]:
    agent = AgentProcess(env, log, args)
    try:
        yield agent
    finally:
        agent.close()
