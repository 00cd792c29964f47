"""The agent's samples satisfy the collector's contract (rules.sample.parse_sample)."""

from __future__ import annotations

import json
import math

import pytest

from agent.latency import TargetResult
from agent.sample import build_sample, encode, latency_metrics, valid_metrics
from rules.sample import parse_sample


def test_sample_passes_the_contract_with_every_extra_key() -> None:
    targets = [TargetResult("tcp://b:1883", 3, [10.0, 12.0]), TargetResult("icmp://h", 3, [])]
    metrics = {"cpu_percent": 37.5, "mem_percent": 61.2, "load1_per_core": 0.4, **latency_metrics(targets)}
    sample = build_sample(device_id="gw-0001", seq=42, ts=1764072000.1254, metrics=metrics, instance="abc",
                          device_class="gateway", dropped=7, targets=targets)
    decoded = parse_sample(json.loads(encode(sample)))
    assert decoded.device_id == "gw-0001" and decoded.seq == 42 and decoded.ts == 1764072000.125
    assert decoded.metrics["latency_ms"] == 11.0
    assert decoded.metrics["packet_loss_percent"] == pytest.approx(33.3)
    assert (decoded.instance, decoded.device_class) == ("abc", "gateway")
    assert sample["spool_dropped"] == 7
    assert sample["targets"]["icmp://h"] == {"sent": 3, "received": 0, "packet_loss_percent": 100.0}


def test_unreachable_primary_target_has_loss_but_no_latency() -> None:
    assert latency_metrics([TargetResult("tcp://b:1", 3, [])]) == {"packet_loss_percent": 100.0}
    assert latency_metrics([TargetResult("icmp://h", 0, [])]) == {}  # not probed at all
    assert latency_metrics([]) == {}


def test_values_the_collector_would_refuse_are_left_out() -> None:
    metrics = {"cpu_percent": 101.0, "latency_ms": -1.0, "temperature_c": math.nan, "Bad-Name": 1.0,
               "mem_percent": 5.0, "load1_per_core": -0.1}
    assert valid_metrics(metrics) == {"mem_percent": 5.0}


def test_a_temperature_below_zero_is_sent() -> None:
    sample = build_sample(device_id="r1", seq=1, ts=1.0, metrics={"temperature_c": -18.5}, instance="i")
    assert sample["metrics"] == {"temperature_c": -18.5}
    assert parse_sample(sample).metrics == {"temperature_c": -18.5}


def test_no_optional_keys_when_not_needed() -> None:
    sample = build_sample(device_id="r1", seq=1, ts=1.0, metrics={}, instance="i")
    assert set(sample) == {"v", "device_id", "seq", "ts", "metrics", "instance"}
    parse_sample(sample)


def test_the_agents_contract_checks_agree_with_the_collectors() -> None:
    from agent import contract
    from rules import sample as rules_sample

    assert contract.DEVICE_ID_PATTERN.pattern == rules_sample.DEVICE_ID_PATTERN.pattern
    assert contract.METRIC_NAME_PATTERN is rules_sample.METRIC_NAME_PATTERN  # both read rules.metrics
    assert contract.SAMPLE_VERSION == rules_sample.SAMPLE_VERSION
    cases = [("cpu_percent", 100.0), ("cpu_percent", 100.5), ("latency_ms", 0.0), ("latency_ms", -0.1),
             ("temperature_c", math.inf), ("temperature_c", math.nan), ("temperature_c", -40.0),
             ("temperature_c", -274.0), ("temp_c", -1.0), ("load1_per_core", 3.5), ("fan_rpm", -1.0),
             ("fill_percent", 100.5), ("x" * 64, 1.0), ("x" * 65, 1.0)]
    for name, value in cases:
        sample = {"v": 1, "device_id": "d", "seq": 1, "ts": 1.0, "metrics": {name: value}}
        try:
            parse_sample(sample)
            accepted = True
        except ValueError:
            accepted = False
        assert accepted == (contract.metric_problem(name, value) is None), (name, value)
