"""The sentences of predictive warnings, composed from the facts `rules.predict` gives (pure)."""

from __future__ import annotations

import pytest

from rules.forecast import Forecast
from rules.predict import Change, PredictiveEvent, Reason, WarningKind
from rules.predict.events import anomaly_raised, trend_raised, withdrawn
from tickets.notify.message import format_duration, format_value, predictive_text

HOUR = 3600.0
START = 1.7e9


def test_trend_sentences() -> None:
    forecast = Forecast(59.0, 2.0 / HOUR, 0.1, 0.01, 0.5, 60.0, 30.0, 0.99, 10.0, 7200.0)
    warning = trend_raised("gw-1", "cpu_percent", START, 59.2, 60.0, forecast, 0.0, 6 * HOUR)
    assert predictive_text(warning) == (
        "cpu_percent on gw-1 forecast to pass 60 % about now; now 59.2 %, rising 2 % per hour")
    later = Forecast(40.0, 2.0 / HOUR, 0.1, 0.01, 0.5, 3 * HOUR, 1200.0, 0.9, 10.0, 7200.0)
    text = predictive_text(trend_raised("gw-1", "temperature_c", START, 40.0, 60.0, later, 0.0, 6 * HOUR))
    assert text == ("temperature_c on gw-1 forecast to pass 60 °C in about 3 h (± 20 min); now 40 °C, "
                    "rising 2 °C per hour")
    plain = predictive_text(trend_raised("gw-1", "fan_rpm", START, 40.0, 60.0, later, 0.0, 6 * HOUR))
    assert "pass 60 in about 3 h" in plain


def test_a_log_scale_trend_grows_by_a_percentage() -> None:
    forecast = Forecast(3.0, 0.2 / HOUR, 0.01, 0.001, 0.1, 2 * HOUR, 300.0, 0.8, 10.0, 7200.0, log_scale=True)
    event = trend_raised("gw-1", "latency_ms", START, 120.456, 200.0, forecast, 0.1, 6 * HOUR)
    assert predictive_text(event) == (
        "latency_ms on gw-1 forecast to pass 200 ms in about 2 h; now 120.46 ms, growing 22 % per hour")


def test_anomaly_and_withdrawal_sentences() -> None:
    raised = anomaly_raised("gw-1", "latency_ms", START, 80.0, 200.0, 0.734, 20 * 60.0)
    assert predictive_text(raised) == (
        "latency_ms on gw-1 behaving unusually for 20 min (anomaly score 0.73); worth a look before it reaches 200 ms")
    alone = anomaly_raised("gw-1", "latency_ms", START, 80.0, None, 0.5, 120.0)
    assert predictive_text(alone) == (
        "latency_ms on gw-1 behaving unusually for a few minutes (anomaly score 0.50); worth a look")
    forecast = Forecast(50.0, 2.0 / HOUR, 0.1, 0.01, 0.5, 5 * HOUR, 600.0, 0.9, 10.0, 7200.0)
    trend = trend_raised("gw-1", "mem_percent", START, 50.0, 60.0, forecast, 0.0, 6 * HOUR)
    texts = {reason: predictive_text(withdrawn(trend, reason, START + 60, 48.123, 0.0, 3 * HOUR)) for reason in Reason}
    assert texts == {
        Reason.TREND_REVERSED: "mem_percent on gw-1: trend reversed, no longer forecast to pass 60 % within 3 h; "
                               "now 48.12 %",
        Reason.BACK_TO_NORMAL: "mem_percent on gw-1 back to its usual behaviour; now 48.12 %",
        Reason.ALERT: "mem_percent on gw-1: superseded by the threshold alert now active; now 48.12 %",
        Reason.DISABLED: "mem_percent on gw-1: predictive warnings switched off",
    }


def test_a_fact_a_saved_warning_lacks_leaves_its_clause_out() -> None:
    # Warnings saved by an earlier release carry neither the pace, the horizon nor the duration.
    trend = PredictiveEvent(Change.RAISED, WarningKind.TREND, "gw-1", "mem_percent", START, 50.5, 60.0,
                            expected_at=START + 3 * HOUR, uncertainty=1200.0, confidence=0.8)
    assert predictive_text(trend) == "mem_percent on gw-1 forecast to pass 60 % in about 3 h (± 20 min); now 50.5 %"
    unknown = PredictiveEvent(Change.RAISED, WarningKind.TREND, "gw-1", "mem_percent", START, 50.5, None)
    assert predictive_text(unknown) == "mem_percent on gw-1 forecast to pass its threshold; now 50.5 %"
    anomaly = PredictiveEvent(Change.RAISED, WarningKind.ANOMALY, "gw-1", "cpu_percent", START, 50.0, None, score=0.6)
    assert predictive_text(anomaly) == "cpu_percent on gw-1 behaving unusually (anomaly score 0.60); worth a look"
    reversed_ = PredictiveEvent(Change.WITHDRAWN, WarningKind.TREND, "gw-1", "mem_percent", START, 48.0, 60.0,
                                reason=Reason.TREND_REVERSED)
    assert predictive_text(reversed_) == "mem_percent on gw-1: trend reversed, no longer forecast to pass 60 %; now 48 %"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60, "a few minutes"), (600, "10 min"), (2400, "40 min"), (3 * HOUR, "3 h"), (2.4 * HOUR, "2.5 h"),
     (20 * HOUR, "20 h"), (72 * HOUR, "3 days")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_value() -> None:
    assert format_value("mem_percent", 60.0) == "60 %"
    assert format_value("latency_ms", 250.5) == "250.5 ms"
    assert format_value("load_per_core", 2.0) == "2"
    assert format_value("my_metric", 7.0) == "7"
