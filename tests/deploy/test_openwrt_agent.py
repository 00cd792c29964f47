"""The router agent (deploy/openwrt/edgewatch-agent.sh) under BusyBox `sh` and `ash` against a real
mosquitto: the sample contract, seq across restarts, a broker outage with nothing lost, the bounded
spool's drop report, and the last will.

The script runs with a PATH holding only BusyBox applets and mosquitto_pub, as on OpenWrt, so every
tool it calls is BusyBox's."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.decode import Decoder, Status, Telemetry
from tests.agent.support import Listener, wait_until
from tests.support import services

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "openwrt" / "edgewatch-agent.sh"
BUSYBOX = shutil.which("busybox")
TELEMETRY = "edgewatch/v1/rt-test/telemetry"
STATUS = "edgewatch/v1/rt-test/status"

pytestmark = [
    pytest.mark.mosquitto,
    pytest.mark.skipif(BUSYBOX is None or shutil.which("mosquitto_pub") is None,
                       reason="busybox and mosquitto-clients are needed (scripts/test installs them)"),
]


@pytest.fixture(scope="module")
def busybox_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A bin directory of BusyBox applets and mosquitto_pub only."""
    assert BUSYBOX is not None
    bin_dir = tmp_path_factory.mktemp("busybox-bin")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in [*applets, "busybox"]:
        (bin_dir / applet).symlink_to(BUSYBOX)
    (bin_dir / "mosquitto_pub").symlink_to(shutil.which("mosquitto_pub") or "mosquitto_pub")
    return str(bin_dir)


class ShellAgent:
    def __init__(self, shell: str, path: str, broker_url: str, data: Path, log: Path, **env: str) -> None:
        self.log = log
        self._log = log.open("ab")
        environ = {"PATH": path, "EDGEWATCH_DEVICE_ID": "rt-test", "EDGEWATCH_AGENT_INTERVAL": "0.3",
                   "EDGEWATCH_DATA_DIR": str(data), "EDGEWATCH_MQTT_URL": broker_url,
                   "EDGEWATCH_AGENT_PROBE_COUNT": "1", "EDGEWATCH_AGENT_PING_TARGET": "127.0.0.1", **env}
        # A session of its own: "the router dies" is then a SIGKILL to every process of the agent.
        self.process = subprocess.Popen([BUSYBOX or "busybox", shell, str(SCRIPT)], env=environ, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def kill_everything(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # its mosquitto_pub children
        self._log.close()


@pytest.fixture
def start(tmp_path: Path, busybox_path: str) -> Iterator[Any]:
    started: list[ShellAgent] = []

    def run(shell: str, broker: services.Mosquitto, data: Path, **env: str) -> ShellAgent:
        agent = ShellAgent(shell, busybox_path, broker.url, data, tmp_path / f"agent-{len(started)}.log", **env)
        started.append(agent)
        return agent

    yield run
    for agent in started:
        agent.close()


@pytest.fixture
def listener(broker: services.Mosquitto) -> Iterator[Listener]:
    client = Listener(broker.port, client_id="openwrt-listener")
    yield client
    client.close()


def queued(data: Path) -> int:
    queue = data / "spool" / "queue"
    return len([p for p in queue.iterdir() if not p.name.startswith(".")]) if queue.exists() else 0


def next_seq(data: Path) -> int:
    seq = data / "spool" / "seq"
    return int(seq.read_text()) + 1 if seq.exists() else 1


SHELLS = ["sh", "ash"]


@pytest.mark.parametrize("shell", SHELLS)
def test_samples_follow_the_contract_with_online_and_stopped_status(
    shell: str, broker: services.Mosquitto, listener: Listener, start: Any, tmp_path: Path
) -> None:
    agent = start(shell, broker, tmp_path / "data")
    online = listener.next(lambda m: m.topic == STATUS, timeout=15)
    samples = listener.samples(3)
    assert agent.terminate() == 0
    stopped = listener.next(lambda m: m.topic == STATUS, timeout=10)
    decoder = Decoder()
    for sample in samples:
        decoded = decoder.decode(TELEMETRY, json.dumps(sample).encode(), 0.0)
        assert isinstance(decoded, Telemetry), decoded
        assert decoded.samples[0].device_id == "rt-test"
    metrics = samples[-1]["metrics"]
    assert 0 <= metrics["cpu_percent"] <= 100 and 0 < metrics["mem_percent"] < 100
    assert metrics["latency_ms"] >= 0 and metrics["packet_loss_percent"] == 0.0
    assert metrics["uptime_s"] > 0 and metrics["load1_per_core"] >= 0
    assert [s["seq"] for s in samples] == [1, 2, 3]
    assert samples[0]["instance"] == online.payload["instance"] and samples[0]["device_class"] == "router"
    assert isinstance(decoder.decode(STATUS, json.dumps(online.payload).encode(), 0.0), Status)
    assert online.payload["state"] == "online" and online.retain is False
    assert (stopped.payload["state"], stopped.payload["reason"]) == ("offline", "stopped")


@pytest.mark.parametrize("shell", SHELLS)
def test_broker_outage_loses_nothing_and_seq_survives_a_restart(
    shell: str, broker: services.Mosquitto, listener: Listener, start: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    agent = start(shell, broker, data)
    received = [s["seq"] for s in listener.samples(3)]
    broker.stop()
    wait_until(lambda: queued(data) >= 6, timeout=30, what="samples spooled during the outage")
    last_spooled = next_seq(data) - 1
    broker.start()
    while not received or max(received) < last_spooled + 3:
        received.append(listener.next(lambda m: m.topic == TELEMETRY, timeout=30).payload["seq"])
    assert agent.terminate() == 0
    received += [m.payload["seq"] for m in listener.drain() if m.topic == TELEMETRY]
    instance = (data / "spool" / "instance").read_text()
    # Every seq handed out arrived, or is still in the spool; in order, each once (a batch cut off by
    # the outage may be sent again: the collector drops such a duplicate by its seq).
    handed_out = next_seq(data) - 1
    assert set(received) | set(range(handed_out - queued(data) + 1, handed_out + 1)) == \
        set(range(1, handed_out + 1))
    assert received == sorted(received)
    assert handed_out >= last_spooled + 3

    again = start(shell, broker, data)
    first = listener.next(lambda m: m.topic == TELEMETRY and m.payload["seq"] > handed_out - queued(data), 15)
    assert first.payload["instance"] == instance
    wait_until(lambda: next_seq(data) > handed_out + 1, what="a new sample after the restart")
    assert again.terminate() == 0
    after = [m.payload["seq"] for m in listener.drain() if m.topic == TELEMETRY] + [first.payload["seq"]]
    assert min(after) <= handed_out + 1 and max(after) > handed_out, "seq went on from where it was"


@pytest.mark.parametrize("shell", SHELLS)
def test_a_full_spool_drops_the_oldest_and_reports_them(
    shell: str, broker: services.Mosquitto, listener: Listener, start: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    broker.stop()
    agent = start(shell, broker, data, EDGEWATCH_AGENT_SPOOL_MAX_SAMPLES="3")
    wait_until(lambda: next_seq(data) > 8, timeout=30, what="samples taken while the broker is away")
    assert queued(data) <= 3
    broker.start()
    samples: list[dict[str, Any]] = []
    while not samples or samples[-1]["seq"] < 10:
        samples.append(listener.next(lambda m: m.topic == TELEMETRY, timeout=30).payload)
    assert agent.terminate() == 0
    samples += [m.payload for m in listener.drain() if m.topic == TELEMETRY]
    seqs = {s["seq"] for s in samples}
    dropped = sum(s.get("spool_dropped", 0) for s in samples)
    last = max(seqs)
    # Each seq up to the last one received either arrived or was counted as dropped, exactly.
    assert len(seqs) + dropped == last, (sorted(seqs), dropped)
    assert dropped > 0


@pytest.mark.parametrize("shell", SHELLS)
def test_the_last_will_says_offline_when_the_router_dies(
    shell: str, broker: services.Mosquitto, listener: Listener, start: Any, tmp_path: Path
) -> None:
    agent = start(shell, broker, tmp_path / "data", EDGEWATCH_MQTT_KEEPALIVE="5")
    assert listener.next(lambda m: m.topic == STATUS, timeout=15).payload["state"] == "online"
    listener.samples(1)
    agent.kill_everything()
    will = listener.next(lambda m: m.topic == STATUS, timeout=15)
    assert (will.payload["state"], will.payload["reason"]) == ("offline", "connection lost")


def test_a_bad_setting_is_named(busybox_path: str, tmp_path: Path) -> None:
    env = {"PATH": busybox_path, "EDGEWATCH_DEVICE_ID": "rt test", "EDGEWATCH_DATA_DIR": str(tmp_path)}
    done = subprocess.run([BUSYBOX or "busybox", "sh", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "EDGEWATCH_DEVICE_ID" in done.stderr
    env = {"PATH": busybox_path, "EDGEWATCH_MQTT_URL": "http://x", "EDGEWATCH_DATA_DIR": str(tmp_path)}
    done = subprocess.run([BUSYBOX or "busybox", "sh", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "EDGEWATCH_MQTT_URL" in done.stderr


def test_once_prints_a_sample_without_a_broker(busybox_path: str, tmp_path: Path) -> None:
    env = {"PATH": busybox_path, "EDGEWATCH_DEVICE_ID": "rt-test", "EDGEWATCH_DATA_DIR": str(tmp_path),
           "EDGEWATCH_AGENT_PING_TARGET": ""}
    done = subprocess.run([BUSYBOX or "busybox", "ash", str(SCRIPT), "--once"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    sample = json.loads(done.stdout)
    assert sample["device_id"] == "rt-test" and 0 <= sample["metrics"]["cpu_percent"] <= 100


def test_the_example_config_is_read(busybox_path: str, tmp_path: Path) -> None:
    text = (ROOT / "deploy" / "openwrt" / "agent.conf").read_text().replace("/etc/edgewatch/", f"{tmp_path}/")
    for name in ("mqtt-password", "ca.pem"):
        (tmp_path / name).write_text("x\n")
    config = tmp_path / "agent.conf"
    config.write_text(text)
    env = {"PATH": busybox_path, "EDGEWATCH_AGENT_PING_TARGET": ""}
    done = subprocess.run([BUSYBOX or "busybox", "ash", str(SCRIPT), "-c", str(config), "--once"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["device_id"] == "rt-0001"
    credentials = (tmp_path / "state" / "spool" / "mqtt" / "mosquitto_pub")
    assert credentials.read_text().splitlines() == ["-u rt-0001", "-P x", f"--cafile {tmp_path}/ca.pem"]
    assert credentials.stat().st_mode & 0o077 == 0, "the password file is private"
