"""The metric catalogue: one table of names, old spellings, labels, units and possible values."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rules
from rules.metrics import ALIASES, CORE_METRICS, METRIC_NAME_PATTERN, METRICS, bounds, canonical, range_problem, unit_of


def test_every_entry_is_well_formed() -> None:
    for name, metric in METRICS.items():
        assert metric.name == name and METRIC_NAME_PATTERN.fullmatch(name)
        assert metric.label and metric.short and metric.label[0].isupper()
        assert metric.bounded == name.endswith("_percent") == (metric.unit == "%")
        assert metric.maximum is None or metric.maximum == 100
    assert CORE_METRICS == ("cpu_percent", "mem_percent", "latency_ms")
    assert {METRICS[m].default_threshold for m in CORE_METRICS} == {60.0, 200.0}


def test_old_spellings_point_at_canonical_names_that_are_not_old_spellings_themselves() -> None:
    assert ALIASES == {"temp_c": "temperature_c", "load_per_core": "load1_per_core"}
    for old, new in ALIASES.items():
        assert new in METRICS and old not in METRICS and canonical(old) == new
    assert canonical("cpu_percent") == "cpu_percent" and canonical("fan_rpm") == "fan_rpm"


def test_bounds_and_units_of_known_and_unknown_metrics() -> None:
    assert bounds("cpu_percent") == (0.0, 100.0) and unit_of("cpu_percent") == "%"
    assert bounds("temperature_c") == (-273.15, None) and unit_of("temp_c") == "°C"
    assert bounds("latency_ms") == (0.0, None) and unit_of("latency_ms") == "ms"
    assert bounds("fill_percent") == (0.0, 100.0) and unit_of("fill_percent") == "%"  # not in the table
    assert bounds("fan_rpm") == (0.0, None) and unit_of("fan_rpm") == ""


def test_range_problems_say_which_bound() -> None:
    assert range_problem("latency_ms", -1.0) == "metrics.latency_ms is negative (-1.0)"
    assert range_problem("cpu_percent", 100.5) == "metrics.cpu_percent is over 100 % (100.5)"
    assert range_problem("fill_percent", 101.0) == "metrics.fill_percent is over 100 % (101.0)"
    assert range_problem("temperature_c", -300.0) == (
        "metrics.temperature_c is below -273.15 °C, the lowest possible value (-300.0)")
    for name, value in [("temperature_c", -40.0), ("cpu_percent", 100.0), ("cpu_percent", 0.0), ("fan_rpm", 1e9)]:
        assert range_problem(name, value) is None


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_temperature_is_refused_only_below_absolute_zero(value: float) -> None:
    assert (range_problem("temperature_c", value) is None) == (value >= -273.15)


def test_the_package_exports_lazily_and_refuses_unknown_names() -> None:
    assert rules.RuleEngine.__module__ == "rules.engine" and rules.parse_sample.__module__ == "rules.sample"
    assert rules.METRICS is METRICS
    assert sorted(rules.__all__) == sorted(rules._HOME)
    for name in rules.__all__:
        assert getattr(rules, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        rules.nothing_here  # noqa: B018


def test_the_catalogue_imports_nothing_else_of_rules() -> None:
    code = "import sys, rules.metrics; print(sorted(m for m in sys.modules if m.startswith('rules') or m == 'dataclasses'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['rules', 'rules.metrics']"
