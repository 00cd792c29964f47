"""The real pieces a reliability scenario runs, all on 127.0.0.1: `edgewatch collector` as a child
process, a fleet of MQTT clients standing in for agents, a webhook receiver that can go down, a
fresh PostgreSQL database. Every wait has a timeout."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from telemetry.sqlite import read_sqlite_samples
from tests.support.services import Postgres, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


def create_database(server: Postgres) -> str:
    """A new, empty database on the session's PostgreSQL; its SQLAlchemy URL."""
    name = f"rel_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=edgewatch dbname=edgewatch",
                         autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://edgewatch@127.0.0.1:{server.port}/{name}"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(path: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ the collector


CONNECTED = "connected to the broker"


class CollectorProcess:
    """`edgewatch collector` as a child process; its output goes to a log file the tests read."""

    def __init__(self, workdir: Path, broker_url: str, database_url: str, *, config: Path | None = None,
                 client_id: str = "reliability-collector", extra_env: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self.log_path = workdir / "collector.log"
        self.metrics_port = free_port()
        self.env = {
            **os.environ,
            "EDGEWATCH_MQTT_URL": broker_url,
            "EDGEWATCH_MQTT_CLIENT_ID": client_id,
            "EDGEWATCH_DATA_DIR": str(workdir),
            "EDGEWATCH_DATABASE_URL": database_url,
            "EDGEWATCH_METRICS_PORT": str(self.metrics_port),
            # The webhook receivers of the tests listen on 127.0.0.1.
            "EDGEWATCH_NOTIFY_ALLOW_PRIVATE_ADDRESSES": "1",
            **(extra_env or {}),
        }
        self.args = [sys.executable, "-m", "edgewatch.cli", "collector", "--log-level", "INFO"]
        if config is not None:
            self.args += ["--config", str(config)]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def telemetry_path(self) -> Path:
        return self.workdir / "telemetry.sqlite3"

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until it is connected to the broker (its subscription follows at once)."""
        connects = self.log().count(CONNECTED)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=log, cwd=self.workdir)
        log.close()
        self.starts += 1
        wait_until(lambda: self._listening() or self._died(), timeout, "the collector's metrics port")
        assert self.process.poll() is None, f"the collector exited at start:\n{self.log()[-3000:]}"
        wait_until(lambda: self.log().count(CONNECTED) > connects or self._died(), timeout, "a broker connection")
        time.sleep(0.3)  # the SUBACK: messages published before it would not be queued for a new session

    def _listening(self) -> bool:
        try:
            wait_for_port(self.metrics_port, timeout=0.05)
            return True
        except TimeoutError:
            return False

    def _died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self, timeout: float = 30.0) -> int:
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            code = -9
        self.process = None
        return code

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_bytes(self) -> int:
        import psutil

        assert self.process is not None
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def metrics(self) -> dict[str, float]:
        """The Prometheus exposition as {'name{labels}': value}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stored(self) -> int:
        """Samples in the collector's SQLite store, each key once (0 before it exists); the store
        appends to samples_recent and moves rows into samples every few seconds."""
        return count_rows(self.telemetry_path, "(SELECT device_id, ts, seq FROM samples "
                                               "UNION SELECT device_id, ts, seq FROM samples_recent)")


def count_rows(path: Path, table: str) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def stored_samples(path: Path) -> Counter[tuple[str, int]]:
    """(device, seq) -> how many rows the telemetry store holds for it."""
    try:
        return Counter((row["device_id"], row["seq"]) for row in read_sqlite_samples(path))
    except sqlite3.OperationalError:  # not created yet
        return Counter()


# ------------------------------------------------------------------------------ the fleet


class Agents:
    """Devices publishing like agents: each its own MQTT client (client id, persistent session, QoS 1),
    so a broker restart is lived through the way each agent lives through it. paho keeps and resends
    whatever the broker has not acknowledged."""

    def __init__(self, port: int, streams: Mapping[str, Sequence[dict[str, Any]]], *, rate: float = 1000.0,
                 topic: str = "edgewatch/v1/{}/telemetry", credentials: Mapping[str, str] | None = None,
                 tls: Any = None) -> None:
        self.port = port
        self.streams = streams
        self.rate = rate
        self.topic = topic
        self.published = 0
        self.acked = 0
        self._lock = threading.Lock()
        self._acked: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self.done = threading.Event()
        self.clients: dict[str, paho.Client] = {}
        self.connected: dict[str, threading.Event] = {}
        for device_id in streams:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"rel-agent-{device_id}",
                                 clean_session=False)
            client.max_inflight_messages_set(1)
            client.max_queued_messages_set(0)
            client.reconnect_delay_set(0.2, 2.0)
            if credentials is not None:
                client.username_pw_set(device_id, credentials[device_id])
            if tls is not None:
                client.tls_set_context(tls)
            event = threading.Event()
            client.on_connect = lambda c, u, f, r, p, e=event: e.set() if not r.is_failure else None
            client.on_disconnect = lambda c, u, f, r, p, e=event: e.clear()
            client.on_publish = self._on_publish
            self.clients[device_id] = client
            self.connected[device_id] = event

    def _on_publish(self, client: paho.Client, _u: Any, mid: int, *_: Any) -> None:
        with self._lock:
            self.acked += 1
            self._acked.add((client._client_id.decode().removeprefix("rel-agent-"), mid))

    @property
    def total(self) -> int:
        return sum(len(s) for s in self.streams.values())

    def connect(self, timeout: float = 30.0) -> None:
        for client in self.clients.values():
            client.connect_async("127.0.0.1", self.port, keepalive=10)
            client.loop_start()
        for device_id, event in self.connected.items():
            assert event.wait(timeout), f"{device_id} could not connect"

    def run(self) -> threading.Thread:
        """Publish every stream, round-robin over the devices, at `rate` messages a second."""
        thread = threading.Thread(target=self._publish, name="rel-agents", daemon=True)
        thread.start()
        return thread

    def _client(self, device_id: str) -> str:
        """The connection a device publishes on: its own."""
        return device_id

    def _publish(self) -> None:
        # Like an agent sending its spool: a device's next sample goes out only once the broker has
        # acknowledged the previous one (paho would otherwise send a new sample ahead of those it
        # queued while disconnected, and the rules take a late sample for a duplicate).
        next_index = dict.fromkeys(self.streams, 0)
        last: dict[str, int] = {}  # device -> mid of its latest sample on its connection
        start = time.monotonic()
        while any(next_index[d] < len(s) for d, s in self.streams.items()):
            progressed = False
            for device_id, stream in self.streams.items():
                if self._stop.is_set():
                    return
                name = self._client(device_id)
                index = next_index[device_id]
                previous = last.get(device_id)
                if index >= len(stream) or not self.connected[name].is_set() or (
                        previous is not None and (name, previous) not in self._acked):
                    continue
                last[device_id] = self.clients[name].publish(
                    self.topic.format(device_id), json.dumps(stream[index]), qos=1).mid
                next_index[device_id] = index + 1
                self.published += 1
                progressed = True
                ahead = start + self.published / self.rate - time.monotonic()
                if ahead > 0:
                    self._stop.wait(ahead)
            if not progressed:
                self._stop.wait(0.01)
        self.done.set()

    def wait_acked(self, timeout: float) -> None:
        wait_until(lambda: self.acked >= self.total, timeout, f"the broker to acknowledge {self.total} messages")

    def close(self) -> None:
        self._stop.set()
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()


# ------------------------------------------------------------------------------ notification receiver


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every delivery and can be taken down (connections
    refused) and brought back on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.deliveries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {}
                with receiver._lock:
                    receiver.deliveries.append({"key": self.headers.get("Idempotency-Key"), "payload": payload,
                                                "at": time.time()})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def keys(self) -> Counter[str]:
        """Idempotency keys delivered (a digest counts for each item it carries), with repeats."""
        found: Counter[str] = Counter()
        with self._lock:
            for delivery in self.deliveries:
                items = (delivery["payload"].get("data") or {}).get("items") if delivery["payload"] else None
                if delivery["payload"].get("event") == "digest" and items:
                    found.update(str(item["idempotency_key"]) for item in items)
                elif delivery["key"]:
                    found[str(delivery["key"])] += 1
        return found


def seed_notification_targets(database_url: str, receiver_url: str, devices: Iterable[str]) -> None:
    """A customer owning every device, whose ops contact and every staff group is a webhook to
    `receiver_url`: each ticket then has someone to notify, and each notification is counted."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from tickets.db import create_engine_for, migrate
    from tickets.models import Contact, Customer, Device, StaffGroup, StaffLevel

    engine = create_engine_for(database_url)
    try:
        migrate(engine)
        with Session(engine) as session:
            customer = Customer(name="Reliability Rail")
            session.add(customer)
            session.flush()
            session.add(Contact(customer_id=customer.id, name="ops desk", channel="webhook", address=receiver_url,
                                role="ops"))
            for level in StaffLevel:
                session.add(StaffGroup(name=f"{level.value} engineers", level=level.value, channel="webhook",
                                       address=receiver_url))
            for device_id in devices:
                session.add(Device(id=device_id, customer_id=customer.id, state="unknown"))
            session.commit()
            assert session.scalar(sa.select(sa.func.count()).select_from(Device)) is not None
    finally:
        engine.dispose()
