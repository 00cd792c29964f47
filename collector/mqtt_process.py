"""The broker client in a child process of its own.

paho's network thread and the processing thread would otherwise share one interpreter lock, and
the collector would use one core of two. Here the child runs `MqttSource` (the same code) and
does nothing but MQTT: it forwards received messages to the parent in batches over a pipe and
sends the PUBACKs the parent asks for. The parent keeps decoding, rules, database and telemetry.

The child stops when told, and also when the parent disappears (the pipe closes), so a killed
collector never leaves a process holding its persistent session. Stop signals meant for the whole
process group (Ctrl-C, systemd, a closing terminal) are left to the parent, which then tells it.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from collector.errors import BrokerError
from collector.mqtt import Inbound, MqttSource
from collector.settings import MqttSettings

logger = logging.getLogger(__name__)

FORWARD_MAX = 1000  # messages per pipe transfer
FORWARD_LINGER_S = 0.0005
CHILD_IDLE_S = 0.002
GENERATIONS_PER_CHILD = 1_000_000  # connection generations stay unique across restarted children


def child_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the child (`python -m collector.mqtt_process FD`); its settings come over the pipe."""
    args = sys.argv[1:] if argv is None else argv
    conn = Connection(int(args[0]))
    try:
        settings, subscriptions, queue_size, log_level, generation_base = conn.recv()
    except EOFError:
        return 1
    _child(settings, subscriptions, queue_size, conn, log_level, generation_base)
    return 0


def _child(settings: MqttSettings, subscriptions: Sequence[str], queue_size: int, conn: Connection,
           log_level: int, generation_base: int) -> None:
    from common import logsetup

    logsetup.configure(log_level, "%(asctime)s %(levelname)s %(name)s[mqtt]: %(message)s")
    # The parent decides when to stop. Ctrl-C, `timeout`, systemd's stop and a closing terminal
    # signal the whole process group (or control group): were this process to die of it, the
    # parent would see its child vanish mid-shutdown and report an error for a normal stop.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    source = MqttSource(settings, subscriptions, queue_size, generation_base)
    source.start()
    stop = threading.Event()

    # The parent's acknowledgements are read by a thread of their own. Were they read between
    # forwards, a parent busy sending acknowledgements while this process is blocked forwarding
    # (each waiting for the other to read) would deadlock both with full socket buffers.
    def read_commands() -> None:
        try:
            while True:
                command = conn.recv()
                if command == "stop":
                    return
                source.ack_ids(command)
        except (EOFError, OSError):
            pass  # the parent is gone: leave everything unacknowledged for the next collector
        finally:
            stop.set()

    reader = threading.Thread(target=read_commands, name="edgewatch-mqtt-commands", daemon=True)
    reader.start()
    told_subscribed = False
    try:
        while not stop.is_set():
            batch = source.get_batch(FORWARD_MAX, FORWARD_LINGER_S, CHILD_IDLE_S)
            if batch:
                conn.send([(m.topic, m.payload, m.qos, m.mid, m.retain, m.received_at, m.received_mono,
                            m.generation) for m in batch])
            if not told_subscribed and source.subscribed.is_set():
                conn.send("subscribed")
                told_subscribed = True
    except (EOFError, OSError, BrokenPipeError):
        pass  # the parent is gone
    finally:
        source.stop()


class ProcessMqttSource:
    """Same interface as `MqttSource`, with the MQTT client in a child process."""

    def __init__(self, settings: MqttSettings, subscriptions: Sequence[str], queue_size: int) -> None:
        self._settings = settings
        self._subscriptions = list(subscriptions)
        self._queue_size = queue_size
        self._epoch = 0
        self._buffer: deque[Inbound] = deque()
        self._send_lock = threading.Lock()
        self._closed = False
        self._dead = False
        self._process: subprocess.Popen[bytes] | None = None
        self.subscribed = threading.Event()
        self._spawn()

    def _spawn(self) -> None:
        # A fresh interpreter (not multiprocessing's spawn, which re-imports the host's __main__),
        # connected by a socket pair that it inherits.
        self._epoch += 1
        ours, theirs = socket.socketpair()
        self._conn = Connection(ours.detach())
        self._child_fd = theirs.detach()
        self._conn.send((self._settings, self._subscriptions, self._queue_size,
                         logging.getLogger().getEffectiveLevel(), self._epoch * GENERATIONS_PER_CHILD))

    def _launch(self) -> None:
        import os

        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "collector.mqtt_process", str(self._child_fd)], pass_fds=(self._child_fd,)
            )
        finally:
            os.close(self._child_fd)  # the child holds its end; EOF then means the child is gone
        self._dead = False

    @property
    def pid(self) -> int | None:
        """The MQTT child's process id."""
        return None if self._process is None else self._process.pid

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def queued(self) -> int:
        return len(self._buffer)

    def start(self, timeout: float | None = None) -> None:
        """Start the child; with `timeout`, wait for the subscription (seen by the `get_batch` caller)."""
        self._launch()
        if timeout is None:
            return
        deadline = time.monotonic() + timeout
        while not self.subscribed.wait(0.05):
            if time.monotonic() > deadline or not self._alive():
                self.stop()
                s = self._settings
                raise BrokerError(f"no subscription at mqtt://{s.host}:{s.port} within {timeout:g} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the child; anything not acknowledged stays with the broker."""
        if not self._closed:
            self._closed = True
            try:
                with self._send_lock:
                    self._conn.send("stop")
                    # Nothing more is read from the child: closing our end also frees it should
                    # it be blocked forwarding messages (they stay unacknowledged at the broker).
                    self._conn.close()
            except (OSError, ValueError):
                pass
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._conn.close()

    def _receive(self, timeout: float) -> bool:
        """Take what the child sent within `timeout`; False when nothing came."""
        try:
            if not self._conn.poll(timeout):
                return False
            while True:
                item: Any = self._conn.recv()
                if item == "subscribed":
                    self.subscribed.set()
                else:
                    self._buffer.extend(map(Inbound._make, item))
                if not self._conn.poll():
                    return True
        except (EOFError, OSError):
            if not self._closed and not self._dead:
                code = None if self._process is None else self._process.poll()
                logger.error("the MQTT process ended unexpectedly (exit code %s)", code)
                self._dead = True
            return False

    def _restart(self) -> None:
        """A new child after the previous one died; its unacknowledged messages come again."""
        if self._process is not None:
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._conn.close()
        time.sleep(1.0)
        self._spawn()
        self._launch()
        logger.warning("MQTT process restarted")

    def get_batch(self, max_items: int, linger_s: float, idle_s: float = 0.2) -> list[Inbound]:
        """As `MqttSource.get_batch`."""
        buffer = self._buffer
        if self._dead and not self._closed and not buffer:
            self._restart()
        if not buffer and not self._receive(idle_s):
            return []
        deadline = time.monotonic() + linger_s
        while len(buffer) < max_items:
            left = deadline - time.monotonic()
            if left <= 0 or not self._receive(left):
                break
        count = min(max_items, len(buffer))
        return [buffer.popleft() for _ in range(count)]

    def ack(self, messages: Iterable[Inbound]) -> int:
        ids = [(m.mid, m.qos, m.generation) for m in messages if m.qos > 0]
        if ids and not self._closed:
            try:
                with self._send_lock:
                    self._conn.send(ids)
            except (OSError, ValueError):
                return 0
        return len(ids)


if __name__ == "__main__":
    sys.exit(child_main())
