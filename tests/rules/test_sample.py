"""The sample contract: what is accepted, and the reason code for everything refused."""

from __future__ import annotations

import math
from typing import Any

import pytest

from rules import SampleError, parse_sample


def sample(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "device_id": "gw-0001",
        "seq": 42,
        "ts": 1764072000.125,
        "metrics": {"cpu_percent": 37.5, "mem_percent": 61.2, "latency_ms": 12.3},
    }
    base.update(changes)
    return base


def test_the_contract_example_is_accepted() -> None:
    s = parse_sample(sample())
    assert (s.device_id, s.seq, s.ts) == ("gw-0001", 42, 1764072000.125)
    assert s.metrics == {"cpu_percent": 37.5, "mem_percent": 61.2, "latency_ms": 12.3}
    assert s.instance is None and s.device_class is None


def test_optional_keys_nulls_integers_and_extras() -> None:
    s = parse_sample(
        sample(
            metrics={"cpu_percent": None, "fan_rpm": 2, "latency_ms": 0},
            instance="a1b2",
            device_class="router",
            extra={"anything": True},
            ts=0,
        )
    )
    assert s.metrics == {"cpu_percent": None, "fan_rpm": 2.0, "latency_ms": 0.0}
    assert isinstance(s.metrics["fan_rpm"], float)
    assert (s.instance, s.device_class, s.ts) == ("a1b2", "router", 0.0)


REJECTED = [
    ("not_an_object", [1, 2]),
    ("unknown_version", sample(v=2)),
    ("unknown_version", sample(v=True)),
    ("unknown_version", {k: v for k, v in sample().items() if k != "v"}),
    ("bad_device_id", {k: v for k, v in sample().items() if k != "device_id"}),
    ("bad_device_id", sample(device_id="")),
    ("bad_device_id", sample(device_id="a" * 65)),
    ("bad_device_id", sample(device_id="gw/1")),
    ("bad_device_id", sample(device_id="gw+1")),
    ("bad_device_id", sample(device_id=7)),
    ("bad_seq", sample(seq=-1)),
    ("bad_seq", sample(seq=1.0)),
    ("bad_seq", sample(seq=True)),
    ("bad_seq", sample(seq="3")),
    ("bad_seq", sample(seq=2**63)),
    ("bad_ts", sample(ts="now")),
    ("bad_ts", sample(ts=math.inf)),
    ("bad_ts", sample(ts=-1)),
    ("bad_ts", sample(ts=10**400)),
    ("bad_ts", sample(ts=False)),
    ("bad_ts", sample(ts=253402300800.5)),
    ("bad_metrics", sample(metrics=[1])),
    ("bad_metrics", sample(metrics={f"m{i}": 1 for i in range(257)})),
    ("bad_metric_name", sample(metrics={"CPU": 1})),
    ("bad_metric_name", sample(metrics={"": 1})),
    ("bad_metric_value", sample(metrics={"cpu_percent": "37"})),
    ("bad_metric_value", sample(metrics={"cpu_percent": True})),
    ("bad_metric_value", sample(metrics={"cpu_percent": [1]})),
    ("non_finite", sample(metrics={"cpu_percent": math.nan})),
    ("non_finite", sample(metrics={"latency_ms": math.inf})),
    ("non_finite", sample(metrics={"latency_ms": 10**400})),
    ("impossible_value", sample(metrics={"latency_ms": -0.5})),
    ("impossible_value", sample(metrics={"cpu_percent": 100.01})),
    ("impossible_value", sample(metrics={"fill_percent": 100.5})),  # any *_percent, known or not
    ("impossible_value", sample(metrics={"fan_rpm": -1})),  # a metric of the agent's own: not negative
    ("impossible_value", sample(metrics={"temperature_c": -273.5})),  # below absolute zero
    ("impossible_value", sample(metrics={"temp_c": -300})),
    ("bad_metric_name", sample(metrics={"temp_c": 40, "temperature_c": 41})),
    ("bad_metric_name", sample(metrics={"load1_per_core": 0.5, "load_per_core": 0.5})),
    ("bad_instance", sample(instance=5)),
    ("bad_instance", sample(instance="x" * 129)),
    ("bad_device_class", sample(device_class=1)),
]


@pytest.mark.parametrize(("reason", "payload"), REJECTED)
def test_rejections_carry_a_reason_code(reason: str, payload: Any) -> None:
    with pytest.raises(SampleError) as info:
        parse_sample(payload)
    assert info.value.reason == reason
    assert str(info.value).startswith(reason + ": ")


def test_percent_of_exactly_100_is_possible() -> None:
    assert parse_sample(sample(metrics={"cpu_percent": 100})).metrics["cpu_percent"] == 100.0


def test_a_refused_value_is_quoted_within_bounds_however_deep_or_long() -> None:
    deep: Any = 1.0
    for _ in range(5_000):  # deeper than repr() can go
        deep = [deep]
    with pytest.raises(SampleError) as caught:
        parse_sample({"v": 1, "device_id": "gw-1", "seq": 1, "ts": 1.0, "metrics": {"cpu_percent": deep}})
    assert caught.value.reason == "bad_metric_value" and caught.value.detail.endswith("got [[[[...]]]]")
    with pytest.raises(SampleError) as caught:
        parse_sample({"v": 1, "device_id": "gw-1" * 1_000, "seq": 1, "ts": 1.0, "metrics": {}})
    assert caught.value.reason == "bad_device_id" and len(caught.value.detail) < 300


def test_old_metric_names_are_read_as_the_canonical_ones() -> None:
    s = parse_sample(sample(metrics={"temp_c": 55.5, "load_per_core": 0.4, "load5_per_core": 0.3}))
    assert s.metrics == {"temperature_c": 55.5, "load1_per_core": 0.4, "load5_per_core": 0.3}


def test_a_metric_sent_under_both_names_is_refused_naming_the_old_one() -> None:
    for metrics in ({"temp_c": 40, "temperature_c": 40}, {"temperature_c": 40, "temp_c": None}):
        with pytest.raises(SampleError) as info:
            parse_sample(sample(metrics=metrics))
        assert info.value.detail.startswith("metrics.temp_c is the old name of temperature_c")


def test_temperatures_below_zero_are_possible() -> None:
    assert parse_sample(sample(metrics={"temperature_c": -40.5})).metrics["temperature_c"] == -40.5
    assert parse_sample(sample(metrics={"temp_c": -0.5})).metrics["temperature_c"] == -0.5
    with pytest.raises(SampleError) as info:
        parse_sample(sample(metrics={"temperature_c": -274}))
    assert info.value.detail == "metrics.temperature_c is below -273.15 °C, the lowest possible value (-274.0)"
