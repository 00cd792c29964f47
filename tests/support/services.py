"""Start real outside systems on 127.0.0.1 for tests: mosquitto, PostgreSQL, VictoriaMetrics, InfluxDB.

Each service runs as a child process on a free port with its files in a temporary directory,
and is stopped (and its files removed) by the context manager. Every wait has a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from edgewatch.net import free_port, wait_for_port

__all__ = ["free_port", "wait_for_port"]  # re-exported for the tests

POSTGRES_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def find_executable(name: str, *extra_dirs: Path) -> str:
    for directory in extra_dirs:
        candidate = directory / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (scripts/test installs it)")
    return found


@dataclass
class Mosquitto:
    """A mosquitto broker on 127.0.0.1. `stop()` and `start()` again keep the same port and data."""

    port: int
    workdir: Path
    extra_config: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
            # Started as root, mosquitto would switch to its own user, which cannot write its
            # persistence file in this root-owned temporary directory: sessions would not survive.
            + ("user root\n" if os.geteuid() == 0 and "user " not in self.extra_config else "")
            + self.extra_config
        )
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([find_executable("mosquitto"), "-c", str(conf)], stdout=log, stderr=log)
        wait_for_port(self.port)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM, 10)
        self.process = None


def stop_process(process: subprocess.Popen[bytes] | None, signum: int, timeout: float) -> None:
    """Ask a service to stop with `signum`; kill it if it has not within `timeout` seconds."""
    if process is None:
        return
    process.send_signal(signum)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def start_secured_mosquitto(workdir: Path, passwords: dict[str, str], acl: Path, extra_config: str = "") -> Mosquitto:
    """mosquitto with anonymous access off, a password file made from `passwords` and the given ACL."""
    passwd = workdir / "passwd"
    for user, password in passwords.items():
        flag = [] if passwd.exists() else ["-c"]
        subprocess.run([find_executable("mosquitto_passwd"), *flag, "-b", str(passwd), user, password], check=True)
    broker = Mosquitto(free_port(), workdir)
    conf = workdir / "secured.conf"
    # `user root`: started as root, mosquitto would drop to a user that cannot read workdir.
    conf.write_text(
        f"per_listener_settings false\nallow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
        f"listener {broker.port} 127.0.0.1\n{extra_config}persistence false\nlog_dest stderr\nuser root\n"
    )
    log = (workdir / "mosquitto.log").open("ab")
    broker.process = subprocess.Popen([find_executable("mosquitto"), "-c", str(conf)], stdout=log, stderr=log)
    wait_for_port(broker.port)
    return broker


@contextlib.contextmanager
def mosquitto(extra_config: str = "") -> Iterator[Mosquitto]:
    with tempfile.TemporaryDirectory(prefix="ew-mosquitto-") as tmp:
        broker = Mosquitto(free_port(), Path(tmp), extra_config)
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


@dataclass
class Postgres:
    port: int
    datadir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://edgewatch@127.0.0.1:{self.port}/edgewatch"

    def start(self) -> None:
        log = (self.datadir.parent / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            [
                find_executable("postgres", *POSTGRES_BIN_DIRS),
                "-D",
                str(self.datadir),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.datadir.parent),
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=log,
            stderr=log,
            preexec_fn=_drop_to_postgres_user,
        )
        wait_for_port(self.port, timeout=30)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGINT, 20)  # SIGINT: PostgreSQL's fast shutdown
        self.process = None


def _postgres_ids() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: run it as the `postgres` (or `nobody`) user."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and no unprivileged user for PostgreSQL")


def _drop_to_postgres_user() -> None:  # runs in the child before exec
    ids = _postgres_ids()
    if ids is not None:
        os.setgid(ids[1])
        os.setuid(ids[0])


def create_database(port: int, attempts: int = 20) -> None:
    """createdb, retried: the port opens a moment before the server accepts logins ("starting up")."""
    command = [find_executable("createdb", *POSTGRES_BIN_DIRS), "-h", "127.0.0.1", "-p", str(port), "-U",
               "edgewatch", "edgewatch"]
    for attempt in range(attempts):
        result = subprocess.run(command, capture_output=True, timeout=30)
        if result.returncode == 0:
            return
        if attempt == attempts - 1:
            raise RuntimeError(f"createdb failed: {result.stderr.decode(errors='replace').strip()}")
        time.sleep(0.25)


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    with tempfile.TemporaryDirectory(prefix="ew-postgres-") as tmp:
        base = Path(tmp)
        datadir = base / "data"
        ids = _postgres_ids()
        if ids is not None:
            os.chown(base, *ids)
        subprocess.run(
            [
                find_executable("initdb", *POSTGRES_BIN_DIRS),
                "-D",
                str(datadir),
                "-U",
                "edgewatch",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            preexec_fn=_drop_to_postgres_user,
        )
        server = Postgres(free_port(), datadir)
        server.start()
        try:
            create_database(server.port)
            yield server
        finally:
            server.stop()


@dataclass
class VictoriaMetrics:
    """A single-node VictoriaMetrics server, run as docs/operations.md asks: samples of one series with
    one timestamp (a redelivery) kept once (`-dedup.minScrapeInterval=1ms`). Its query API shows samples
    newer than a second (`-search.latencyOffset=1s`; the default hides the last 30 s, too long for a
    test to wait)."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.workdir / "vm.log").open("ab")
        self.process = subprocess.Popen(
            [find_executable("victoria-metrics"), f"-storageDataPath={self.workdir / 'data'}",
             "-retentionPeriod=100y", f"-httpListenAddr=127.0.0.1:{self.port}", "-search.latencyOffset=1s",
             "-dedup.minScrapeInterval=1ms"],
            stdout=log, stderr=log,
        )
        wait_for_port(self.port, timeout=20)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM, 10)
        self.process = None

    def flush(self) -> None:
        """Make every sample written so far searchable (VictoriaMetrics buffers them for a few seconds)."""
        with httpx.Client(timeout=10) as client:
            client.get(f"{self.url}/internal/force_flush").raise_for_status()

    def export(self, match: str = '{__name__=~"device_health_.*"}') -> list[dict[str, object]]:
        """Every stored series matching `match` (after forcing buffered rows to be searchable)."""
        self.flush()
        with httpx.Client(timeout=10) as client:
            # Up to a day ahead: a sample stamped by a device clock a little fast is still listed.
            answer = client.post(f"{self.url}/api/v1/export", data={"match[]": match, "end": f"{time.time() + 86400:.0f}"})
            answer.raise_for_status()
        return [json.loads(line) for line in answer.text.splitlines() if line.strip()]


@contextlib.contextmanager
def victoria_metrics(port: int | None = None) -> Iterator[VictoriaMetrics]:
    with tempfile.TemporaryDirectory(prefix="ew-vm-") as tmp:
        server = VictoriaMetrics(port or free_port(), Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@dataclass
class InfluxDB:
    """An InfluxDB 1.x server (Debian's `influxd`): HTTP on `port`, its RPC port beside it, files in
    `workdir`, no authentication, no usage reporting, no self-monitoring, no continuous queries."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        conf = self.workdir / "influxdb.conf"
        conf.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{self.workdir}/meta"\n'
            f'[data]\n  dir = "{self.workdir}/data"\n  wal-dir = "{self.workdir}/wal"\n'
            "  query-log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "[continuous_queries]\n  enabled = false\n"
            '[logging]\n  level = "warn"\n'
        )
        log = (self.workdir / "influxd.log").open("ab")
        self.process = subprocess.Popen([find_executable("influxd"), "run", "-config", str(conf)],
                                        stdout=log, stderr=log)
        wait_for_port(self.port, timeout=30)
        deadline = time.monotonic() + 30
        while True:  # the port opens a moment before the server answers
            try:
                if httpx.get(f"{self.url}/ping", timeout=2).status_code == 204:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"influxd on port {self.port} did not answer /ping")
            time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM, 15)
        self.process = None


@contextlib.contextmanager
def influxdb(port: int | None = None) -> Iterator[InfluxDB]:
    with tempfile.TemporaryDirectory(prefix="ew-influxdb-") as tmp:
        server = InfluxDB(port or free_port(), Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@dataclass
class NatsNode:
    """One nats-server of a cluster: client, cluster-route and MQTT ports on 127.0.0.1, JetStream on."""

    name: str
    port: int
    cluster_port: int
    mqtt_port: int
    monitor_port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    def start(self) -> None:
        log = (self.workdir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen([find_executable("nats-server"), "-c", str(self.workdir / f"{self.name}.conf")],
                                        stdout=log, stderr=log)
        wait_for_port(self.port, timeout=30)
        wait_for_port(self.mqtt_port, timeout=30)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM, 15)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no goodbye to the cluster."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@dataclass
class NatsCluster:
    nodes: list[NatsNode]

    @property
    def urls(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until JetStream has a meta leader (the cluster can create streams)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = 0
            for node in self.nodes:
                try:
                    health = httpx.get(f"http://127.0.0.1:{node.monitor_port}/healthz",
                                       timeout=2)
                    ready += health.status_code == 200
                except httpx.HTTPError:
                    pass
            if ready == len(self.nodes):
                return
            time.sleep(0.2)
        raise TimeoutError(f"the NATS cluster was not ready within {timeout:g} s")


def _nats_config(node: NatsNode, routes: list[int], mappings: dict[str, str]) -> str:
    mapping_lines = "".join(f'  "{source}": "{target}"\n' for source, target in mappings.items())
    route_list = ", ".join(f'"nats-route://127.0.0.1:{port}"' for port in routes)
    return (
        f"server_name: {node.name}\n"
        f"listen: 127.0.0.1:{node.port}\n"
        f"http: 127.0.0.1:{node.monitor_port}\n"
        f'jetstream {{ store_dir: "{node.workdir / node.name}", max_memory_store: 64MB, max_file_store: 2GB }}\n'
        f"cluster {{ name: edgewatch, listen: 127.0.0.1:{node.cluster_port}, routes: [{route_list}] }}\n"
        f"mqtt {{ listen: 127.0.0.1:{node.mqtt_port} }}\n"
        f"mappings = {{\n{mapping_lines}}}\n"
    )


@contextlib.contextmanager
def nats_cluster(size: int = 3, partitions: int = 16) -> Iterator[NatsCluster]:
    """`size` nats-server processes clustered on 127.0.0.1, with JetStream, the MQTT listener and the
    fleet's partition mapping (`collector.bus.partitions.server_mapping`)."""
    from collector.bus.partitions import server_mapping

    with tempfile.TemporaryDirectory(prefix="ew-nats-") as tmp:
        workdir = Path(tmp)
        nodes = [NatsNode(f"n{n + 1}", free_port(), free_port(), free_port(), free_port(), workdir)
                 for n in range(size)]
        for node in nodes:
            routes = [other.cluster_port for other in nodes if other is not node]
            (workdir / f"{node.name}.conf").write_text(
                _nats_config(node, routes, server_mapping(partitions)))
        cluster = NatsCluster(nodes)
        try:
            for node in nodes:
                node.start()
            cluster.wait_ready()
            yield cluster
        finally:
            for node in nodes:
                node.stop()
