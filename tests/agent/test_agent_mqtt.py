"""`edgewatch agent` as a real process against a real mosquitto on 127.0.0.1."""

from __future__ import annotations

import json
import os
import sqlite3
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rules.sample import parse_sample
from tests.agent.support import AgentProcess, Listener, agent_env, wait_until
from tests.agent.tls import make_tls_files
from tests.support import services

pytestmark = pytest.mark.mosquitto

TELEMETRY = "edgewatch/v1/gw-test/telemetry"
STATUS = "edgewatch/v1/gw-test/status"


@pytest.fixture
def listener(broker: services.Mosquitto) -> Iterator[Listener]:
    client = Listener(broker.port)
    yield client
    client.close()


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Any]:
    started: list[AgentProcess] = []

    def start(env: dict[str, str], args: tuple[str, ...] = ()) -> AgentProcess:
        agent = AgentProcess(env, tmp_path / f"agent-{len(started)}.log", args)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.close()


def spool_state(data_dir: Path) -> tuple[int, int]:
    """(samples waiting, next seq) read from the agent's spool file."""
    path = data_dir / "agent-spool.sqlite3"
    if not path.exists():
        return 0, 1
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        waiting = db.execute("SELECT COUNT(*) FROM spool").fetchone()[0]
        row = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
    except sqlite3.OperationalError:  # created but no tables yet
        return 0, 1
    finally:
        db.close()
    return waiting, int(row[0]) if row else 1


def telemetry_seqs(listener: Listener, up_to: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every sample received until one with seq >= `up_to` arrives, then whatever follows at once."""
    received = []
    while not received or received[-1]["seq"] < up_to:
        received.append(listener.next(lambda m: m.topic == TELEMETRY, timeout=timeout).payload)
    return received


def test_samples_follow_the_contract_and_status_is_online(
    broker: services.Mosquitto, listener: Listener, start_agent: Any, tmp_path: Path
) -> None:
    agent = start_agent(agent_env(broker.url, tmp_path / "data", device_class="gateway"))
    online = listener.next(lambda m: m.topic == STATUS)
    assert online.payload["state"] == "online"
    assert online.payload["version"] and online.payload["started_at"] > 1.7e9
    assert online.payload["interval_s"] == 0.2  # the collector's offline detection uses it
    samples = listener.samples(3)
    for expected_seq, payload in enumerate(samples, start=1):
        sample = parse_sample(payload)
        assert sample.device_id == "gw-test" and sample.seq == expected_seq
        assert sample.instance == online.payload["instance"] and sample.device_class == "gateway"
        assert {"cpu_percent", "mem_percent", "latency_ms", "packet_loss_percent"} <= set(sample.metrics)
        # One TCP connection a sample by default: every device's probes land on the fleet's broker.
        assert payload["targets"][f"tcp://127.0.0.1:{broker.port}"] == {
            "sent": 1, "received": 1, "latency_ms": sample.metrics["latency_ms"], "packet_loss_percent": 0.0}
    assert agent.terminate() == 0
    offline = listener.next(lambda m: m.topic == STATUS)
    assert offline.payload["state"] == "offline" and offline.payload["reason"] == "stopped"
    # Retained: a newcomer learns the device's state at once.
    newcomer = Listener(broker.port, client_id="newcomer")
    try:
        retained = newcomer.next(lambda m: m.topic == STATUS)
        assert retained.retain and retained.payload["state"] == "offline"
    finally:
        newcomer.close()


def test_broker_outage_every_sample_arrives_exactly_once_in_order(
    broker: services.Mosquitto, listener: Listener, start_agent: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    agent = start_agent(agent_env(broker.url, data))
    before = listener.samples(3)
    broker.stop()
    wait_until(lambda: spool_state(data)[0] >= 8, what="samples spooled during the outage")
    _, next_seq = spool_state(data)
    broker.start()
    received = before + telemetry_seqs(listener, up_to=next_seq + 5)
    assert agent.terminate() == 0
    received += [m.payload for m in listener.drain() if m.topic == TELEMETRY]
    seqs = [s["seq"] for s in received]
    assert seqs == list(range(1, len(seqs) + 1)), "every sample exactly once, in seq order"
    assert len(seqs) >= next_seq + 5
    waiting, next_after = spool_state(data)
    assert len(seqs) + waiting == next_after - 1, "whatever was not delivered is still spooled"


def test_agent_killed_during_outage_delivers_the_spool_after_restart(
    broker: services.Mosquitto, listener: Listener, start_agent: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = agent_env(broker.url, data)
    first = start_agent(env)
    before = listener.samples(2)
    broker.stop()
    wait_until(lambda: spool_state(data)[0] >= 6, what="samples spooled during the outage")
    first.kill()  # SIGKILL: no chance to clean up
    waiting, next_seq = spool_state(data)
    broker.start()
    second = start_agent(env)
    received = before + telemetry_seqs(listener, up_to=next_seq + 2)
    assert second.terminate() == 0
    seqs = [s["seq"] for s in received]
    # Samples 1..next_seq-1 were stored by the first process; seq keeps counting in the second.
    assert seqs[: next_seq - 1] == list(range(1, next_seq))
    assert seqs == sorted(set(seqs)) and seqs[-1] >= next_seq + 2
    assert len({s["instance"] for s in received}) == 1, "same installation, same instance"
    assert waiting >= 6


def test_last_will_marks_the_device_offline_on_sigkill(
    broker: services.Mosquitto, listener: Listener, start_agent: Any, tmp_path: Path
) -> None:
    agent = start_agent(agent_env(broker.url, tmp_path / "data"))
    assert listener.next(lambda m: m.topic == STATUS).payload["state"] == "online"
    listener.samples(1)
    agent.kill()
    will = listener.next(lambda m: m.topic == STATUS, timeout=10)
    assert will.payload["state"] == "offline" and will.payload["reason"] == "connection lost"
    newcomer = Listener(broker.port, client_id="newcomer")
    try:
        retained = newcomer.next(lambda m: m.topic == STATUS)
        assert retained.retain and retained.payload["state"] == "offline"
    finally:
        newcomer.close()


def test_starts_with_the_broker_down_and_a_full_spool_drops_the_oldest_and_reports_it(
    broker: services.Mosquitto, listener: Listener, start_agent: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    broker.stop()
    agent = start_agent(agent_env(broker.url, data, agent_spool_max_samples="5"))
    wait_until(lambda: spool_state(data)[1] >= 14, what="more samples than the spool holds")
    broker.start()
    first = listener.next(lambda m: m.topic == TELEMETRY, timeout=30).payload
    received = [first, *telemetry_seqs(listener, up_to=first["seq"] + 12)]
    assert agent.terminate() == 0
    seqs = [s["seq"] for s in received]
    assert first["seq"] > 1, "the oldest samples were dropped"
    assert seqs == list(range(first["seq"], first["seq"] + len(seqs))), "and nothing else"
    reported = sum(s.get("spool_dropped", 0) for s in received)
    assert reported == first["seq"] - 1, "every dropped sample is reported"


def test_stops_cleanly_on_sigterm_while_the_broker_is_down(
    broker: services.Mosquitto, start_agent: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    broker.stop()
    agent = start_agent(agent_env(broker.url, data))
    wait_until(lambda: spool_state(data)[0] >= 2, what="samples spooled")
    assert agent.terminate(timeout=10) == 0
    assert "stopped;" in agent.output()


def test_tls_with_a_client_certificate(start_agent: Any, tmp_path: Path) -> None:
    tls_dir = Path(tempfile.mkdtemp(prefix="ew-tls-"))
    os.chmod(tls_dir, 0o755)
    files = make_tls_files(tls_dir)
    config = (f"cafile {files.ca}\ncertfile {files.server_cert}\nkeyfile {files.server_key}\n"
              "require_certificate true\n")
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(str(files.client_cert), str(files.client_key))
    with services.mosquitto(config) as tls_broker:
        listener = Listener(tls_broker.port, tls=context)
        try:
            env = agent_env(f"mqtts://127.0.0.1:{tls_broker.port}", tmp_path / "data", mqtt_ca_file=str(files.ca),
                            mqtt_cert_file=str(files.client_cert), mqtt_key_file=str(files.client_key))
            agent = start_agent(env)
            sample = listener.samples(1)[0]
            assert parse_sample(sample).device_id == "gw-test"
            assert agent.terminate() == 0
            # Without the client certificate the broker refuses the agent, which says so and retries.
            refused = start_agent(agent_env(f"mqtts://127.0.0.1:{tls_broker.port}", tmp_path / "data2",
                                            mqtt_ca_file=str(files.ca)))
            wait_until(lambda: "next attempt" in refused.output() or "reconnecting" in refused.output(),
                       what="the refused connection to be reported")
            assert refused.terminate() == 0
        finally:
            listener.close()


def test_once_stdout_needs_no_broker(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWATCH_")}
    env.update(agent_env("mqtt://127.0.0.1:9", data))
    done = subprocess.run([sys.executable, "-m", "edgewatch.cli", "agent", "--once", "--stdout"],
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    sample = parse_sample(json.loads(done.stdout))
    assert sample.device_id == "gw-test" and "cpu_percent" in sample.metrics
    assert sample.metrics["packet_loss_percent"] == 100.0 and "latency_ms" not in sample.metrics
    assert not data.exists(), "troubleshooting leaves no files behind"


def test_username_and_password(start_agent: Any, tmp_path: Path) -> None:
    auth_dir = Path(tempfile.mkdtemp(prefix="ew-auth-"))
    os.chmod(auth_dir, 0o755)
    passwords = auth_dir / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "gw-test", "right"], check=True, timeout=30)
    passwords.chmod(0o644)
    with services.mosquitto(f"allow_anonymous false\npassword_file {passwords}\n") as auth_broker:
        listener = Listener(auth_broker.port, auth=("gw-test", "right"))
        try:
            secret = tmp_path / "pw"
            secret.write_text("right\n")
            agent = start_agent(agent_env(auth_broker.url, tmp_path / "data", mqtt_username="gw-test",
                                          mqtt_password_file=str(secret)))
            assert parse_sample(listener.samples(1)[0]).device_id == "gw-test"
            assert agent.terminate() == 0
            wrong = start_agent(agent_env(auth_broker.url, tmp_path / "data2", mqtt_username="gw-test",
                                          mqtt_password="wrong"))
            wait_until(lambda: "refused the connection" in wrong.output(), what="the refusal to be logged")
            assert wrong.terminate() == 0
        finally:
            listener.close()


@pytest.mark.slow
def test_soak_repeated_outages_and_crashes(
    broker: services.Mosquitto, listener: Listener, start_agent: Any, tmp_path: Path
) -> None:
    """Broker restarts and agent crashes in turn; not one sample lost or sent twice. Three cycles by
    default, thirty with EDGEWATCH_SOAK=1."""
    cycles = 30 if os.environ.get("EDGEWATCH_SOAK") == "1" else 3
    data = tmp_path / "data"
    env = agent_env(broker.url, data, agent_interval="0.1")
    agent = start_agent(env)
    received = listener.samples(2)
    for cycle in range(cycles):
        broker.stop()
        wait_until(lambda: spool_state(data)[0] >= 5, what="samples spooled during the outage")
        if cycle % 2:
            agent.kill()
            agent = start_agent(env)
        broker.start()
        _, next_seq = spool_state(data)
        received += telemetry_seqs(listener, up_to=next_seq + 2)
    assert agent.terminate() == 0
    received += [m.payload for m in listener.drain() if m.topic == TELEMETRY]
    seqs = [s["seq"] for s in received]
    assert seqs == list(range(1, len(seqs) + 1))
    waiting, next_after = spool_state(data)
    assert len(seqs) + waiting == next_after - 1
