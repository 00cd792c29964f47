"""The collector end to end: a real mosquitto, mosquitto_pub and the agent publishing, the real
ticket service on SQLite (and PostgreSQL), tickets and dead letters read back from the database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from collector.app import Collector
from collector.settings import TelemetrySettings
from telemetry.model import Point
from telemetry.sqlite import read_sqlite_samples
from tests.collector.helpers import (
    NOW,
    dead_letters,
    device,
    handled,
    pub,
    pub_lines,
    sample,
    settings,
    ticket_rows,
    wait_for,
)
from tests.collector.vm import victoria_metrics
from tests.support.services import Mosquitto, influxdb
from tickets.db import create_engine_for, migrate
from tickets.models import THRESHOLDS_KEY, DeadLetter, RuleState, Setting, TicketNote

pytestmark = pytest.mark.mosquitto
T = "edgewatch/v1/{}/telemetry"


@pytest.fixture
def collector(broker: Mosquitto, tmp_path: Path) -> Iterator[Collector]:
    c = Collector(settings(tmp_path, broker.port, metrics_port=0))
    c.start(timeout=30)
    yield c
    c.stop()


def test_orange_red_escalation_and_clear_become_tickets(collector: Collector, broker: Mosquitto,
                                                        tmp_path: Path) -> None:
    msgs = [(T.format("gw-1"), sample("gw-1", seq, cpu_percent=v, mem_percent=40, latency_ms=20))
            for seq, v in enumerate([50, 61, 62, 63, 95, 40, 41, 42], start=1)]
    msgs += [(T.format("rt-1"), sample("rt-1", 1, cpu_percent=10, mem_percent=20, latency_ms=350))]
    pub_lines(broker.port, msgs)
    wait_for(lambda: handled(collector) >= 9, what="9 messages")
    rows = wait_for(lambda: len(ticket_rows(collector.db_engine)) >= 2 and ticket_rows(collector.db_engine))
    by_device = {r["device_id"]: r for r in rows}
    assert len(rows) == 2
    gw, rt = by_device["gw-1"], by_device["rt-1"]
    # orange on the 3rd breach, escalated by the 95 %: one ticket, upgraded to red
    assert (gw["metric"], gw["severity"], gw["level"]) == ("cpu_percent", "red", "red")
    assert (rt["metric"], rt["kind"], rt["severity"], rt["level"]) == ("latency_ms", "on_site", "red", "red")
    with collector.db_engine.connect() as conn:
        notes = conn.execute(sa.select(TicketNote.text).where(TicketNote.ticket_id == gw["id"])).scalars().all()
    assert any("back" in n.lower() or "clear" in n.lower() for n in notes), notes
    m = collector.metrics
    assert m.value("edgewatch_collector_messages_total", outcome="processed") == 9
    assert m.value("edgewatch_collector_alerts_raised_total", severity="orange") == 1
    assert m.value("edgewatch_collector_alerts_raised_total", severity="red") == 1
    # registry and telemetry
    dev = device(collector.db_engine, "gw-1")
    assert dev is not None and dev["state"] == "online" and dev["latest_seq"] == 8
    assert dev["latest"] == {"cpu_percent": 42.0, "mem_percent": 40.0, "latency_ms": 20.0}
    assert collector.writer.flush(10)
    stored = read_sqlite_samples(tmp_path / "telemetry.sqlite3")
    assert len(stored) == 9
    # Prometheus endpoint
    text = httpx.get(f"http://127.0.0.1:{collector.metrics_port}/metrics", timeout=5).text
    assert 'edgewatch_collector_messages_total{outcome="processed"} 9.0' in text
    assert "edgewatch_collector_processing_seconds_bucket" in text
    assert "edgewatch_collector_store_queue_points" in text


BAD = [
    (T.format("gw-2"), b"{not json", "invalid_json"),
    (T.format("gw-2"), b"\xff\xfe\xfa", "invalid_utf8"),
    (T.format("gw-2"), b'{"v": 1, "device_id": "gw-2", "seq": "x", "ts": 1, "metrics": {}}', "bad_seq"),
    (T.format("gw-2"), json.dumps(sample("gw-2", 1, cpu_percent=101)).encode(), "impossible_value"),
    (T.format("gw-2"), json.dumps(sample("gw-2", 1, latency_ms=-5)).encode(), "impossible_value"),
    (T.format("gw-2"), b'{"v": 1, "device_id": "gw-2", "seq": 1, "ts": 1, "metrics": {"cpu_percent": NaN}}',
     "non_finite"),
    (T.format("gw-2"), json.dumps({**sample("gw-2", 1), "v": 9}).encode(), "unknown_version"),
    (T.format("gw-2"), json.dumps(sample("gw-3", 1, cpu_percent=5)).encode(), "topic_mismatch"),
    (T.format("gw-2"), b"x" * (64 * 1024 + 1), "too_large"),
    ("edgewatch/v1/gw-2/status", b'{"state": "asleep"}', "bad_status"),
    ("telegraf/gw-2/cpu", b"cpu,host=gw-2 usage_idle=abc 1", "bad_line_protocol"),
]


def test_bad_input_ends_in_dead_letters_and_the_stream_goes_on(collector: Collector, broker: Mosquitto) -> None:
    for topic, payload, _ in BAD:
        pub(broker.port, topic, payload)
    pub(broker.port, T.format("gw-2"), sample("gw-2", 1, cpu_percent=5))
    wait_for(lambda: handled(collector) >= len(BAD) + 1, what="all messages")
    letters = wait_for(lambda: len(dead_letters(collector.db_engine)) >= len(BAD) and dead_letters(collector.db_engine))
    assert [d["reason"] for d in letters] == [reason for _, _, reason in BAD]
    big = next(d for d in letters if d["reason"] == "too_large")
    assert big["payload_size"] == 64 * 1024 + 1 and len(big["payload"]) == 2048
    assert all(d["topic"] and d["detail"] and d["received_at"] for d in letters)
    assert letters[0]["device_id"] == "gw-2" and letters[0]["payload"] == "{not json"
    assert letters[1]["payload"] == "\\xff\\xfe\\xfa"
    m = collector.metrics
    assert m.value("edgewatch_collector_messages_total", outcome="rejected") == len(BAD)
    assert m.value("edgewatch_collector_rejected_total", reason="impossible_value") == 2
    assert m.value("edgewatch_collector_messages_total", outcome="processed") == 1


def test_duplicates_are_counted_and_ignored(collector: Collector, broker: Mosquitto) -> None:
    msgs = [(T.format("gw-4"), sample("gw-4", s, cpu_percent=95)) for s in (1, 1, 2, 1)]
    pub_lines(broker.port, msgs)
    wait_for(lambda: handled(collector) >= 4)
    m = collector.metrics
    assert m.value("edgewatch_collector_messages_total", outcome="duplicate") == 2
    assert len(ticket_rows(collector.db_engine)) == 1


def test_persistent_session_delivers_what_was_published_while_stopped(broker: Mosquitto, tmp_path: Path) -> None:
    first = Collector(settings(tmp_path, broker.port))
    first.start(timeout=30)
    first.stop()
    pub_lines(broker.port, [(T.format("gw-5"), sample("gw-5", s, latency_ms=400)) for s in range(1, 6)])
    second = Collector(settings(tmp_path, broker.port))
    second.start(timeout=30)
    try:
        wait_for(lambda: handled(second) >= 5, what="queued messages")
        assert second.metrics.value("edgewatch_collector_messages_total", outcome="processed") == 5
        rows = wait_for(lambda: ticket_rows(second.db_engine))
        assert [(r["device_id"], r["kind"]) for r in rows] == [("gw-5", "on_site")]
    finally:
        second.stop()


def test_mqtt_client_in_the_processing_process_works_too(broker: Mosquitto, tmp_path: Path) -> None:
    from dataclasses import replace

    base = settings(tmp_path, broker.port)
    c = Collector(replace(base, mqtt=replace(base.mqtt, separate_process=False)))
    c.start(timeout=30)
    try:
        pub_lines(broker.port, [(T.format("th-1"), sample("th-1", s, cpu_percent=99)) for s in (1, 2)])
        pub(broker.port, T.format("th-1"), b"[]")
        wait_for(lambda: handled(c) >= 3)
        assert [r["kind"] for r in wait_for(lambda: ticket_rows(c.db_engine))] == ["on_site"]
        assert c.metrics.value("edgewatch_collector_messages_total", outcome="rejected") == 1
    finally:
        c.stop()


def test_a_killed_mqtt_process_is_restarted(collector: Collector, broker: Mosquitto) -> None:
    pid = collector.source.pid  # type: ignore[union-attr]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: collector.source.pid != pid, timeout=20, what="a new MQTT process")  # type: ignore[union-attr]
    wait_for(lambda: subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-t",
                                     T.format("re-1"), "-m", json.dumps(sample("re-1", 1, cpu_percent=99))],
                                    check=True, timeout=10) and ticket_rows(collector.db_engine),
             timeout=20, what="a ticket through the new MQTT process")


def test_rule_state_survives_a_restart(broker: Mosquitto, tmp_path: Path) -> None:
    first = Collector(settings(tmp_path, broker.port))
    first.start(timeout=30)
    pub_lines(broker.port, [(T.format("gw-6"), sample("gw-6", s, mem_percent=70)) for s in (1, 2)])
    wait_for(lambda: handled(first) >= 2)
    first.stop()
    second = Collector(settings(tmp_path, broker.port))
    second.start(timeout=30)
    try:
        pub(broker.port, T.format("gw-6"), sample("gw-6", 3, mem_percent=70))  # the third breach
        rows = wait_for(lambda: ticket_rows(second.db_engine), what="orange ticket")
        assert [(r["metric"], r["severity"], r["kind"]) for r in rows] == [("mem_percent", "orange", "pre_maintenance")]
    finally:
        second.stop()


def test_last_will_and_silence_make_offline_tickets(broker: Mosquitto, tmp_path: Path) -> None:
    c = Collector(settings(tmp_path, broker.port))
    c.start(timeout=30)
    try:
        # gw-7 says it reports every 0.2 s, then goes silent: offline after 3 intervals.
        pub(broker.port, "edgewatch/v1/gw-7/status", {"state": "online", "version": "1.0", "interval_s": 0.2})
        pub(broker.port, T.format("gw-7"), sample("gw-7", 1, cpu_percent=5))
        # gw-8's last will arrives.
        pub(broker.port, T.format("gw-8"), sample("gw-8", 1, cpu_percent=5))
        pub(broker.port, "edgewatch/v1/gw-8/status", {"state": "offline", "reason": "connection lost"})
        rows = wait_for(lambda: len(ticket_rows(c.db_engine)) >= 2 and ticket_rows(c.db_engine), what="offline")
        assert sorted((r["device_id"], r["kind"], r["level"]) for r in rows) == [
            ("gw-7", "offline", "yellow"), ("gw-8", "offline", "yellow")]
        dev7 = device(c.db_engine, "gw-7")
        assert dev7 is not None and dev7["state"] == "offline" and dev7["agent_version"] == "1.0"
        assert dev7["interval_s"] == 0.2 and dev7["offline_since"] is not None
        # gw-8 comes back: a note on its offline ticket, the device online again.
        pub(broker.port, T.format("gw-8"), sample("gw-8", 2, cpu_percent=5))
        wait_for(lambda: (device(c.db_engine, "gw-8") or {}).get("state") == "online", what="gw-8 online")
        gw8 = next(r for r in rows if r["device_id"] == "gw-8")
        with c.db_engine.connect() as conn:
            notes = conn.execute(sa.select(TicketNote.text).where(TicketNote.ticket_id == gw8["id"])).scalars().all()
        assert any("online" in n for n in notes), notes
        assert c.metrics.value("edgewatch_collector_device_state_changes_total", state="offline") == 2
    finally:
        c.stop()


def test_telegraf_line_protocol_is_mapped_onto_samples(collector: Collector, broker: Mosquitto,
                                                       tmp_path: Path) -> None:
    ns = int(NOW) * 10**9
    lines = [
        f"cpu,cpu=cpu-total,host=tg-1 usage_idle=5.0 {ns + i * 10**10}\n"
        f"mem,host=tg-1 used_percent=30 {ns + i * 10**10}\n"
        f"ping,host=tg-1,url=10.0.0.1 average_response_ms=12,percent_packet_loss=0 {ns + i * 10**10}"
        for i in range(3)
    ]
    for text in lines:
        pub(broker.port, "telegraf/tg-1", text)
    wait_for(lambda: handled(collector) >= 3, what="3 messages")
    rows = wait_for(lambda: ticket_rows(collector.db_engine), what="telegraf red ticket")
    assert [(r["device_id"], r["metric"], r["severity"]) for r in rows] == [("tg-1", "cpu_percent", "red")]
    assert collector.writer.flush(10)
    stored = read_sqlite_samples(tmp_path / "telemetry.sqlite3")
    assert [(s["device_id"], s["cpu_percent"], s["mem_percent"], s["latency_ms"]) for s in stored] == [
        ("tg-1", 95.0, 30.0, 12.0)] * 3
    assert json.loads(stored[0]["extra"]) == {"packet_loss_percent": 0.0}


def test_a_telegraf_client_cannot_speak_for_another_device(collector: Collector, broker: Mosquitto) -> None:
    """The attack an adversarial review found: a client allowed only `telegraf/gw-0042` sent a red line
    for gw-0001 with a huge timestamp (so a huge seq). It is a dead letter now; gw-0001's own red
    sample afterwards still raises its alert."""
    pub(broker.port, "telegraf/gw-0042", "cpu,cpu=cpu-total,host=gw-0001 usage_idle=1 9000000000000000000")
    letters = wait_for(lambda: dead_letters(collector.db_engine), what="the spoofed line's dead letter")
    assert [(d["topic"], d["reason"]) for d in letters] == [("telegraf/gw-0042", "topic_mismatch")]
    assert "'gw-0001'" in letters[0]["detail"] and ticket_rows(collector.db_engine) == []
    pub(broker.port, T.format("gw-0001"), sample("gw-0001", 1, cpu_percent=97))
    rows = wait_for(lambda: ticket_rows(collector.db_engine), what="gw-0001's own red ticket")
    assert [(r["device_id"], r["metric"], r["severity"]) for r in rows] == [("gw-0001", "cpu_percent", "red")]


def test_a_point_the_store_refuses_becomes_a_dead_letter_and_the_stream_goes_on(
        collector: Collector, broker: Mosquitto, tmp_path: Path) -> None:
    # A sample the store cannot hold, handed to the running collector's writer as a batch would.
    collector.writer.submit([Point("gw-p", 2**70, NOW, NOW, {"cpu_percent": 50.0})])
    letters = wait_for(lambda: [d for d in dead_letters(collector.db_engine) if d["reason"] == "store_refused"],
                       what="the refused point's dead letter")
    assert letters[0]["device_id"] == "gw-p" and letters[0]["topic"] == "(telemetry store)"
    assert json.loads(letters[0]["payload"])["metrics"] == {"cpu_percent": 50.0}
    pub(broker.port, T.format("gw-q"), sample("gw-q", 1, cpu_percent=20))
    wait_for(lambda: handled(collector) >= 1, what="the next sample")
    assert collector.writer.flush(10)
    assert [s["device_id"] for s in read_sqlite_samples(tmp_path / "telemetry.sqlite3")] == ["gw-q"]
    assert collector.metrics.value("edgewatch_collector_unstorable_rows_total", table="telemetry") == 1


def test_thresholds_from_the_database_apply_without_restart(collector: Collector, broker: Mosquitto) -> None:
    with collector.db_engine.begin() as conn:
        conn.execute(sa.insert(Setting.__table__).values(  # type: ignore[arg-type]
            key=THRESHOLDS_KEY, value={"metrics": {"latency_ms": {"threshold": 10}}}, version=1,
            updated_at=sa.func.now()))
    wait_for(lambda: collector.rules.thresholds.rule_for("x", None, "latency_ms").threshold == 10,  # type: ignore[union-attr]
             what="thresholds reload")
    pub(broker.port, T.format("gw-9"), sample("gw-9", 1, latency_ms=16))  # > 1.5 x 10
    rows = wait_for(lambda: ticket_rows(collector.db_engine))
    assert [(r["metric"], r["severity"]) for r in rows] == [("latency_ms", "red")]


def test_the_agent_reports_and_a_red_ticket_opens(broker: Mosquitto, tmp_path: Path) -> None:
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text("[metrics.mem_percent]\nthreshold = 0.01\n")  # any real memory use is red
    c = Collector(settings(tmp_path, broker.port, thresholds_file=thresholds))
    c.start(timeout=30)
    env = {**os.environ, "EDGEWATCH_MQTT_URL": broker.url, "EDGEWATCH_DEVICE_ID": "agent-1",
           "EDGEWATCH_AGENT_INTERVAL": "0.2", "EDGEWATCH_DATA_DIR": str(tmp_path / "agent")}
    agent = subprocess.Popen([sys.executable, "-m", "edgewatch.cli", "agent"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        rows = wait_for(lambda: [r for r in ticket_rows(c.db_engine) if r["metric"] == "mem_percent"], timeout=30,
                        what="agent's red ticket")
        assert [(r["device_id"], r["kind"], r["severity"]) for r in rows] == [("agent-1", "on_site", "red")]
        dev = wait_for(lambda: device(c.db_engine, "agent-1"))
        assert dev["instance"] and dev["agent_version"]
    finally:
        agent.terminate()
        agent.wait(timeout=15)
        c.stop()


def test_an_edited_thresholds_file_applies_without_restart(broker: Mosquitto, tmp_path: Path) -> None:
    thresholds = tmp_path / "fleet.toml"
    thresholds.write_text("[metrics.latency_ms]\nthreshold = 200\n")
    c = Collector(settings(tmp_path, broker.port, thresholds_file=thresholds, metrics_port=0))
    c.start(timeout=30)
    try:
        pub(broker.port, T.format("gw-f"), sample("gw-f", 1, latency_ms=250))  # a breach, not red (300)
        wait_for(lambda: handled(c) >= 1)
        thresholds.write_text("[metrics.latency_ms]\nthreshold = 100\nred = 240\n")
        wait_for(lambda: c.rules.thresholds.rule_for("x", None, "latency_ms").red_level == 240,  # type: ignore[union-attr]
                 what="the edited file to be applied")
        pub(broker.port, T.format("gw-f"), sample("gw-f", 2, latency_ms=250))  # red under the edited file
        rows = wait_for(lambda: ticket_rows(c.db_engine), what="the red ticket")
        assert [(r["metric"], r["severity"]) for r in rows] == [("latency_ms", "red")]
        assert "latency_ms on gw-f was 250" in rows[0]["description"]
        assert "over its red level 240 (threshold 100)" in rows[0]["description"]

        thresholds.write_text("[metrics.latency_ms]\nthreshold = 100\nred = 50\n")  # broken: red below threshold
        wait_for(lambda: c.metrics.value("edgewatch_collector_threshold_errors_total") == 1,
                 what="the broken file to be counted")
        text = httpx.get(f"http://127.0.0.1:{c.metrics_port}/metrics", timeout=5).text
        assert "edgewatch_collector_threshold_errors_total 1.0" in text
        rule = c.rules.thresholds.rule_for("x", None, "latency_ms")  # the thresholds in force stay
        assert rule is not None and (rule.threshold, rule.red_level) == (100, 240)
    finally:
        c.stop()


# The agent as a real process, its thermal zones read from the test's files (this machine may have
# no sensor, and a test cannot make one freeze).
AGENT_WITH_THERMAL_ZONES = """
import sys
from pathlib import Path

import agent.cli
from agent.host import HostProbe


class FixtureZones(HostProbe):
    def __init__(self, disk_path, **kwargs):
        super().__init__(disk_path, thermal_root=Path(sys.argv[1]), **kwargs)


agent.cli.HostProbe = FixtureZones
sys.exit(agent.cli.main([]))
"""


def test_an_agents_temperature_below_zero_is_accepted_and_a_temperature_threshold_applies(
        broker: Mosquitto, tmp_path: Path) -> None:
    zones = tmp_path / "thermal"
    (zones / "thermal_zone0").mkdir(parents=True)
    zone = zones / "thermal_zone0" / "temp"
    zone.write_text("-12500\n")  # a winter cabinet: -12.5 °C
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text("[metrics.temperature_c]\nthreshold = 20\nred = 40\n")
    c = Collector(settings(tmp_path, broker.port, thresholds_file=thresholds))
    c.start(timeout=30)
    env = {**os.environ, "EDGEWATCH_MQTT_URL": broker.url, "EDGEWATCH_DEVICE_ID": "agent-t",
           "EDGEWATCH_AGENT_INTERVAL": "0.2", "EDGEWATCH_DATA_DIR": str(tmp_path / "agent")}
    agent = subprocess.Popen([sys.executable, "-c", AGENT_WITH_THERMAL_ZONES, str(zones)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        dev = wait_for(lambda: (d := device(c.db_engine, "agent-t")) and (d["latest"] or {}).get("temperature_c")
                       and d, timeout=30, what="the agent's sub-zero temperature")
        assert dev["latest"]["temperature_c"] == -12.5 and "temp_c" not in dev["latest"]
        zone.write_text("45000\n")  # over the red level of 40
        rows = wait_for(lambda: [r for r in ticket_rows(c.db_engine) if r["metric"] == "temperature_c"], timeout=30,
                        what="the red temperature ticket")
        assert [(r["device_id"], r["kind"], r["severity"]) for r in rows] == [("agent-t", "on_site", "red")]
        assert dead_letters(c.db_engine) == []
    finally:
        agent.terminate()
        agent.wait(timeout=15)
        c.stop()


def test_victoriametrics_store_round_trip(broker: Mosquitto, tmp_path: Path) -> None:
    with victoria_metrics() as vm:
        tel = TelemetrySettings(store="victoriametrics", victoriametrics_url=vm.url, flush_interval_s=0.05)
        c = Collector(settings(tmp_path, broker.port, telemetry=tel))
        c.start(timeout=30)
        try:
            pub_lines(broker.port, [(T.format("gw-10"), sample("gw-10", s, cpu_percent=10.0 + s)) for s in (1, 2, 3)])
            wait_for(lambda: c.metrics.value("edgewatch_collector_store_written_points_total") >= 3)
        finally:
            c.stop()
        series = {s["metric"]["__name__"]: s for s in vm.export()}  # type: ignore[index]
    assert series["device_health_cpu_percent"]["metric"]["device_id"] == "gw-10"  # type: ignore[index]
    assert series["device_health_cpu_percent"]["values"] == [11, 12, 13]
    assert series["device_health_seq"]["values"] == [1, 2, 3]


def test_influxdb_store_round_trip(broker: Mosquitto, tmp_path: Path) -> None:
    with influxdb() as server:
        tel = TelemetrySettings(store="influxdb", influx_url=server.url, influx_token="t", flush_interval_s=0.05)
        c = Collector(settings(tmp_path, broker.port, telemetry=tel))
        c.start(timeout=30)
        try:
            pub_lines(broker.port, [(T.format("gw-10"), sample("gw-10", s, cpu_percent=10.0 + s)) for s in (1, 2, 3)])
            wait_for(lambda: c.metrics.value("edgewatch_collector_store_written_points_total") >= 3)
        finally:
            c.stop()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            found = client.post("/query", data={"db": "edgewatch", "q": 'SELECT "cpu_percent", "seq" FROM '
                                                '"device_health" WHERE "device_id" = \'gw-10\''}).json()
    values = found["results"][0]["series"][0]["values"]
    assert [row[1:] for row in values] == [[11, 1], [12, 2], [13, 3]]


def test_store_outage_never_holds_up_tickets(broker: Mosquitto, tmp_path: Path) -> None:
    from tests.support.services import free_port

    port = free_port()
    tel = TelemetrySettings(store="victoriametrics", victoriametrics_url=f"http://127.0.0.1:{port}", flush_interval_s=0.05,
                            retry_max_s=0.5)
    c = Collector(settings(tmp_path, broker.port, telemetry=tel))
    c.start(timeout=30)
    try:
        pub_lines(broker.port, [(T.format("gw-11"), sample("gw-11", s, cpu_percent=99)) for s in (1, 2)])
        rows = wait_for(lambda: ticket_rows(c.db_engine), what="ticket while the store is down")
        assert rows[0]["kind"] == "on_site"
        wait_for(lambda: c.writer.stats.failures >= 1)
        assert c.writer.depth == 2
        with victoria_metrics(port) as vm:  # the store comes up: the buffer drains
            wait_for(lambda: c.writer.depth == 0, timeout=20, what="buffer drained")
            assert [s["values"] for s in vm.export('{__name__="device_health_cpu_percent"}')] == [[99, 99]]
    finally:
        c.stop()


@pytest.mark.postgres
def test_on_postgresql(broker: Mosquitto, postgres_server: object, tmp_path: Path) -> None:
    url = postgres_server.url  # type: ignore[attr-defined]
    engine = create_engine_for(url)
    with engine.begin() as conn:  # a clean schema for this test
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    c = Collector(settings(tmp_path, broker.port, database_url=url))
    c.start(timeout=30)
    try:
        pub_lines(broker.port, [(T.format("pg-1"), sample("pg-1", s, cpu_percent=70)) for s in (1, 2, 3)])
        pub(broker.port, T.format("pg-1"), b"{broken")
        rows = wait_for(lambda: ticket_rows(c.db_engine), what="ticket on PostgreSQL")
        assert [(r["device_id"], r["severity"]) for r in rows] == [("pg-1", "orange")]
        wait_for(lambda: dead_letters(c.db_engine))
        with c.db_engine.connect() as conn:
            state = conn.execute(sa.select(RuleState.state).where(RuleState.device_id == "pg-1")).scalar_one()
        assert state["seq"] == 3
        dev = wait_for(lambda: device(c.db_engine, "pg-1"))
        assert dev["latest"] == {"cpu_percent": 70.0}
    finally:
        c.stop()
        engine.dispose()


def test_dead_letters_older_than_their_retention_are_removed(broker: Mosquitto, tmp_path: Path) -> None:
    old, recent = NOW - 3 * 86400, NOW - 3600
    # Stored before the collector starts: its first retention pass comes at its first poll.
    engine = create_engine_for(f"sqlite:///{tmp_path / 'edgewatch.db'}")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(DeadLetter.__table__), [  # type: ignore[arg-type]
            {"received_at": datetime.fromtimestamp(ts, UTC), "topic": "t", "reason": "bad_topic",
             "detail": f"at {ts}", "payload": "", "payload_size": 0} for ts in (old, old + 10, recent)])
    engine.dispose()
    c = Collector(settings(tmp_path, broker.port, dead_letter_retention_days=1.0))
    c.start(timeout=30)
    try:
        wait_for(lambda: len(dead_letters(c.db_engine)) == 1, what="the old dead letters to go")
        assert [d["detail"] for d in dead_letters(c.db_engine)] == [f"at {recent}"]
    finally:
        c.stop()
