"""Agentless devices through the agent: `[[agent.proxy]]` parsing, SNMP against a real snmpd (v2c,
v3 authPriv and authNoPriv), ICMP to 127.0.0.1 and to an address that does not answer, and the agent
publishing neighbours under their own ids, through a broker outage, with a silent one going offline."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.latency import LatencyProber
from agent.proxy.config import OidMap, ProxyTarget, parse_proxy
from agent.proxy.poller import icmp_metrics
from agent.proxy.state import Availability
from agent.settings import Target
from collector.decode import Decoder, Rejected, Status, Telemetry
from common.config import ConfigError
from tests.agent import snmpd as snmpd_support
from tests.agent.snmpd import AUTH_AUTH, AUTH_USER, COMMUNITY, PRIV_AUTH, PRIV_KEY, PRIV_USER
from tests.agent.support import AgentProcess, Listener, agent_env, wait_until
from tests.agent.test_agent_mqtt import spool_state
from tests.support import services

ROOT = Path(__file__).resolve().parents[2]
needs_snmpd = pytest.mark.skipif(not snmpd_support.available(), reason="snmpd not installed (scripts/test installs it)")


def parse(*tables: dict[str, Any], interval: float = 10.0) -> tuple[ProxyTarget, ...]:
    return parse_proxy("agent.toml", list(tables), interval=interval, gateway_id="gw-1",
                       device_classes=("gateway", "router"))


# --- configuration ----------------------------------------------------------------------------

def test_tables_parse_with_defaults_and_the_agent_interval() -> None:
    v2c, v3, icmp = parse(
        {"device_id": "sw-1", "kind": "snmp", "host": "192.0.2.10", "community": "c"},
        {"device_id": "sw-2", "kind": "snmp", "host": "sw-2.example", "version": "3", "user": "u",
         "auth_password": "12345678", "priv_protocol": "AES", "priv_password": "abcdefgh", "interval": 30,
         "device_class": "router", "oids": {"temperature_c": {"oid": ".1.3.6.1.4.1.9.1.0", "scale": 0.1},
                                            "pool_percent": {"used": "1.3.6.1.1.1", "free": "1.3.6.1.1.2"}}},
        {"device_id": "cam-1", "kind": "icmp", "host": "192.0.2.20", "count": 5},
    )
    assert (v2c.version, v2c.port, v2c.interval, v2c.security, v2c.mib, v2c.offline_after) == \
        ("2c", 161, 10.0, "v2c", "auto", 2)
    assert (v3.security, v3.interval, v3.device_class, v3.auth_protocol) == ("authPriv", 30.0, "router", "SHA")
    assert v3.oids == (OidMap("temperature_c", "1.3.6.1.4.1.9.1.0", 0.1), OidMap("pool_percent", used="1.3.6.1.1.1",
                                                                                  free="1.3.6.1.1.2"))
    assert (icmp.kind, icmp.probes) == ("icmp", 5)
    no_priv = parse({"device_id": "x", "kind": "snmp", "host": "h", "version": 3, "user": "u",
                     "auth_password": "12345678"})[0]
    assert no_priv.security == "authNoPriv"


@pytest.mark.parametrize(("table", "key", "reason"), [
    ({"device_id": "a", "host": "h"}, "agent.proxy[1].kind", "required"),
    ({"device_id": "a", "kind": "icmp", "host": "h", "community": "c"}, "agent.proxy[1].community", "unknown key"),
    ({"device_id": "a b", "kind": "icmp", "host": "h"}, "agent.proxy[1].device_id", "A-Za-z0-9"),
    ({"device_id": "gw-1", "kind": "icmp", "host": "h"}, "agent.proxy[1].device_id", "already used"),
    ({"device_id": "a", "kind": "icmp"}, "agent.proxy[1].host", "required"),
    ({"device_id": "a", "kind": "snmp", "host": "h"}, "agent.proxy[1].community", "required for SNMP v2c"),
    ({"device_id": "a", "kind": "snmp", "host": "h", "version": "1", "community": "c"}, "agent.proxy[1].version",
     "must be"),
    ({"device_id": "a", "kind": "snmp", "host": "h", "community": "c", "user": "u"}, "agent.proxy[1].user",
     "SNMPv3 setting"),
    ({"device_id": "a", "kind": "snmp", "host": "h", "version": "3"}, "agent.proxy[1].user", "required"),
    ({"device_id": "a", "kind": "snmp", "host": "h", "version": "3", "user": "u", "auth_password": "short"},
     "agent.proxy[1].auth_password", "at least 8"),
    ({"device_id": "a", "kind": "snmp", "host": "h", "version": "3", "user": "u", "auth_password": "12345678",
      "priv_protocol": "AES"}, "agent.proxy[1].priv_password", "both"),
    ({"device_id": "a", "kind": "snmp", "host": "h", "version": "3", "user": "u", "auth_password": "12345678",
      "auth_protocol": "SHA1"}, "agent.proxy[1].auth_protocol", "must be one of"),
    ({"device_id": "a", "kind": "snmp", "host": "h", "community": "c", "oids": {"cpu_percent": "cpu"}},
     "agent.proxy[1].oids.cpu_percent", "numeric OID"),
    ({"device_id": "a", "kind": "snmp", "host": "h", "community": "c", "oids": {"Bad": "1.3.6"}},
     "agent.proxy[1].oids.Bad", "lower_snake_case"),
    ({"device_id": "a", "kind": "snmp", "host": "h", "community": "c", "oids": {"x": {"used": "1.3.6"}}},
     "agent.proxy[1].oids.x", "either oid"),
    ({"device_id": "a", "kind": "snmp", "host": "h", "community": "c", "mib": "none"}, "agent.proxy[1].mib", "empty"),
    ({"device_id": "a", "kind": "icmp", "host": "h", "interval": 0}, "agent.proxy[1].interval", "greater than 0"),
    ({"device_id": "a", "kind": "icmp", "host": "h", "offline_after": 0}, "agent.proxy[1].offline_after",
     "at least 1"),
])
def test_a_mistake_names_the_table_and_key(table: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(table)
    assert caught.value.key == key and reason in caught.value.reason, str(caught.value)


def test_the_agent_loader_reads_proxy_tables_from_the_file(tmp_path: Path) -> None:
    from agent.settings import load_settings

    config = tmp_path / "agent.toml"
    config.write_text('[agent]\ndevice_id = "gw-1"\ninterval = 5\n'
                      '[[agent.proxy]]\ndevice_id = "cam-1"\nkind = "icmp"\nhost = "127.0.0.1"\n')
    settings = load_settings(config, {})
    assert [(t.device_id, t.interval) for t in settings.proxy] == [("cam-1", 5.0)]
    config.write_text('[agent]\nproxy = "cam-1"\n')
    with pytest.raises(ConfigError, match=r"agent\.proxy: expected an array of tables"):
        load_settings(config, {})


def test_availability_goes_offline_after_the_configured_misses_and_back_once() -> None:
    state = Availability(offline_after=2)
    assert [state.update(a) for a in (False, False, False, True, True, False, True, False, False)] == \
        [None, "offline", None, "online", None, None, None, None, "offline"]


# --- SNMP against net-snmp's snmpd ---------------------------------------------------------------

@pytest.fixture(scope="module")
def snmp_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not snmpd_support.available():
        pytest.skip("snmpd not installed (scripts/test installs it)")
    with snmpd_support.snmpd(tmp_path_factory.mktemp("snmpd")) as port:
        # net-snmp fills in its CPU counters a few seconds after it starts (then every 5 s).
        deadline = time.monotonic() + 30
        while not ticking(read(snmp_target(port, oids={"idle_ticks": "1.3.6.1.4.1.2021.11.53.0"}))[0]):
            assert time.monotonic() < deadline, "snmpd never reported its CPU counters"
            time.sleep(0.5)
        yield port


def ticking(metrics: dict[str, float] | str) -> bool:
    return isinstance(metrics, dict) and metrics.get("idle_ticks", 0.0) > 0


def snmp_target(port: int, **keys: Any) -> ProxyTarget:
    table = {"device_id": "sw-1", "kind": "snmp", "host": "127.0.0.1", "port": port, "timeout": 1.0, **keys}
    if "version" not in keys:
        table.setdefault("community", COMMUNITY)
    return parse(table)[0]


def read(*targets: ProxyTarget, rounds: int = 1) -> list[dict[str, float] | str]:
    """Each target read concurrently on one engine, as the poller does, `rounds` times 5.5 s apart
    (CPU usage is the counters' growth between two polls; net-snmp refreshes them every 5 s); the
    last round's results, a NoAnswer as its message."""
    from agent.proxy.snmp import NoAnswer, SnmpReader

    async def main() -> list[dict[str, float] | str]:
        reader = SnmpReader()

        async def one(target: ProxyTarget) -> dict[str, float] | str:
            try:
                return await reader.read(target)
            except NoAnswer as exc:
                return f"no answer: {exc}"

        try:
            for round_ in range(rounds):
                if round_:
                    await asyncio.sleep(5.5)
                results = list(await asyncio.gather(*(one(t) for t in targets)))
            return results
        finally:
            reader.close()

    return asyncio.run(main())


def meminfo_used_percent() -> float:
    fields = {line.split(":")[0]: int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()}
    return 100.0 * (fields["MemTotal"] - fields["MemAvailable"]) / fields["MemTotal"]


def assert_host_metrics(metrics: dict[str, float] | str) -> None:
    assert isinstance(metrics, dict), metrics
    assert 0.0 <= metrics["cpu_percent"] <= 100.0
    assert 0.0 < metrics["mem_percent"] < 100.0
    assert metrics["uptime_s"] > 0 and metrics["snmp_response_ms"] >= 0


@needs_snmpd
def test_v2c_and_v3_auth_priv_and_auth_no_priv_read_cpu_memory_and_uptime(snmp_port: int) -> None:
    v2c = snmp_target(snmp_port)
    priv = snmp_target(snmp_port, device_id="sw-2", version="3", user=PRIV_USER, auth_protocol="SHA",
                       auth_password=PRIV_AUTH, priv_protocol="AES", priv_password=PRIV_KEY)
    auth = snmp_target(snmp_port, device_id="sw-3", version="3", user=AUTH_USER, auth_password=AUTH_AUTH)
    assert (priv.security, auth.security) == ("authPriv", "authNoPriv")
    results = read(v2c, priv, auth, rounds=2)
    for metrics in results:
        assert_host_metrics(metrics)
    # snmpd reports this very machine: memory in use as the kernel counts it, within a few points
    # (memAvailReal is the free memory net-snmp reports, not the kernel's estimate of what is available).
    assert isinstance(results[0], dict)
    assert abs(results[0]["mem_percent"] - meminfo_used_percent()) < 40


@needs_snmpd
def test_each_mib_on_its_own(snmp_port: int) -> None:
    host_resources, ucd = read(snmp_target(snmp_port, mib="host-resources"), snmp_target(snmp_port, mib="ucd"))
    # Memory from the hrStorageRam row of hrStorageTable, and from memTotalReal and memAvailReal.
    assert isinstance(host_resources, dict) and 0.0 < host_resources["mem_percent"] <= 100.0
    assert isinstance(ucd, dict) and 0.0 < ucd["mem_percent"] < 100.0
    # hrProcessorLoad is a one-minute average that net-snmp leaves out for its first minute, and a first
    # UCD poll has no counter growth yet: CPU may be missing (never invented), else a percentage.
    for metrics in (host_resources, ucd):
        assert 0.0 <= metrics.get("cpu_percent", 0.0) <= 100.0


@needs_snmpd
def test_vendor_oids_are_mapped_and_replace_the_standard_reading(snmp_port: int) -> None:
    mem_total, mem_avail = "1.3.6.1.4.1.2021.4.5.0", "1.3.6.1.4.1.2021.4.6.0"
    target = snmp_target(snmp_port, oids={
        "mem_total_mib": {"oid": mem_total, "scale": 1 / 1024},
        "ram_free_percent": {"used": mem_avail, "total": mem_total},
        "cpu_percent": {"oid": mem_total, "scale": 0, "offset": 42},
        "missing_metric": "1.3.6.1.4.1.99999.1.0",
    })
    (metrics,) = read(target)
    assert isinstance(metrics, dict), metrics
    kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal:"))
    assert abs(metrics["mem_total_mib"] - kib / 1024) < 1
    # One GET carries the standard and the mapped OIDs: the two shares add up to 100.
    assert metrics["ram_free_percent"] + metrics["mem_percent"] == pytest.approx(100.0, abs=0.02)
    assert metrics["cpu_percent"] == 42.0
    assert "missing_metric" not in metrics  # an OID the device lacks is left out, never invented


@needs_snmpd
def test_wrong_credentials_and_a_closed_port_are_no_answer(snmp_port: int) -> None:
    wrong_community = snmp_target(snmp_port, community="not-it", timeout=0.3, retries=0)
    wrong_password = snmp_target(snmp_port, device_id="sw-2", version="3", user=PRIV_USER,
                                 auth_password="not-the-password", priv_protocol="AES", priv_password=PRIV_KEY)
    closed = snmp_target(snmpd_support.free_udp_port(), device_id="sw-3", timeout=0.3, retries=0)
    results = read(wrong_community, wrong_password, closed)
    assert all(isinstance(r, str) and r.startswith("no answer") for r in results), results
    assert "timeout" in str(results[0]).lower()


@needs_snmpd
def test_one_user_name_with_two_passwords_keeps_them_apart(snmp_port: int) -> None:
    # An SNMP engine holds one set of keys per user name: each credential set gets an engine.
    keys = {"version": "3", "user": PRIV_USER, "priv_protocol": "AES", "priv_password": PRIV_KEY,
            "timeout": 0.5, "retries": 0}
    wrong = snmp_target(snmp_port, device_id="sw-wrong", auth_password="not-the-password", **keys)
    right = snmp_target(snmp_port, device_id="sw-right", auth_password=PRIV_AUTH, **keys)
    for order in ((wrong, right), (right, wrong)):
        results = dict(zip([t.device_id for t in order], read(*order), strict=True))
        assert isinstance(results["sw-right"], dict), results
        assert str(results["sw-wrong"]).startswith("no answer"), results


# --- ICMP -----------------------------------------------------------------------------------------

def test_icmp_to_localhost_measures_latency_without_loss() -> None:
    prober = LatencyProber((Target("icmp", "127.0.0.1"),), 3, 1.0)
    try:
        metrics = icmp_metrics(prober)
    finally:
        prober.close()
    if metrics is None:
        pytest.skip("ICMP is not permitted here (no ping_group_range, no raw socket, no ping)")
    assert metrics["packet_loss_percent"] == 0.0 and 0.0 <= metrics["latency_ms"] < 1000.0


NO_ANSWER = """
import json, time
from agent.latency import LatencyProber
from agent.proxy.poller import icmp_metrics
from agent.settings import Target
prober = LatencyProber((Target("icmp", "198.51.100.2"),), 2, 0.3)
started = time.monotonic()
print(json.dumps({"metrics": icmp_metrics(prober), "sent": prober.measure()[0].sent,
                  "took": time.monotonic() - started}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None,
                    reason="needs root, unshare and ip for a private network namespace")
def test_icmp_to_an_address_that_does_not_answer_is_no_answer() -> None:
    # A private network namespace: a TEST-NET-2 address behind a veth pair whose far end has no
    # address, so the echo requests go out and nothing answers; no packet leaves this machine.
    script = ("ip link set lo up && ip link add ew0 type veth peer name ew1 && "
              "ip addr add 198.51.100.1/24 dev ew0 && ip link set ew0 up && ip link set ew1 up && "
              f'exec {sys.executable} -c "$0"')
    done = subprocess.run(["unshare", "--net", "sh", "-c", script, NO_ANSWER], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip(f"no network namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["metrics"] is None, "no echo reply: no latency and no sample"
    assert result["sent"] == 2, "the requests were sent and lost, not refused"
    assert result["took"] >= 0.5


# --- the agent end to end -------------------------------------------------------------------------

def last_metrics(received: list[tuple[str, dict[str, Any]]], device: str) -> dict[str, float]:
    samples = [p for t, p in received if t == f"edgewatch/v1/{device}/telemetry"]
    return samples[-1]["metrics"] if samples else {}


def proxy_config(path: Path, snmp_port: int, dead_port: int) -> Path:
    path.write_text(f"""
[[agent.proxy]]
device_id = "sw-v2c"
kind = "snmp"
host = "127.0.0.1"
port = {snmp_port}
community = "{COMMUNITY}"
device_class = "router"

[[agent.proxy]]
device_id = "sw-v3"
kind = "snmp"
host = "127.0.0.1"
port = {snmp_port}
version = "3"
user = "{PRIV_USER}"
auth_password = "{PRIV_AUTH}"
priv_protocol = "AES"
priv_password = "{PRIV_KEY}"
ping = true

[[agent.proxy]]
device_id = "cam-icmp"
kind = "icmp"
host = "127.0.0.1"

[[agent.proxy]]
device_id = "sw-silent"
kind = "snmp"
host = "127.0.0.1"
port = {dead_port}
community = "{COMMUNITY}"
timeout = 0.2
retries = 0
""")
    return path


@needs_snmpd
@pytest.mark.mosquitto
def test_neighbours_are_published_under_their_own_ids_through_an_outage(
    broker: services.Mosquitto, snmp_port: int, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    config = proxy_config(tmp_path / "agent.toml", snmp_port, snmpd_support.free_udp_port())
    listener = Listener(broker.port)
    agent = AgentProcess({**agent_env(broker.url, data, agent_interval="0.5"), "EDGEWATCH_CONFIG": str(config)},
                         tmp_path / "agent.log")
    try:
        received: list[tuple[str, dict[str, Any]]] = []

        def seen(device: str, kind: str) -> int:
            # A retained status replayed by the broker when the listener subscribes again after the
            # restart is the broker's copy, not a new publish: left out.
            received.extend((m.topic, m.payload) for m in listener.drain(0.05) if not m.retain)
            return sum(1 for topic, _ in received if topic == f"edgewatch/v1/{device}/{kind}")

        wait_until(lambda: all(seen(d, "telemetry") >= 2 for d in ("gw-test", "sw-v2c", "sw-v3", "cam-icmp")),
                   timeout=30, what="samples of the gateway and of every answering neighbour")
        broker.stop()
        wait_until(lambda: b"reconnecting" in agent.log.read_bytes(), what="the agent noticing the outage")
        asyncio.run(asyncio.sleep(2.0))  # samples of every device pile up in the spool meanwhile
        broker.start()
        wait_until(lambda: all(seen(d, "telemetry") >= 8 for d in ("gw-test", "sw-v2c", "sw-v3", "cam-icmp")),
                   timeout=40, what="samples after the outage")
        # CPU usage is the growth of snmpd's counters, which it refreshes every 5 s.
        wait_until(lambda: seen("sw-v2c", "telemetry") > 0 and all(
            "cpu_percent" in last_metrics(received, d) for d in ("sw-v2c", "sw-v3")), timeout=20,
            what="CPU usage of the SNMP neighbours")
        assert agent.terminate() == 0
        seen("gw-test", "status")
    finally:
        agent.close()
        listener.close()

    decoder = Decoder()
    by_device: dict[str, list[dict[str, Any]]] = {}
    statuses: dict[str, list[dict[str, Any]]] = {}
    seqs = []
    for topic, payload in received:
        decoded = decoder.decode(topic, json.dumps(payload).encode(), 0.0)
        assert not isinstance(decoded, Rejected), (topic, decoded)
        device = topic.split("/")[2]
        if topic.endswith("/telemetry"):
            assert isinstance(decoded, Telemetry) and decoded.samples[0].device_id == device
            by_device.setdefault(device, []).append(payload)
            seqs.append(payload["seq"])
        else:
            assert isinstance(decoded, Status)
            statuses.setdefault(device, []).append(payload)
    # Nothing lost: the gateway and its neighbours share the spool's seq counter, and a neighbour's
    # status takes a seq too (it travels through the spool, behind the device's earlier samples).
    # Every seq handed out arrived, or is still spooled.
    assert "sw-silent" not in by_device, "a device that does not answer has no samples"
    assert len(seqs) == len(set(seqs)), "no sample twice"
    proxied_statuses = {(d, s["state"]) for d, rows in statuses.items() for s in rows if "proxy" in s}
    waiting, next_seq = spool_state(data)
    assert len(seqs) + len(proxied_statuses) + waiting == next_seq - 1
    for device in ("sw-v2c", "sw-v3", "cam-icmp"):
        samples = by_device[device]
        assert all(s["proxy"] == "gw-test" and s["interval_s"] == 0.5 for s in samples)
        device_seqs = [s["seq"] for s in samples]
        assert device_seqs == sorted(set(device_seqs)), f"{device}: strictly increasing, no duplicates"
        assert statuses[device][0]["state"] == "online"
    assert by_device["sw-v2c"][-1]["device_class"] == "router"
    assert {"cpu_percent", "mem_percent", "uptime_s"} <= set(by_device["sw-v2c"][-1]["metrics"])
    assert {"cpu_percent", "mem_percent", "latency_ms", "packet_loss_percent"} <= set(by_device["sw-v3"][-1]["metrics"])
    assert set(by_device["cam-icmp"][-1]["metrics"]) == {"latency_ms", "packet_loss_percent"}
    # The silent neighbour is offline on its own status topic, with the reason; the gateway is not.
    assert [s["state"] for s in statuses["sw-silent"]] == ["offline"]
    assert "timeout" in statuses["sw-silent"][0]["reason"].lower()
    # (mosquitto publishes the gateway's last will when it shuts down: `connection lost` is the outage.)
    assert all(s.get("reason") in (None, "connection lost", "stopped") for s in statuses["gw-test"])
    assert statuses["gw-test"][-1]["state"] == "offline" and statuses["gw-test"][-1]["reason"] == "stopped"
