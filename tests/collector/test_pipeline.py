"""Pure parts of the collector: the batch pipeline, device tracking, registry coalescing, settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.decode import Decoder
from collector.devices import DeviceTracker
from collector.mqtt import Inbound
from collector.pipeline import DeviceSeen, Pipeline, RegistryBuffer
from collector.settings import load_settings
from common.config import ConfigError
from rules import RuleEngine


def inbound(topic: str | None, payload: bytes | dict[str, object], at: float = 100.0, mid: int = 1) -> Inbound:
    data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
    return Inbound(topic, data, 1, mid, False, at, at, 1)


def tel(device: str, seq: int, at: float = 100.0, **metrics: float) -> Inbound:
    body = {"v": 1, "device_id": device, "seq": seq, "ts": 1000.0 + seq, "metrics": metrics}
    return inbound(f"edgewatch/v1/{device}/telemetry", body, at)


def make() -> tuple[Pipeline, RuleEngine, DeviceTracker]:
    engine, tracker = RuleEngine(), DeviceTracker(10.0, 3.0)
    return Pipeline(Decoder(), engine, tracker, topic_prefix="edgewatch/v1", registry=RegistryBuffer(5.0),
                    clock=lambda: 100.0), engine, tracker


def test_batch_collects_points_transitions_and_outcomes() -> None:
    pipe, _, _ = make()
    batch = pipe.process([tel("a", 1, cpu_percent=95), tel("a", 1, cpu_percent=95), inbound("edgewatch/v1/a/x", b"")])
    assert batch.outcomes == {"processed": 1, "duplicate": 1, "rejected": 1}
    assert len(batch.points) == 2  # the duplicate's point is rewritten idempotently by the store
    [(transition, recent)] = batch.transitions
    assert (transition.event, transition.severity, transition.device_id) == ("raised", "red", "a")
    assert recent == ((1001.0, 95.0),)
    [letter] = batch.dead_letters
    assert (letter.reason, letter.device_id, letter.topic) == ("bad_topic", "a", "edgewatch/v1/a/x")
    assert set(batch.states) == {"a"} and set(batch.registry) == {"a"}


def test_rule_state_is_written_only_when_it_changed_beyond_seq() -> None:
    pipe, _, _ = make()
    assert set(pipe.process([tel("a", 1, cpu_percent=10)]).states) == {"a"}  # new device
    assert pipe.process([tel("a", 2, cpu_percent=10)]).states == {}  # only seq moved
    assert set(pipe.process([tel("a", 3, cpu_percent=70)]).states) == {"a"}  # a streak began
    assert set(pipe.process([tel("a", 4, cpu_percent=10)]).states) == {"a"}  # and ended
    assert pipe.process([tel("a", 5, cpu_percent=70), tel("a", 6, cpu_percent=10)]).states == {}  # net nothing
    # a batch with a transition always writes, even when the net state is back where it was
    batch = pipe.process([tel("a", s, cpu_percent=v) for s, v in zip(range(7, 13), [95, 10, 10, 10, 10, 10],
                                                                    strict=True)])
    assert [t.event for t, _ in batch.transitions] == ["raised", "cleared"] and set(batch.states) == {"a"}


def test_an_unwritten_seq_is_written_after_the_flush_interval_and_at_shutdown() -> None:
    clock = [100.0]
    pipe = Pipeline(Decoder(), RuleEngine(), DeviceTracker(), topic_prefix="edgewatch/v1",
                    clock=lambda: clock[0], state_flush_s=5.0)
    pipe.process([tel("a", 1, cpu_percent=10), tel("b", 1, cpu_percent=10)])
    assert pipe.process([tel("a", 2, cpu_percent=10)]).states == {}
    clock[0] = 104.0
    assert pipe.process([tel("b", 2, cpu_percent=10)]).states == {}
    clock[0] = 105.5
    states = pipe.process([]).states
    assert list(states) == ["a"] and states["a"]["seq"] == 2
    assert {d: s["seq"] for d, s in pipe.drain_states().items()} == {"b": 2}
    assert pipe.drain_states() == {}


def test_restored_state_is_not_rewritten() -> None:
    pipe, engine, _ = make()
    engine.restore_device("a", {"seq": 5, "instance": None, "device_class": None, "metrics": {}})
    pipe.remember_state("a", {"seq": 5, "instance": None, "device_class": None, "metrics": {}})
    assert pipe.process([tel("a", 6, cpu_percent=10)]).states == {}
    assert pipe.process([tel("a", 6, cpu_percent=10)]).outcomes == {"duplicate": 1}


def test_status_and_silence_events() -> None:
    pipe, _, tracker = make()
    pipe.process([tel("a", 1, at=100.0, cpu_percent=1), tel("b", 1, at=100.0, cpu_percent=1)])
    offline = inbound("edgewatch/v1/b/status", {"state": "offline"}, at=101.0)
    batch = pipe.process([offline])
    assert [(e.device_id, e.state, e.reason) for e in batch.events] == [("b", "offline", "status")]
    batch = pipe.process([tel("b", 2, at=102.0, cpu_percent=1)])
    assert [(e.device_id, e.state) for e in batch.events] == [("b", "online")]
    assert pipe.process([], now=125.0).events == []  # 25 s < 3 x 10 s
    events = pipe.process([], now=131.0).events
    assert [(e.device_id, e.state, e.at, e.reason) for e in events] == [("a", "offline", 100.0, "silence")]
    assert tracker.state_of("a") == "offline" and pipe.process([], now=200.0).events[0].device_id == "b"


def test_device_interval_from_status_sets_the_silence_limit() -> None:
    pipe, _, tracker = make()
    pipe.process([inbound("edgewatch/v1/a/status", {"state": "online", "interval_s": 1, "version": "2.1"})])
    assert tracker.interval_of("a") == 1.0
    assert [e.device_id for e in pipe.process([], now=103.5).events] == ["a"]


def test_registry_buffer_coalesces_until_due_but_writes_identity_changes_at_once() -> None:
    buf = RegistryBuffer(5.0)
    buf.load("old", ("1.0", "i1", None, None))
    assert set(buf.take({"new": DeviceSeen(1.0, seq=1, ts=1.0)}, now=1.0)) == {"new"}
    assert buf.take({"old": DeviceSeen(1.0, seq=1, ts=1.0, agent_version="1.0")}, now=1.0) == {}
    assert buf.take({"old": DeviceSeen(3.0, seq=2, ts=2.0, latest={"x": 1.0})}, now=3.0) == {}
    due = buf.take({}, now=6.0)
    assert due["old"].seq == 2 and due["old"].latest == {"x": 1.0} and due["old"].agent_version == "1.0"
    assert set(buf.take({"old": DeviceSeen(7.0, seq=3, ts=3.0, agent_version="2.0")}, now=7.0)) == {"old"}
    buf.take({"old": DeviceSeen(8.0, seq=4, ts=4.0)}, now=8.0)
    assert set(buf.drain()) == {"old"} and buf.drain() == {}


def test_settings_from_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[mqtt]\nurl = "mqtts://broker.example:8884"\nclient_id = "c1"\n'
                      '[telemetry]\nstore = "influxdb"\n[collector]\nbatch_size = 100\n')
    s = load_settings(config, environ={"EDGEWATCH_MQTT_CLIENT_ID": "from-env", "EDGEWATCH_METRICS_PORT": "9100",
                                       "EDGEWATCH_DATA_DIR": str(tmp_path)})
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.tls, s.mqtt.client_id) == ("broker.example", 8884, True, "from-env")
    assert s.telemetry.store == "influxdb" and s.batch_size == 100 and s.metrics_port == 9100
    assert s.telemetry.sqlite_path == tmp_path / "telemetry.sqlite3"
    defaults = load_settings(None, environ={})
    assert defaults.metrics_port is None and defaults.mqtt.port == 1883 and defaults.mqtt.telegraf_topics == (
        "telegraf/#",)


@pytest.mark.parametrize(
    "env, where",
    [
        ({"EDGEWATCH_MQTT_URL": "http://x"}, "EDGEWATCH_MQTT_URL"),
        ({"EDGEWATCH_TELEMETRY_STORE": "mongo"}, "EDGEWATCH_TELEMETRY_STORE"),
        ({"EDGEWATCH_METRICS_PORT": "many"}, "EDGEWATCH_METRICS_PORT"),
    ],
)
def test_bad_settings_name_the_source(env: dict[str, str], where: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ=env)
    assert where in str(err.value)
