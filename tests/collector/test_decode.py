"""Edge decoding of MQTT messages: every accepted and every rejected shape (pure, no I/O)."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import collector.decode
from collector.decode import MAX_PAYLOAD_BYTES, Decoder, Ignored, Rejected, Status, Telemetry

DECODER = Decoder("edgewatch/v1", ("telegraf/#",))
TOPIC = "edgewatch/v1/gw-1/telemetry"


def sample(**changes: object) -> bytes:
    body: dict[str, object] = {
        "v": 1, "device_id": "gw-1", "seq": 5, "ts": 1764072000.5,
        "metrics": {"cpu_percent": 37.5, "mem_percent": 61.2, "latency_ms": 12.3},
    }
    body.update(changes)
    return json.dumps(body).encode()


def test_subscriptions() -> None:
    assert DECODER.subscriptions() == ["edgewatch/v1/+/telemetry", "edgewatch/v1/+/status", "telegraf/#"]


def test_valid_sample_with_agent_extras() -> None:
    out = DECODER.decode(TOPIC, sample(agent_version="1.2.0", interval_s=5), 0.0)
    assert isinstance(out, Telemetry)
    assert out.agent_version == "1.2.0" and out.interval_s == 5.0 and out.source == "json"
    [s] = out.samples
    assert (s.device_id, s.seq, s.ts, s.metrics["cpu_percent"]) == ("gw-1", 5, 1764072000.5, 37.5)


@pytest.mark.parametrize(
    "topic, payload, reason",
    [
        (None, sample(), "bad_topic"),
        ("edgewatch/v1/gw-1/other", sample(), "bad_topic"),
        ("edgewatch/v1/bad id/telemetry", sample(), "bad_topic"),
        ("edgewatch/v1/gw-1/telemetry/extra", sample(), "bad_topic"),
        ("somewhere/else", sample(), "bad_topic"),
        (TOPIC, b"x" * (MAX_PAYLOAD_BYTES + 1), "too_large"),
        (TOPIC, b"\xff\xfe{}", "invalid_utf8"),
        (TOPIC, b'{"v": 1,', "invalid_json"),
        (TOPIC, b"[" * 30_000 + b"]" * 30_000, "invalid_json"),
        (TOPIC, b"[]", "not_an_object"),
        (TOPIC, sample(v=2), "unknown_version"),
        (TOPIC, sample(v=True), "unknown_version"),
        (TOPIC, sample(device_id="gw-2"), "topic_mismatch"),
        (TOPIC, sample(seq="5"), "bad_seq"),
        (TOPIC, sample(seq=-1), "bad_seq"),
        (TOPIC, sample(ts="now"), "bad_ts"),
        (TOPIC, sample(metrics={"cpu_percent": "high"}), "bad_metric_value"),
        (TOPIC, sample(metrics={"cpu_percent": True}), "bad_metric_value"),
        (TOPIC, sample(metrics={"latency_ms": -1}), "impossible_value"),
        (TOPIC, sample(metrics={"mem_percent": 100.5}), "impossible_value"),
        (TOPIC, b'{"v": 1, "device_id": "gw-1", "seq": 1, "ts": 1, "metrics": {"cpu_percent": NaN}}', "non_finite"),
        (TOPIC, b'{"v": 1, "device_id": "gw-1", "seq": 1, "ts": 1, "metrics": {"cpu_percent": 1e999}}', "non_finite"),
        (TOPIC, sample(agent_version=7), "bad_agent_version"),
        (TOPIC, sample(interval_s=0), "bad_interval"),
        (TOPIC, sample(interval_s=True), "bad_interval"),
        ("edgewatch/v1/gw-1/status", b'{"state": "sleeping"}', "bad_status"),
        ("edgewatch/v1/gw-1/status", b'"online"', "bad_status"),
        ("edgewatch/v1/gw-1/status", b'{"state": "online", "device_id": "gw-9"}', "topic_mismatch"),
        ("telegraf/gw-1/mem", b"mem,host=gw-1 used_percent=oops 1", "bad_line_protocol"),
        ("telegraf/gw-1/mem", b"mem,host=gw-1 used_percent=101 1", "impossible_value"),
    ],
)
def test_rejections_carry_a_reason(topic: str | None, payload: bytes, reason: str) -> None:
    out = DECODER.decode(topic, payload, 0.0)
    assert isinstance(out, Rejected), out
    assert out.reason == reason
    assert out.detail


def test_status_messages() -> None:
    assert DECODER.decode("edgewatch/v1/gw-1/status", b'{"state": "offline"}', 0) == Status("gw-1", False)
    out = DECODER.decode(
        "edgewatch/v1/gw-1/status", b'{"state": "online", "device_id": "gw-1", "agent_version": "2", "interval_s": 1}', 0
    )
    assert out == Status("gw-1", True, "2", 1.0)
    assert DECODER.decode("edgewatch/v1/gw-1/status", b"", 0) == Ignored("status_cleared")


def test_telegraf_topic() -> None:
    out = DECODER.decode("telegraf/gw-1/cpu", b"cpu,cpu=cpu-total,host=gw-1 usage_idle=90 1700000000000000000", 0)
    assert isinstance(out, Telemetry) and out.source == "telegraf"
    assert out.samples[0].metrics == {"cpu_percent": 10.0}
    assert DECODER.decode("telegraf/gw-1/disk", b"disk,host=gw-1 used_percent=5 1", 0) == Ignored("no_known_metrics")
    # batch layout (one topic per host) and a line without a host tag: the topic's device
    out = DECODER.decode("telegraf/gw-2", b"mem used_percent=5 1700000000000000000", 0)
    assert isinstance(out, Telemetry) and out.samples[0].device_id == "gw-2"


@pytest.mark.parametrize("topic, payload, reason", [
    ("telegraf/gw-0042", b"mem,host=gw-0001 used_percent=99 1700000000000000000", "topic_mismatch"),
    ("telegraf/gw-0042/mem", b"mem,host=gw-0042 used_percent=9\nmem,host=gw-0001 used_percent=99", "topic_mismatch"),
    ("telegraf/bad device", b"mem used_percent=5 1", "bad_topic"),
    ("telegraf", b"mem,host=gw-1 used_percent=5 1", "bad_topic"),
])
def test_a_telegraf_topic_binds_its_device(topic: str, payload: bytes, reason: str) -> None:
    out = DECODER.decode(topic, payload, 0)
    assert isinstance(out, Rejected) and out.reason == reason, out


# The fast parser (orjson) must not change any outcome: every payload decodes to what the json
# module alone gives, accepted alike or rejected for the same reason. (A rejection's detail may
# print an integer beyond 64 bits as a float: orjson reads such literals as floats.)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _with_json_module_only(payload: bytes, monkeypatch: pytest.MonkeyPatch) -> object:
    def refuse(_: bytes) -> object:
        raise orjson.JSONDecodeError("forced", "", 0)

    with monkeypatch.context() as m:
        m.setattr(collector.decode.orjson, "loads", refuse)
        return DECODER.decode(TOPIC, payload, 0.0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metrics=st.dictionaries(st.sampled_from(["cpu_percent", "mem_percent", "latency_ms", "x"]), _JSON_VALUES),
       extra=_JSON_VALUES, seq=_JSON_VALUES)
def test_fast_parser_agrees_with_the_json_module(
    metrics: dict[str, object], extra: object, seq: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    payloads = [sample(metrics=metrics, seq=seq, extra=extra), sample(metrics=metrics)[:-3],
                json.dumps(extra).encode(), b"\xef\xbb\xbf" + sample(), sample().replace(b"gw-1", b"gw-\xff")]
    for payload in payloads:
        fast, reference = DECODER.decode(TOPIC, payload, 0.0), _with_json_module_only(payload, monkeypatch)
        if isinstance(reference, Rejected):
            assert isinstance(fast, Rejected) and fast.reason == reference.reason
        else:
            assert fast == reference
