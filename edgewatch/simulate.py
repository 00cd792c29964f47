"""`edgewatch simulate`: publish a simulated fleet's telemetry over MQTT, as real agents would.

Each device publishes the contract's sample to `edgewatch/v1/{device_id}/telemetry` with QoS 1
every interval, with its own `seq` and `instance`, and a retained `online` status at start. One
MQTT connection carries the whole fleet (thousands of devices fit on one), so devices gone silent
are marked offline by the collector's missed-interval rule rather than by a last will.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common import cli, logsetup
from common.config import ConfigError, parse_broker_url, read_toml
from common.process import tune_garbage_collector
from edgewatch import __version__
from edgewatch.fleet import FleetError, SimDevice, default_fleet, fleet_from_scenario

TOPIC = "edgewatch/v1/{}/telemetry"
STATUS = "edgewatch/v1/{}/status"


class FleetPublisher:
    """Publishes one sample per device per `step()`; counts what the broker acknowledged."""

    def __init__(self, devices: Sequence[SimDevice], url: str, client_id: str | None = None) -> None:
        host, port, tls = parse_broker_url(url)
        self.devices = list(devices)
        self.instance = uuid.uuid4().hex[:12]
        self.sent = 0  # samples
        self.published = 0  # every message, statuses included
        self.acked = 0
        self.step_number = 0
        self._lock = threading.Lock()
        self._connected = threading.Event()
        # MQTT 3.1.1, as the agent speaks it (agent/link.py). It is also cheaper: paho decodes an
        # MQTT 5 PUBACK into property and reason-code objects, a quarter of the simulator's CPU.
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"edgewatch-sim-{self.instance}",
            protocol=mqtt.MQTTv311,
        )
        # No in-flight limit: above one, paho queues the excess and rescans its whole in-flight
        # window on every PUBACK to find the next to send, which held a 10 000-device fleet to
        # about 3 000 samples/s at 200 us of CPU each.
        self.client.max_inflight_messages_set(0)
        self.client.max_queued_messages_set(0)
        if tls:
            self.client.tls_set()
        self.client.on_connect = lambda *a: self._connected.set()
        self.client.on_publish = self._on_publish
        self.client.connect_async(host, port, keepalive=30)

    def _on_publish(self, client: object, userdata: object, mid: int, reason: object, props: object) -> None:
        with self._lock:
            self.acked += 1

    def start(self, timeout: float = 10.0) -> None:
        self.client.loop_start()
        if not self._connected.wait(timeout):
            self.client.loop_stop()
            raise ConnectionError(f"could not connect to the broker within {timeout:.0f} s")
        for device in self.devices:
            status = {"state": "online", "agent_version": f"simulator {__version__}", "started_at": time.time()}
            self.client.publish(STATUS.format(device.device_id), orjson.dumps(status), qos=1, retain=True)
            self.published += 1

    def step(self, now: float) -> int:
        """Publish one sample for every device still reporting; returns how many were published."""
        published = 0
        for device in self.devices:
            metrics = device.metrics(self.step_number)
            if metrics is None:
                continue
            sample = {
                "v": 1,
                "device_id": device.device_id,
                "seq": self.step_number + 1,
                "ts": round(now, 3),
                "metrics": metrics,
                "instance": f"sim-{self.instance}",
                "device_class": device.device_class,
            }
            self.client.publish(TOPIC.format(device.device_id), orjson.dumps(sample), qos=1)
            published += 1
        self.sent += published
        self.published += published
        self.step_number += 1
        return published

    def stop(self, drain_timeout: float = 10.0) -> None:
        deadline = time.monotonic() + drain_timeout
        while self.acked < self.published and time.monotonic() < deadline:
            time.sleep(0.05)
        self.client.disconnect()
        self.client.loop_stop()


def run(
    publisher: FleetPublisher,
    interval: float,
    steps: int | None,
    stop: threading.Event,
    report: Callable[[str], None],
    clock: Callable[[], float] = time.time,
) -> None:
    publisher.start()
    tune_garbage_collector(50_000)  # after the fleet is built: its devices are never garbage
    next_at = time.monotonic()
    last_report = 0.0
    while not stop.is_set() and (steps is None or publisher.step_number < steps):
        publisher.step(clock())
        next_at += interval
        now = time.monotonic()
        if now - last_report >= 1.0:
            last_report = now
            report(
                f"step {publisher.step_number}: {publisher.sent:,} samples sent, "
                f"{publisher.published - publisher.acked:,} awaiting acknowledgement, "
                f"{len(publisher.devices):,} devices"
            )
        stop.wait(max(0.0, next_at - time.monotonic()))
    publisher.stop()
    report(f"done: {publisher.sent:,} samples sent, {publisher.published - publisher.acked:,} unacknowledged")


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.Parser(prog="edgewatch simulate", description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=200, help="fleet size (default 200)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples (default 10)")
    parser.add_argument("--scenario", metavar="FILE", help="TOML scenario: fleet size, customers, behaviours")
    parser.add_argument("--steps", type=int, help="stop after this many samples per device")
    parser.add_argument("--url", help="broker URL (default: EDGEWATCH_MQTT_URL or mqtt://127.0.0.1:1883)")
    parser.add_argument("--list", action="store_true", help="print the fleet (id, class, customer, behaviour) and exit")
    cli.add_common(parser, default_level="WARNING")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.interval <= 0:
        parser.error("--devices must be at least 1 and --interval greater than 0")
    logsetup.configure(cli.chosen_level(args, "WARNING"))
    try:
        if args.scenario:
            count = args.devices if "--devices" in (argv or sys.argv) else None
            devices = fleet_from_scenario(read_toml(Path(args.scenario)), count, source=args.scenario)
        else:
            devices = default_fleet(args.devices)
    except (ConfigError, FleetError) as exc:
        print(f"edgewatch simulate: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for d in devices:
            print(f"{d.device_id}\t{d.device_class}\t{d.customer}\t{d.behaviour}")
        return 0
    url = args.url or os.environ.get("EDGEWATCH_MQTT_URL") or "mqtt://127.0.0.1:1883"
    setting = "--url" if args.url else "EDGEWATCH_MQTT_URL" if os.environ.get("EDGEWATCH_MQTT_URL") else "broker"
    try:
        publisher = FleetPublisher(devices, url)
    except (ValueError, OSError) as exc:
        print(f"edgewatch simulate: {setting}: {url!r}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    tty = sys.stderr.isatty()

    def report(line: str) -> None:
        sys.stderr.write(("\r\033[K" if tty else "") + line + ("" if tty else "\n"))
        sys.stderr.flush()

    try:
        run(publisher, args.interval, args.steps, stop, report)
    except ConnectionError as exc:
        print(("\n" if tty else "") + f"edgewatch simulate: {setting}: {url}: {exc}", file=sys.stderr)
        return 1
    if tty:
        sys.stderr.write("\n")
    return 0
