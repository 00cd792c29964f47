"""Predictive settings: the `[predictive]` table parsed, validated, resolved and written back."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from rules.predict import (
    PredictiveConfig,
    PredictiveConfigError,
    PredictiveSettings,
    parse_predictive,
    setting_reference,
)

HOUR = 3600.0


def test_defaults() -> None:
    settings = PredictiveConfig().resolve(None, "mem_percent")
    assert settings == PredictiveSettings()
    assert settings.enabled and settings.anomaly
    assert settings.horizon == 6 * HOUR
    assert PredictiveConfig().resolve(None, "latency_ms").log_scale  # built in: relative growth


def test_settings_resolve_class_metric_over_class_over_metric_over_defaults() -> None:
    config = parse_predictive(
        {
            "horizon_hours": 4,
            "confidence": 0.95,
            "metrics": {"cpu_percent": {"horizon_hours": 3, "anomaly": False}},
            "classes": {"router": {"horizon_hours": 2, "latency_ms": {"enabled": False, "log_scale": False}}},
        },
        source="edgewatch.toml",
    )
    assert config.resolve(None, "mem_percent").horizon == 4 * HOUR
    assert config.resolve(None, "mem_percent").confidence == 0.95
    assert config.resolve(None, "cpu_percent").horizon == 3 * HOUR
    assert not config.resolve("gateway", "cpu_percent").anomaly
    assert config.resolve("router", "cpu_percent").horizon == 2 * HOUR
    assert not config.resolve("router", "latency_ms").enabled
    assert not config.resolve("router", "latency_ms").log_scale
    assert config.resolve("gateway", "latency_ms").enabled and config.resolve("gateway", "latency_ms").log_scale


def test_settings_round_trip_through_to_dict() -> None:
    document = {
        "enabled": True,
        "horizon_hours": 5,
        "confirm_minutes": 10,
        "anomaly_minutes": 30,
        "rearm_hours": 2,
        "min_history_minutes": 45,
        "trend_half_life_hours": 2,
        "noise_margin": 1.5,
        "anomaly_level": 0.7,
        "metrics": {"mem_percent": {"confidence": 0.9}},
        "classes": {"gateway": {"anomaly": False, "cpu_percent": {"enabled": False}}},
    }
    config = parse_predictive(document)
    again = parse_predictive(json.loads(json.dumps(config.to_dict())))
    for cls in (None, "gateway", "router"):
        for metric in ("cpu_percent", "mem_percent", "latency_ms", "temperature_c"):
            assert again.resolve(cls, metric) == config.resolve(cls, metric)
    assert PredictiveConfig().to_dict()["horizon_hours"] == 6


@pytest.mark.parametrize(
    ("document", "key", "reason"),
    [
        ([], "predictive", "must be a table"),
        ({"horizon": 6}, "predictive.horizon", "unknown setting; expected one of enabled, horizon_hours"),
        ({"enabled": "yes"}, "predictive.enabled", "must be true or false"),
        ({"horizon_hours": "6"}, "predictive.horizon_hours", "must be a number"),
        ({"horizon_hours": True}, "predictive.horizon_hours", "must be a number"),
        ({"horizon_hours": math.inf}, "predictive.horizon_hours", "must be a number"),
        ({"horizon_hours": 0}, "predictive.horizon_hours", "must be greater than 0"),
        ({"rearm_hours": -1}, "predictive.rearm_hours", "must not be negative"),
        ({"confidence": 1.0}, "predictive.confidence", "at least 0.5 and below 1"),
        ({"confidence": 0.3}, "predictive.confidence", "at least 0.5 and below 1"),
        ({"anomaly_level": 0}, "predictive.anomaly_level", "above 0 and at most 1"),
        ({"metrics": []}, "predictive.metrics", "must be a table"),
        ({"metrics": {"cpu percent": {}}}, "predictive.metrics.cpu percent", "a metric name is"),
        ({"metrics": {"cpu_percent": 3}}, "predictive.metrics.cpu_percent", "must be a table"),
        ({"metrics": {"cpu_percent": {"confidence": 2}}}, "predictive.metrics.cpu_percent.confidence", "below 1"),
        ({"classes": {"switch": {}}}, "predictive.classes.switch", "unknown device class"),
        ({"classes": {"router": {"x y": {}}}}, "predictive.classes.router.x y", "a metric name is"),
        ({"metrics": {"CPU.load": {}}}, "predictive.metrics.CPU.load", "a metric name is lower_snake_case"),
        ({"metrics": {"temp_c": {}, "temperature_c": {}}}, "predictive.metrics.temperature_c",
         "temperature_c is set twice here (once by an old name)"),
        ({"classes": {"router": {"load1_per_core": {}, "load_per_core": {}}}},
         "predictive.classes.router.load_per_core", "set twice"),
        ({"classes": {"router": {"cpu_percent": {"bogus": 1}}}}, "predictive.classes.router.cpu_percent.bogus",
         "unknown setting"),
        ({"confirm_minutes": 120, "horizon_hours": 1}, "predictive (any class, *)", "must be shorter than the horizon"),
        ({"classes": {"router": {"horizon_hours": 0.1}}}, "predictive (router, *)", "must be shorter"),
    ],
)
def test_setting_errors_name_the_key(document: Any, key: str, reason: str) -> None:
    with pytest.raises(PredictiveConfigError) as info:
        parse_predictive(document, source="edgewatch.toml")
    assert info.value.source == "edgewatch.toml"
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(info.value).startswith(f"edgewatch.toml: {key}: ")


def test_old_metric_names_are_read_as_the_canonical_ones() -> None:
    config = parse_predictive({"metrics": {"temp_c": {"anomaly": False}},
                               "classes": {"router": {"load_per_core": {"enabled": False}}}})
    assert config.resolve(None, "temperature_c").anomaly is False
    assert config.resolve("router", "load1_per_core").enabled is False
    assert config.resolve("gateway", "load1_per_core").enabled is True




def test_the_setting_reference_lists_every_key_with_its_default() -> None:
    rows = setting_reference()
    document = {key: default for key, default, _, _ in rows}
    assert parse_predictive(document).resolve(None, "mem_percent") == PredictiveSettings()
    assert all(meaning and kind in ("bool", "float") for _, _, kind, meaning in rows)
    assert document["forecast_refresh_seconds"] == 60.0 and document["bursts"] is True
    assert document["min_step_seconds"] == 5.0
