"""Throw-away VictoriaMetrics and InfluxDB 1.x servers on 127.0.0.1 for the benchmarks, each in its
own temporary directory, stopped (and removed) when the block ends."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from edgewatch.net import free_port, wait_for_port


def executable(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def victoria_metrics() -> Iterator[str]:
    """Run as docs/operations.md asks (same-timestamp samples kept once); yields its URL."""
    binary = executable("victoria-metrics")
    if binary is None:
        raise FileNotFoundError("victoria-metrics is not installed")
    with tempfile.TemporaryDirectory(prefix="edgewatch-bench-vm-") as tmp:
        port = free_port()
        log = (Path(tmp) / "vm.log").open("ab")
        process = subprocess.Popen([binary, f"-storageDataPath={tmp}/data", "-retentionPeriod=100y",
                                    f"-httpListenAddr=127.0.0.1:{port}", "-dedup.minScrapeInterval=1ms"],
                                   stdout=log, stderr=log)
        try:
            wait_for_port(port, timeout=20)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(process)
            log.close()


@contextlib.contextmanager
def influxdb() -> Iterator[str]:
    """influxd (1.x) without authentication, reporting or self-monitoring; yields its URL."""
    binary = executable("influxd")
    if binary is None:
        raise FileNotFoundError("influxd is not installed")
    with tempfile.TemporaryDirectory(prefix="edgewatch-bench-influx-") as tmp:
        port = free_port()
        conf = Path(tmp) / "influxdb.conf"
        conf.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{tmp}/meta"\n[data]\n  dir = "{tmp}/data"\n  wal-dir = "{tmp}/wal"\n'
            '  query-log-enabled = false\n[monitor]\n  store-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
            '[continuous_queries]\n  enabled = false\n[logging]\n  level = "warn"\n')
        log = (Path(tmp) / "influxd.log").open("ab")
        process = subprocess.Popen([binary, "run", "-config", str(conf)], stdout=log, stderr=log)
        try:
            wait_for_port(port, timeout=30)
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 204:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError("influxd did not answer /ping")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(process)
            log.close()


@contextlib.contextmanager
def nats(partitions: int) -> Iterator[str]:
    """One nats-server with JetStream, its MQTT listener and the fleet's partition mapping; yields its URL."""
    from collector.bus.partitions import server_mapping

    binary = executable("nats-server")
    if binary is None:
        raise FileNotFoundError("nats-server is not installed")
    with tempfile.TemporaryDirectory(prefix="edgewatch-bench-nats-") as tmp:
        port = free_port()
        mapping = "".join(f'  "{k}": "{v}"\n' for k, v in server_mapping(partitions).items())
        conf = Path(tmp) / "nats.conf"
        conf.write_text(f"server_name: bench\nlisten: 127.0.0.1:{port}\n"
                        f'jetstream {{ store_dir: "{tmp}/js" }}\nmqtt {{ listen: 127.0.0.1:{free_port()} }}\n'
                        f"mappings = {{\n{mapping}}}\n")
        log = (Path(tmp) / "nats.log").open("ab")
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        try:
            wait_for_port(port, timeout=20)
            yield f"nats://127.0.0.1:{port}"
        finally:
            _stop(process)
            log.close()
