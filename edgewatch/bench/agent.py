"""`edgewatch bench agent`: the agents' memory and CPU against Prometheus' node_exporter.

In one run, on this machine: a local mosquitto; `edgewatch agent` sampling every second and
publishing to it; the router agent (deploy/openwrt/edgewatch-agent.sh) under BusyBox ash, with only
BusyBox applets on its PATH, sampling every second too; Debian's `prometheus-node-exporter` scraped
once a second. Reports each one's peak RSS (VmHWM) and CPU time per sample (agents) or per scrape
(node_exporter), in steady state (after a warm-up that excludes start-up, e.g. Python's imports) and
over the whole run, and the ratios. The router agent's resident size is that of its two long-lived
processes (the shell and the mosquitto_pub holding the status connection); its CPU includes every
short-lived command it runs per sample (awk, ping, mosquitto_pub, ...). Peak RSS is each process's
VmHWM read from /proc just before it is stopped: the `ru_maxrss` that wait4() returns would count the
benchmark's own memory too, since Linux carries the high-water mark of the memory a child had before
exec() (a copy of this process) over to the program it runs.
Goals: agent peak RSS <= 1.2 x node_exporter's; agent CPU <= 2 ms per sample.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RSS_GOAL = 1.2
CPU_GOAL_MS = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s") from None
            time.sleep(0.05)


def executable(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if found is None:
        raise SystemExit(f"edgewatch bench agent: {name} is not installed (scripts/test installs it)")
    return found


@dataclass(frozen=True)
class Usage:
    """One process's CPU time (s) and peak resident memory (KiB)."""

    cpu_s: float
    peak_rss_kib: int


def ticks_cpu_seconds(pid: int, children: bool = False) -> float:
    """CPU time so far of a running process (with `children`, also of the children it has waited
    for), from /proc (10 ms steps)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime + cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def child_pids(pid: int, needle: str) -> list[int]:
    """Running children of `pid` whose command line contains `needle`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parent = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        if parent == str(pid) and needle in cmdline:
            found.append(int(entry.name))
    return found


class ShellAgent:
    """The router agent's processes: the shell, and the mosquitto_pub holding its status connection."""

    def __init__(self, shell: Child) -> None:
        self.shell = shell

    def presence(self) -> int | None:
        pids = child_pids(self.shell.proc.pid, "-status")
        return pids[0] if pids else None

    def cpu_seconds(self) -> float:
        total = ticks_cpu_seconds(self.shell.proc.pid, children=True)
        presence = self.presence()
        return total + (ticks_cpu_seconds(presence) if presence else 0.0)

    def resident_kib(self) -> int:
        presence = self.presence()
        return peak_rss_kib(self.shell.proc.pid) + (peak_rss_kib(presence) if presence else 0)


def busybox_path(workdir: Path) -> str:
    """A bin directory holding BusyBox applets and mosquitto_pub only, as on OpenWrt."""
    busybox = executable("busybox")
    bin_dir = workdir / "busybox-bin"
    bin_dir.mkdir()
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in [*applets, "busybox"]:
        (bin_dir / applet).symlink_to(busybox)
    (bin_dir / "mosquitto_pub").symlink_to(executable("mosquitto_pub"))
    return str(bin_dir)


class Child:
    """A child process whose resource usage is collected, to the microsecond, when it ends."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.usage: Usage | None = None

    def stop(self) -> Usage:
        if self.usage is None:
            self.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            while True:
                pid, _, rusage = os.wait4(self.proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    self.proc.kill()
                time.sleep(0.02)
            self.proc.returncode = 0  # reaped here: keep Popen from waiting for it again
            self._log.close()
            self.usage = Usage(rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss)
        return self.usage


@contextlib.contextmanager
def child(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[Child]:
    proc = Child(args, log, env)
    try:
        yield proc
    finally:
        proc.stop()


class SampleCounter:
    """Counts the agent's telemetry messages arriving at the broker."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-counter")
        self.client.on_connect = lambda c, *_: c.subscribe("edgewatch/v1/+/telemetry", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: object, userdata: object, message: Any) -> None:
        device = message.topic.split("/")[2]
        with self._lock:
            self.counts[device] = self.counts.get(device, 0) + 1

    def count(self, device: str) -> int:
        with self._lock:
            return self.counts.get(device, 0)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def scrape(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return len(response.read())


def run(duration: float, interval: float, warmup: float, workdir: Path) -> dict[str, float]:
    broker_port, exporter_port = free_port(), free_port()
    (workdir / "mosquitto.conf").write_text(
        f"listener {broker_port} 127.0.0.1\nallow_anonymous true\nlog_dest stderr\nlog_type error\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWATCH_")}
    env.update({
        "EDGEWATCH_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}",
        "EDGEWATCH_DEVICE_ID": "bench-agent",
        "EDGEWATCH_AGENT_INTERVAL": str(interval),
        "EDGEWATCH_DATA_DIR": str(workdir / "agent"),
    })
    exporter_args = [executable("prometheus-node-exporter"), f"--web.listen-address=127.0.0.1:{exporter_port}"]
    shell_env = {
        "PATH": busybox_path(workdir),
        "EDGEWATCH_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}",
        "EDGEWATCH_DEVICE_ID": "bench-router",
        "EDGEWATCH_AGENT_INTERVAL": str(interval),
        "EDGEWATCH_DATA_DIR": str(workdir / "router"),
        "EDGEWATCH_AGENT_PROBE_COUNT": "1",  # as the Python agent: one probe of the broker a sample
    }
    script = Path(__file__).resolve().parents[2] / "deploy" / "openwrt" / "edgewatch-agent.sh"
    with (
        child([executable("mosquitto"), "-c", str(workdir / "mosquitto.conf")], workdir / "mosquitto.log"),
        child(exporter_args, workdir / "node_exporter.log") as exporter,
    ):
        wait_for_port(broker_port)
        wait_for_port(exporter_port)
        counter = SampleCounter(broker_port)
        try:
            with (
                child([sys.executable, "-m", "edgewatch.cli", "agent"], workdir / "agent.log", env) as agent,
                child([executable("busybox"), "ash", str(script)], workdir / "router.log", shell_env) as shell,
            ):
                router = ShellAgent(shell)
                start = time.monotonic()
                scrapes, scrape_bytes = 0, 0
                warm: tuple[float, float, float, int, int, int] | None = None
                while (elapsed := time.monotonic() - start) < duration:
                    if warm is None and elapsed >= warmup:
                        warm = (ticks_cpu_seconds(agent.proc.pid), ticks_cpu_seconds(exporter.proc.pid),
                                router.cpu_seconds(), counter.count("bench-agent"), scrapes,
                                counter.count("bench-router"))
                    scrape_bytes = scrape(exporter_port)
                    scrapes += 1
                    time.sleep(max(0.0, start + scrapes * interval - time.monotonic()))
                samples, router_samples = counter.count("bench-agent"), counter.count("bench-router")
                if warm is None:
                    raise SystemExit("edgewatch bench agent: the run ended before the warm-up did")
                # Steady state from /proc at both ends (10 ms steps: a minute keeps the error under
                # 0.2 ms a sample); the whole run's CPU, to the microsecond, from wait4() at exit.
                steady_agent = ticks_cpu_seconds(agent.proc.pid) - warm[0]
                steady_exporter = ticks_cpu_seconds(exporter.proc.pid) - warm[1]
                steady_router = router.cpu_seconds() - warm[2]
                router_rss = router.resident_kib()
                router_total = router.cpu_seconds()
                agent_rss, exporter_rss = peak_rss_kib(agent.proc.pid), peak_rss_kib(exporter.proc.pid)
                agent_end, exporter_end = agent.stop(), exporter.stop()
        finally:
            counter.close()
    steady_samples = max(1, samples - warm[3])
    steady_scrapes = max(1, scrapes - warm[4])
    steady_router_samples = max(1, router_samples - warm[5])
    return {
        "router_samples": router_samples,
        "router_rss_kib": router_rss,
        "router_ms_per_sample": 1000 * steady_router / steady_router_samples,
        "router_ms_per_sample_total": 1000 * router_total / max(1, router_samples),
        "samples": samples,
        "scrapes": scrapes,
        "scrape_bytes": scrape_bytes,
        "agent_rss_kib": agent_rss,
        "exporter_rss_kib": exporter_rss,
        "agent_ms_per_sample": 1000 * steady_agent / steady_samples,
        "exporter_ms_per_scrape": 1000 * steady_exporter / steady_scrapes,
        "agent_ms_per_sample_total": 1000 * agent_end.cpu_s / max(1, samples),
        "exporter_ms_per_scrape_total": 1000 * exporter_end.cpu_s / max(1, scrapes),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgewatch bench agent", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run (default 60)")
    parser.add_argument("--interval", type=float, default=1.0, help="sample and scrape interval (default 1)")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds excluded from the steady-state CPU figures (default 10)")
    args = parser.parse_args(argv)
    if args.warmup >= args.duration:
        parser.error("--warmup must be shorter than --duration")
    with tempfile.TemporaryDirectory(prefix="ew-bench-agent-") as tmp:
        r = run(args.duration, args.interval, args.warmup, Path(tmp))
    rss_ratio = r["agent_rss_kib"] / r["exporter_rss_kib"]
    cpu_ratio = r["agent_ms_per_sample"] / max(r["exporter_ms_per_scrape"], 1e-9)
    print(f"edgewatch bench agent: {args.duration:g} s, interval {args.interval:g} s, "
          f"steady state after {args.warmup:g} s")
    print(f"{'':16}{'peak RSS':>12}{'CPU/sample':>14}{'incl. start-up':>16}{'samples':>9}")
    print(f"{'agent':16}{r['agent_rss_kib'] / 1024:>9.1f} MiB{r['agent_ms_per_sample']:>11.2f} ms"
          f"{r['agent_ms_per_sample_total']:>13.2f} ms{r['samples']:>9.0f}")
    print(f"{'node_exporter':16}{r['exporter_rss_kib'] / 1024:>9.1f} MiB{r['exporter_ms_per_scrape']:>11.2f} ms"
          f"{r['exporter_ms_per_scrape_total']:>13.2f} ms{r['scrapes']:>9.0f}")
    print(f"{'router agent (sh)':16}{r['router_rss_kib'] / 1024:>9.1f} MiB{r['router_ms_per_sample']:>11.2f} ms"
          f"{r['router_ms_per_sample_total']:>13.2f} ms{r['router_samples']:>9.0f}")
    print(f"ratio agent/node_exporter: peak RSS {rss_ratio:.2f} (goal <= {RSS_GOAL}), "
          f"CPU per sample {cpu_ratio:.2f}")
    print(f"ratio router agent/node_exporter: peak RSS {r['router_rss_kib'] / r['exporter_rss_kib']:.2f}, "
          f"CPU per sample {r['router_ms_per_sample'] / max(r['exporter_ms_per_scrape'], 1e-9):.2f}")
    print(f"goals: RSS {'met' if rss_ratio <= RSS_GOAL else 'MISSED'}, "
          f"CPU {'met' if r['agent_ms_per_sample'] <= CPU_GOAL_MS else 'MISSED'} "
          f"({r['agent_ms_per_sample']:.2f} ms <= {CPU_GOAL_MS} ms per sample)")
    return 0
