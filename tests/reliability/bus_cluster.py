"""Shared collectors on a real NATS cluster, as the bus tests run them: `edgewatch collector --bus`
child processes, their ownership terms read from their logs, and the checks that no partition was
ever held by two collectors at once."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.reliability.stack import Agents, CollectorProcess, wait_until, write_config
from tests.support import services

PARTITIONS = 16
LEASE_TTL_S = 8.0
HOLDS = re.compile(r"bus: (\S+) holds partition (\d+) from ([\d.]+)")
HELD = re.compile(r"bus: (\S+) held partition (\d+) until ([\d.]+)")
STOPPED = re.compile(r"collector stopped: messages processed (\d+), duplicate (\d+), rejected (\d+)")


class BusCollector(CollectorProcess):
    """`edgewatch collector --bus ...` with its own data directory (and telemetry store)."""

    def __init__(self, workdir: Path, name: str, cluster: services.NatsCluster, database_url: str,
                 tickets: dict[str, float] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = write_config(workdir / "edgewatch.toml", {
            "bus": {"name": name, "partitions": PARTITIONS, "replicas": 3, "lease_ttl_s": LEASE_TTL_S},
            # Silent for 60 s is offline: longer than any take-over or node restart here, shorter than
            # the run, so a collector judging devices it does not hear from would open offline tickets;
            # and the fleet's end, once it has all been processed, is not taken for an outage.
            "collector": {"default_interval_s": 20.0},
            # A killed process's leased notifications are offered again after this long. The replay the
            # run is audited against has one ticket per alert: the fleet's random spells would make mass
            # events of its customer, whose rules have tests of their own (docs/noise.md).
            "tickets": {"outbox_lease_seconds": 5.0, "reconcile_seconds": 2.0, "incident_min_devices": 0,
                        **(tickets or {})},
            "notifications": {"retry_base_seconds": 1.0, "retry_max_seconds": 10.0},
            # No first-response clock falls due while the test runs (a red one would after 5 minutes
            # of a slow run, and page someone after the outbox was found settled).
            "sla": {"first_response_red": "8h", "first_response_yellow": "8h", "first_response_blue": "8h"},
        })
        super().__init__(workdir, "mqtt://127.0.0.1:1", database_url, config=config)
        self.name = name
        self.args += ["--bus", cluster.urls]
        self.kills: list[float] = []  # when it was SIGKILLed (its terms end there)

    def start(self, timeout: float = 60.0) -> None:
        runs = self.log().count("collector running")
        log = self.log_path.open("ab")
        import subprocess

        self.process = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=log, cwd=self.workdir)
        log.close()
        self.starts += 1
        wait_until(lambda: self.log().count("collector running") > runs or self._died(), timeout,
                   f"{self.name} to run")
        assert self.process.poll() is None, f"{self.name} exited at start:\n{self.log()[-3000:]}"

    def kill(self) -> None:
        self.kills.append(time.time())
        super().kill()

    def held(self) -> set[int]:
        """Partitions whose latest term in the log has not ended."""
        current: set[int] = set()
        for line in self.log().splitlines():
            if m := HOLDS.search(line):
                current.add(int(m.group(2)))
            elif m := HELD.search(line):
                current.discard(int(m.group(2)))
            elif "collector running" in line:
                current.clear()
        return current

    def terms(self) -> list[tuple[int, float, float]]:
        """(partition, from, until) of every term; a term cut short by SIGKILL ends at the kill."""
        out: list[tuple[int, float, float]] = []
        open_: dict[int, float] = {}
        kills = iter(self.kills)
        for line in self.log().splitlines():
            if "collector running" in line and open_:
                end = next(kills)  # the previous run was killed
                out += [(p, start, end) for p, start in open_.items()]
                open_.clear()
            if m := HOLDS.search(line):
                open_[int(m.group(2))] = float(m.group(3))
            elif m := HELD.search(line):
                start = open_.pop(int(m.group(2)), None)
                if start is not None:
                    out.append((int(m.group(2)), start, float(m.group(3))))
        end = next(kills, None) if self.process is None else time.time()
        out += [(p, start, end if end is not None else time.time()) for p, start in open_.items()]
        return out

    def counts(self) -> Counter[str]:
        """Messages processed and duplicate, over every clean stop in the log."""
        total: Counter[str] = Counter()
        for m in STOPPED.finditer(self.log()):
            total.update({"processed": int(m.group(1)), "duplicate": int(m.group(2))})
        return total


def overlaps(collectors: list[BusCollector]) -> list[str]:
    """Terms of one partition, of any collectors, that overlap in time: never allowed."""
    found = []
    latest: dict[int, tuple[float, str]] = {}  # partition -> the latest end seen, and whose
    for p, start, end, name in sorted((p, s, e, c.name) for c in collectors for p, s, e in c.terms()):
        before = latest.get(p)
        if before is not None and start < before[0]:
            found.append(f"partition {p}: {before[1]} until {before[0]:.3f}, {name} from {start:.3f}")
        if before is None or end > before[0]:
            latest[p] = (end, name)
    return found


def stream_seqs(cluster: services.NatsCluster, device_id: str, stream: str = "EDGEWATCH") -> list[int]:
    """The seqs of `device_id`'s samples the stream holds (to tell a loss at the broker from one after)."""
    import asyncio

    import nats

    from collector.bus.partitions import partition_of

    async def read() -> list[int]:
        nc = await nats.connect(servers=cluster.urls.split(","))
        try:
            js = nc.jetstream()
            sub = await js.subscribe(f"edgewatch.part.{partition_of(device_id, PARTITIONS)}.{device_id}.telemetry",
                                     stream=stream, ordered_consumer=True)
            seqs = []
            while True:
                try:
                    msg = await sub.next_msg(timeout=2)
                except nats.errors.TimeoutError:
                    return seqs
                seqs.append(int(json.loads(msg.data)["seq"]))
        finally:
            await nc.close()

    return asyncio.run(read())


def ownership(collectors: list[BusCollector]) -> dict[int, list[str]]:
    held: dict[int, list[str]] = {}
    for c in collectors:
        if c.alive():
            for p in c.held():
                held.setdefault(p, []).append(c.name)
    return held


def settled(collectors: list[BusCollector]) -> bool:
    """Every partition held by exactly one live collector, and the shares even (within one)."""
    held = ownership(collectors)
    shares = Counter(name for names in held.values() for name in names)
    live = [c for c in collectors if c.alive()]
    return (sorted(held) == list(range(PARTITIONS)) and all(len(v) == 1 for v in held.values())
            and len(shares) == len(live) and max(shares.values()) - min(shares.values()) <= 2)


class FleetAgents(Agents):
    """Devices publishing like agents, several to one MQTT connection (as `edgewatch simulate` does):
    a NATS MQTT session costs the cluster a JetStream write, so 500 of them would make connecting the
    slowest part of the test. Each connection has its own client id and persistent session; a device's
    next sample goes out only once the broker has acknowledged its previous one, as from a spool."""

    def __init__(self, port: int, streams: Mapping[str, Sequence[dict[str, Any]]], *, connections: int,
                 rate: float, prefix: str) -> None:
        self.port = port
        self.streams = streams
        self.rate = rate
        self.topic = "edgewatch/v1/{}/telemetry"
        self.published = 0
        self.acked = 0
        self._lock = threading.Lock()
        self._acked: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self.done = threading.Event()
        self.clients = {}
        self.connected = {}
        self._client_of: dict[str, str] = {}
        for n in range(connections):
            name = f"{prefix}-{n}"
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"rel-agent-{name}", clean_session=False)
            client.max_inflight_messages_set(0)
            client.max_queued_messages_set(0)
            client.reconnect_delay_set(0.2, 2.0)
            event = threading.Event()
            client.on_connect = lambda c, u, f, r, p, e=event: e.set() if not r.is_failure else None
            client.on_disconnect = lambda c, u, f, r, p, e=event: e.clear()
            client.on_publish = self._on_publish
            self.clients[name] = client
            self.connected[name] = event
        names = list(self.clients)
        for i, device_id in enumerate(streams):
            self._client_of[device_id] = names[i % len(names)]

    def _client(self, device_id: str) -> str:
        return self._client_of[device_id]
