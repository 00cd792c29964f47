"""Threshold files: layering, round trips, and errors that name the source, the key and the reason."""

from __future__ import annotations

from typing import Any

import pytest

from rules import METRICS, MetricRule, ThresholdError, Thresholds, parse_thresholds


def test_defaults_follow_the_contract() -> None:
    th = Thresholds()
    assert th.rule_for("d", None, "cpu_percent") == MetricRule(60.0, 90.0, 60.0, 3, 3)
    assert th.rule_for("d", None, "mem_percent") == MetricRule(60.0, 90.0, 60.0, 3, 3)
    assert th.rule_for("d", None, "latency_ms") == MetricRule(200.0, 300.0, 200.0, 3, 3)
    assert th.rule_for("d", "gateway", "disk_percent") is None
    assert th.rule_for("d", None, "no_such_metric") is None
    assert th.class_of("d") is None


def test_layers_device_over_class_over_default() -> None:
    th = parse_thresholds(
        {
            "rules": {"orange_count": 4, "clear_count": 2, "red_factor": 1.25},
            "metrics": {"mem_percent": {"threshold": 60, "clear_level": 50}, "disk_percent": 50},
            "classes": {"gateway": {"mem_percent": {"clear_count": 5}}, "router": {"mem_percent": 40}},
            "devices": {"gw-1": {"device_class": "gateway", "mem_percent": {"threshold": 45, "clear_level": 40}}},
        },
        source="t.toml",
    )
    assert th.rule_for("x", None, "mem_percent") == MetricRule(60.0, 75.0, 50.0, 4, 2)
    assert th.rule_for("x", "gateway", "mem_percent") == MetricRule(60.0, 75.0, 50.0, 4, 5)
    # a new threshold in a layer does not inherit a clear level meant for another threshold
    assert th.rule_for("x", "router", "mem_percent") == MetricRule(40.0, 50.0, 40.0, 4, 2)
    assert th.rule_for("gw-1", None, "mem_percent") == MetricRule(45.0, 56.25, 40.0, 4, 5)
    assert th.class_of("gw-1") == "gateway"
    assert th.rule_for("x", None, "disk_percent") == MetricRule(50.0, 62.5, 50.0, 4, 2)


def test_to_dict_round_trips() -> None:
    doc = {
        "rules": {"orange_count": 3, "clear_count": 3, "red_factor": 1.5},
        "metrics": {
            "cpu_percent": {"threshold": 55.0},
            "fan_rpm": {"threshold": 9000.0, "custom": True, "bounded": False},
        },
        "classes": {"router": {"latency_ms": {"threshold": 150.0, "clear_level": 120.0}}},
        "devices": {
            "gw-1": {"device_class": "gateway", "cpu_percent": {"threshold": 50.0}},
            "gw-2": {"device_class": "router"},
        },
    }
    th = parse_thresholds(doc)
    again = parse_thresholds(th.to_dict())
    for device, cls in [("gw-1", None), ("gw-2", None), ("x", "router"), ("x", None)]:
        for metric in ["cpu_percent", "mem_percent", "latency_ms", "fan_rpm"]:
            assert again.rule_for(device, cls, metric) == th.rule_for(device, cls, metric)
    assert th.to_dict()["metrics"]["fan_rpm"] == {"threshold": 9000.0, "custom": True, "bounded": False}


def test_custom_bounded_metric_is_checked_like_a_percentage() -> None:
    with pytest.raises(ThresholdError, match="can never be exceeded"):
        parse_thresholds({"metrics": {"fill_percent": {"threshold": 70, "custom": True, "bounded": True}}})


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"thresholds": {}}, "thresholds", "unknown section"),
    ({"rules": []}, "rules", "must be a table"),
    ({"rules": {"orange": 3}}, "rules.orange", "unknown setting"),
    ({"rules": {"orange_count": 0}}, "rules.orange_count", "at least 1"),
    ({"rules": {"clear_count": 2.5}}, "rules.clear_count", "whole number"),
    ({"rules": {"red_factor": 1}}, "rules.red_factor", "greater than 1"),
    ({"rules": {"red_factor": "x"}}, "rules.red_factor", "must be a number"),
    ({"rules": {"red_factor": 2}}, "metrics.cpu_percent", "can never be exceeded"),
    ({"metrics": {"cpu_precent": 60}}, "metrics.cpu_precent", "unknown metric 'cpu_precent'"),
    ({"metrics": {"cpu_percent": -5}}, "metrics.cpu_percent", "positive number"),
    ({"metrics": {"cpu_percent": 0}}, "metrics.cpu_percent", "positive number"),
    ({"metrics": {"cpu_percent": "high"}}, "metrics.cpu_percent", "must be a number"),
    ({"metrics": {"cpu_percent": True}}, "metrics.cpu_percent", "must be a number"),
    ({"metrics": {"cpu_percent": float("nan")}}, "metrics.cpu_percent", "positive number"),
    ({"metrics": {"cpu_percent": {"threshold": "60"}}}, "metrics.cpu_percent.threshold", "must be a number"),
    ({"metrics": {"cpu_percent": 70}}, "metrics.cpu_percent", "red could never fire"),
    ({"metrics": {"cpu_percent": 66.67}}, "metrics.cpu_percent", "below 66.67"),
    (
        {"metrics": {"cpu_percent": {"threshold": 60, "clear_level": 65}}},
        "metrics.cpu_percent.clear_level",
        "above the threshold",
    ),
    ({"metrics": {"cpu_percent": {"limit": 60}}}, "metrics.cpu_percent.limit", "unknown setting"),
    (
        {"metrics": {"cpu_percent": {"threshold": 60, "custom": "yes"}}},
        "metrics.cpu_percent.custom",
        "true or false",
    ),
    ({"metrics": {"fan_rpm": {"custom": True}}}, "metrics.fan_rpm.threshold", "needs a threshold"),
    # The one metric-name pattern (rules.metrics) holds for custom metrics too: samples must carry them.
    ({"metrics": {"Fan-RPM": {"custom": True, "threshold": 9000}}}, "metrics.Fan-RPM", "lower_snake_case"),
    ({"metrics": {"disk_percent": {"clear_level": 40}}}, "metrics.disk_percent", "has no threshold"),
    ({"classes": {"switch": {}}}, "classes.switch", "unknown device class"),
    ({"classes": {"router": 5}}, "classes.router", "must be a table"),
    ({"classes": {"router": {"latency": 100}}}, "classes.router.latency", "unknown metric"),
    (
        {"classes": {"router": {"latency_ms": {"custom": True}}}},
        "classes.router.latency_ms.custom",
        "unknown setting",
    ),
    ({"classes": {"router": {"mem_percent": 80}}}, "classes.router.mem_percent", "red could never fire"),
    (
        {"classes": {"router": {"mem_percent": {"clear_level": 61}}}},
        "classes.router.mem_percent.clear_level",
        "above the threshold",
    ),
    ({"devices": {"gw-1": {"device_class": "server"}}}, "devices.gw-1.device_class", "unknown device class"),
    ({"devices": {"gw-1": {"cpu": 5}}}, "devices.gw-1.cpu", "unknown metric"),
    (
        {"devices": {"gw-1": {"swap_percent": {"clear_count": 2}}}},
        "devices.gw-1.swap_percent",
        "has no threshold",
    ),
]


@pytest.mark.parametrize(("doc", "key", "reason"), BAD)
def test_errors_name_source_key_and_reason(doc: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ThresholdError) as info:
        parse_thresholds(doc, source="fleet.toml")
    assert info.value.source == "fleet.toml"
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(info.value).startswith(f"fleet.toml: {key}: ")


def test_catalogue_marks_percentages_as_bounded() -> None:
    assert all(info.bounded == name.endswith("_percent") for name, info in METRICS.items())


def test_a_metric_may_set_its_own_red_level() -> None:
    th = parse_thresholds({
        "metrics": {"cpu_percent": {"threshold": 80, "red": 95}, "latency_ms": {"threshold": 200, "red": 1000}},
        "classes": {"router": {"cpu_percent": {"red": 90}}, "gateway": {"cpu_percent": 50}},
        "devices": {"gw-1": {"cpu_percent": {"threshold": 85, "red": 99, "clear_level": 70}}},
    })
    assert th.rule_for("x", None, "cpu_percent") == MetricRule(80.0, 95.0, 80.0)
    assert th.rule_for("x", None, "latency_ms") == MetricRule(200.0, 1000.0, 200.0)
    # a layer with only a red level keeps the threshold below it
    assert th.rule_for("x", "router", "cpu_percent") == MetricRule(80.0, 90.0, 80.0)
    # a layer with a new threshold and no red level of its own is red at red_factor x its threshold:
    # it does not inherit a red level meant for another threshold
    assert th.rule_for("x", "gateway", "cpu_percent") == MetricRule(50.0, 75.0, 50.0)
    assert th.rule_for("gw-1", "router", "cpu_percent") == MetricRule(85.0, 99.0, 70.0)
    assert parse_thresholds(th.to_dict()).to_dict() == th.to_dict()
    assert th.to_dict()["metrics"]["cpu_percent"] == {"threshold": 80.0, "red": 95.0}


def test_percentages_above_two_thirds_can_have_a_red_level_of_their_own() -> None:
    with pytest.raises(ThresholdError, match=r"or give it a red level below 100 \(red = N\)"):
        parse_thresholds({"metrics": {"mem_percent": 80}})
    th = parse_thresholds({"metrics": {"mem_percent": {"threshold": 80, "red": 99.5}}})
    assert th.rule_for("x", None, "mem_percent") == MetricRule(80.0, 99.5, 80.0)


def test_old_metric_names_are_read_as_the_canonical_ones() -> None:
    th = parse_thresholds({
        "metrics": {"temp_c": {"threshold": 70, "red": 85}, "load_per_core": 2},
        "classes": {"router": {"temp_c": 60}},
        "devices": {"gw-1": {"temp_c": {"clear_level": 65}}},
    })
    assert th.rule_for("x", None, "temperature_c") == MetricRule(70.0, 85.0, 70.0)
    assert th.rule_for("x", "router", "temperature_c") == MetricRule(60.0, 90.0, 60.0)
    assert th.rule_for("gw-1", None, "temperature_c") == MetricRule(70.0, 85.0, 65.0)
    assert th.rule_for("x", None, "load1_per_core") == MetricRule(2.0, 3.0, 2.0)
    assert th.rule_for("x", None, "temp_c") is None  # samples carry canonical names only
    assert set(th.to_dict()["metrics"]) == {"temperature_c", "load1_per_core", "cpu_percent", "mem_percent",
                                            "latency_ms"}


def test_a_metric_of_the_catalogue_declared_custom_keeps_its_bounds() -> None:
    with pytest.raises(ThresholdError, match="can never be exceeded"):
        parse_thresholds({"metrics": {"cpu_percent": {"threshold": 90, "custom": True, "bounded": False}}})
    th = parse_thresholds({"metrics": {"load1_per_core": {"threshold": 2, "custom": True}}})  # declared custom when it was unknown
    assert th.rule_for("x", None, "load1_per_core") == MetricRule(2.0, 3.0, 2.0)
    assert "custom" not in th.to_dict()["metrics"]["load1_per_core"]


RED_AND_ALIAS_ERRORS: list[tuple[dict[str, Any], str, str]] = [
    ({"metrics": {"cpu_percent": {"threshold": 80, "red": 80}}}, "metrics.cpu_percent.red",
     "red level 80 is not above the threshold 80"),
    ({"metrics": {"latency_ms": {"threshold": 200, "red": 150}}}, "metrics.latency_ms.red", "must be above it"),
    ({"metrics": {"cpu_percent": {"threshold": 80, "red": 100}}}, "metrics.cpu_percent.red",
     "a red level of 100 % can never be exceeded"),
    ({"metrics": {"cpu_percent": {"threshold": 80, "red": "high"}}}, "metrics.cpu_percent.red", "must be a number"),
    ({"metrics": {"cpu_percent": {"threshold": 80, "red": -1}}}, "metrics.cpu_percent.red", "positive number"),
    # a red level alone is checked against the threshold it ends up with
    ({"classes": {"router": {"cpu_percent": {"red": 55}}}}, "classes.router.cpu_percent.red",
     "red level 55 is not above the threshold 60"),
    ({"devices": {"gw-1": {"mem_percent": {"red": 100.5}}}}, "devices.gw-1.mem_percent.red", "can never be exceeded"),
    ({"metrics": {"disk_percent": {"red": 90}}}, "metrics.disk_percent", "has no threshold"),
    ({"devices": {"gw-1": {"temp_c": {"clear_level": 5}}}}, "devices.gw-1.temp_c", "has no threshold"),
    ({"metrics": {"temp_c": 70, "temperature_c": 75}}, "metrics.temperature_c",
     "temp_c and temperature_c are the same metric (temp_c is the old name of temperature_c); keep one"),
    ({"classes": {"router": {"load1_per_core": 2, "load_per_core": 3}}}, "classes.router.load_per_core",
     "load_per_core is the old name of load1_per_core"),
    ({"devices": {"d": {"device_class": "router", "temp_c": 1, "temperature_c": 2}}}, "devices.d.temperature_c",
     "the same metric"),
    ({"classes": {"router": {"latency_ms": {"threshold": 100, "custom": True}}}}, "classes.router.latency_ms.custom",
     "expected one of threshold, red, clear_level, orange_count, clear_count"),
]


@pytest.mark.parametrize(("doc", "key", "reason"), RED_AND_ALIAS_ERRORS)
def test_red_level_and_old_name_errors_name_source_key_and_reason(doc: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ThresholdError) as info:
        parse_thresholds(doc, source="fleet.toml")
    assert (info.value.source, info.value.key) == ("fleet.toml", key)
    assert reason in info.value.reason
