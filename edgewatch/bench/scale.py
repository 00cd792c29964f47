"""`edgewatch bench scale`: shared collectors on NATS JetStream, 1, 2 and 3 of them on one stream.

For each count, that many `edgewatch collector --bus` processes share the partitions of a fresh
stream on a throw-away nats-server (JetStream, the partition mapping); once the partitions are
shared out, the collectors are paused (SIGSTOP), the stream is filled with `--messages` samples
from `--devices` devices, and the collectors are resumed: the figure is how long they take to
process it all, with each collector's CPU per message. Then, with the largest count, one
collector is SIGKILLed and the take-over is timed: until every partition it held is held by
another. The ticket database is the PostgreSQL at `--database` (each count uses devices of its own);
the telemetry store is off, so the figures are the bus and the rules, not a store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import orjson
import psutil

from collector.bus.settings import BusSettings
from edgewatch.bench._servers import nats
from edgewatch.net import free_port

HOLDS = re.compile(r"bus: (\S+) holds partition (\d+) from")
HELD = re.compile(r"bus: (\S+) held partition (\d+) until")


class Member:
    """One `edgewatch collector --bus` process."""

    def __init__(self, workdir: Path, name: str, bus_url: str, database: str, partitions: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = workdir / "collector.log"
        self.metrics_port = free_port()
        config = workdir / "edgewatch.toml"
        config.write_text(f'[bus]\nname = "{name}"\npartitions = {partitions}\n[telemetry]\nstore = "none"\n')
        env = {**os.environ, "EDGEWATCH_DATA_DIR": str(workdir), "EDGEWATCH_DATABASE_URL": database,
               "EDGEWATCH_METRICS_PORT": str(self.metrics_port), "EDGEWATCH_PREDICTIVE_ENABLED": "false"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "edgewatch.cli", "collector", "--config", str(config),
                                         "--bus", bus_url, "--no-ticket-runtime"], env=env, stdout=log,
                                        stderr=log, cwd=workdir)
        log.close()
        self.ps = psutil.Process(self.process.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def held(self) -> set[int]:
        current: set[int] = set()
        for line in self.log().splitlines():
            if m := HOLDS.search(line):
                current.add(int(m.group(2)))
            elif m := HELD.search(line):
                current.discard(int(m.group(2)))
        return current

    def processed(self) -> float:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return 0.0
        found = re.search(r'edgewatch_collector_messages_total\{outcome="processed"\} (\S+)', text)
        return float(found.group(1)) if found else 0.0

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def wait(predicate: object, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def shared_out(members: list[Member], partitions: int) -> bool:
    held = [p for m in members if m.process.poll() is None for p in m.held()]
    return sorted(held) == list(range(partitions))


async def _fill(url: str, run: int, devices: int, messages: int) -> None:
    import nats as nats_client

    nc = await nats_client.connect(url)
    try:
        js = nc.jetstream()
        base = 1_780_000_000.0
        for n in range(messages):
            device = f"r{run}-{n % devices:06d}"
            seq = n // devices + 1
            sample = {"v": 1, "device_id": device, "seq": seq, "ts": base + seq,
                      "metrics": {"cpu_percent": 20.0 + (n % 7), "mem_percent": 40.0, "latency_ms": 12.0}}
            await nc.publish(f"edgewatch.v1.{device}.telemetry", orjson.dumps(sample))
            if n % 5000 == 4999:
                await nc.flush()
        await nc.flush()
        while (await js.stream_info("EDGEWATCH")).state.messages < messages:
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def _reset(url: str) -> None:
    import nats as nats_client

    nc = await nats_client.connect(url)
    try:
        js = nc.jetstream()
        for call in (js.delete_stream("EDGEWATCH"), js.delete_key_value("edgewatch_leases")):
            with contextlib.suppress(Exception):  # not there yet
                await call
    finally:
        await nc.close()


def measure(url: str, database: str, workdir: Path, run: int, count: int, partitions: int, devices: int,
            messages: int) -> tuple[float, list[float], list[Member]]:
    asyncio.run(_reset(url))
    members = [Member(workdir / f"run{run}-c{n}", f"c{n}", url, database, partitions) for n in range(count)]
    wait(lambda: shared_out(members, partitions) and all(m.held() for m in members), 120, "the partitions shared")
    for m in members:
        m.process.send_signal(signal.SIGSTOP)
    try:
        asyncio.run(_fill(url, run, devices, messages))
        cpu0 = [m.cpu() for m in members]
    finally:
        for m in members:
            m.process.send_signal(signal.SIGCONT)
    start = time.monotonic()
    wait(lambda: sum(m.processed() for m in members) >= messages, 600, f"{messages} messages processed")
    elapsed = time.monotonic() - start
    per_message = []
    for m, before in zip(members, cpu0, strict=True):
        handled = m.processed()
        per_message.append((m.cpu() - before) / handled * 1e6 if handled else float("nan"))
    return messages / elapsed, per_message, members


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgewatch bench scale", description=__doc__.split("\n")[0])
    parser.add_argument("--database", required=True, help="PostgreSQL URL of a scratch ticket database")
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--devices", type=int, default=3_000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--max-collectors", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.database.startswith("postgresql"):
        print("edgewatch bench scale: --database must be a PostgreSQL URL", file=sys.stderr)
        return 2
    print(f"shared collectors on one NATS JetStream stream: {args.messages:,} samples from {args.devices:,} "
          f"devices, {args.partitions} partitions, telemetry store off; {os.cpu_count()} CPUs")
    print(f"{'collectors':>10} {'samples/s':>10} {'vs 1':>6}  CPU per sample, each collector (us)")
    with tempfile.TemporaryDirectory(prefix="edgewatch-bench-scale-") as tmp, nats(args.partitions) as url:
        baseline = 0.0
        members: list[Member] = []
        for count in range(1, args.max_collectors + 1):
            try:
                rate, cpu, members = measure(url, args.database, Path(tmp), count, count, args.partitions,
                                             args.devices, args.messages)
            finally:
                if count < args.max_collectors:
                    for m in members:
                        m.stop()
            baseline = baseline or rate
            print(f"{count:>10} {rate:>10,.0f} {rate / baseline:>5.2f}x  " + ", ".join(f"{c:.0f}" for c in cpu))
        try:
            victim = max(members, key=lambda m: len(m.held()))
            lost = victim.held()
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait(timeout=10)
            others = [m for m in members if m is not victim]
            took = wait(lambda: lost <= {p for m in others for p in m.held()}, 120, "the take-over")
            print(f"take-over after SIGKILL of a collector holding {len(lost)} partitions: {took:.1f} s "
                  f"(lease TTL {BusSettings(servers=(), name='').lease_ttl_s:g} s)")
        finally:
            for m in members:
                m.stop()
    return 0
