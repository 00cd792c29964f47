"""PredictiveMonitor: settings, the warning state machine, its events and its snapshot."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from typing import Any

import pytest

from rules.forecast import Forecast
from rules.predict import (
    Change,
    PredictiveConfig,
    PredictiveConfigError,
    PredictiveEvent,
    PredictiveMonitor,
    PredictiveSettings,
    PredictiveStateError,
    Reason,
    WarningKind,
    _trend_warning,
    format_duration,
    format_value,
    parse_predictive,
)

HOUR = 3600.0
START = 1.7e9
STEP = 60.0  # one sample a minute keeps these tests quick


def ramp(hours: float, start: float, per_hour: float, noise: float = 1.0, seed: int = 1,
         t0: float = 0.0) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    count = int(hours * HOUR / STEP)
    return [(START + t0 + i * STEP, start + per_hour * i * STEP / HOUR + rng.gauss(0, noise)) for i in range(count)]


def feed(monitor: PredictiveMonitor, series: Iterable[tuple[float, float]], *, metric: str = "mem_percent",
         threshold: float | None = 60.0, alert: bool = False, device: str = "gw-0012",
         device_class: str | None = None) -> list[PredictiveEvent]:
    events: list[PredictiveEvent] = []
    for ts, value in series:
        events += monitor.feed(device, metric, ts, value, threshold, alert, device_class)
    return events


# -- settings -------------------------------------------------------------------------------------


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


# -- trend warnings ---------------------------------------------------------------------------------


def test_a_leak_raises_one_trend_warning_that_says_what_and_when() -> None:
    monitor = PredictiveMonitor()
    events = feed(monitor, ramp(8, 40.0, 3.0))
    assert [e.change for e in events] == [Change.RAISED]
    [warning] = events
    assert warning.kind is WarningKind.TREND
    assert (warning.device_id, warning.metric, warning.threshold) == ("gw-0012", "mem_percent", 60.0)
    assert warning.message.startswith("mem_percent on gw-0012 forecast to pass 60 % in about ")
    assert "rising 3" in warning.message or "rising 2" in warning.message
    assert warning.expected_at is not None and warning.uncertainty is not None and warning.confidence is not None
    assert warning.confidence >= PredictiveSettings().confidence
    eta = warning.expected_at - warning.ts
    assert 0 < eta <= 6 * HOUR
    # The trend meets 60 % minus one noise deviation (about 59 %) near (59 - 40) / 3 h after the start.
    assert abs((warning.expected_at - START) / HOUR - 19 / 3) < 1.5
    assert monitor.warnings() == {("gw-0012", "mem_percent"): warning}


def test_no_warning_before_enough_history_nor_for_a_flat_series() -> None:
    monitor = PredictiveMonitor()
    assert feed(monitor, ramp(0.9, 55.0, 6.0)) == []  # would cross soon, but less than an hour seen
    assert feed(PredictiveMonitor(), ramp(8, 45.0, 0.0)) == []


def test_never_while_an_alert_is_active_and_withdrawn_when_one_starts() -> None:
    monitor = PredictiveMonitor()
    series = ramp(8, 40.0, 3.0)
    assert feed(monitor, series, alert=True) == []
    monitor = PredictiveMonitor()
    [_raised] = feed(monitor, series[:240])
    [withdrawn] = feed(monitor, series[240:260], alert=True)
    assert withdrawn.change is Change.WITHDRAWN and withdrawn.reason is Reason.ALERT
    assert withdrawn.kind is WarningKind.TREND
    assert "superseded by the threshold alert" in withdrawn.message
    assert monitor.warnings() == {}
    assert feed(monitor, series[260:300], alert=True) == []


def test_never_twice_and_withdrawn_when_the_trend_reverses() -> None:
    monitor = PredictiveMonitor()
    up = ramp(5, 40.0, 3.0)
    down = ramp(3, 54.0, -4.0, t0=5 * HOUR)
    events = feed(monitor, up + down)
    assert [(e.change, e.reason) for e in events] == [(Change.RAISED, None), (Change.WITHDRAWN, Reason.TREND_REVERSED)]
    assert "trend reversed, no longer forecast to pass 60 % within 6 h" in events[1].message
    # Rising again soon after: quiet until the re-arm time (6 h) has passed.
    again = ramp(4, 42.0, 4.0, t0=8 * HOUR, seed=2)
    assert feed(monitor, again) == []
    later = ramp(6, 42.0, 4.0, t0=15 * HOUR, seed=3)
    assert [e.change for e in feed(monitor, later)] == [Change.RAISED]


def test_a_brief_doubt_does_not_withdraw_a_warning() -> None:
    monitor = PredictiveMonitor(parse_predictive({"confirm_minutes": 30}))
    feed(monitor, ramp(5, 40.0, 3.0))
    flat = ramp(0.25, 55.0, -8.0, t0=5 * HOUR, noise=0.1)  # 15 min of falling: under the 30 min confirm
    resume = ramp(1, 53.0, 3.0, t0=5.25 * HOUR)
    assert feed(monitor, flat + resume) == []
    assert monitor.warnings()


def test_log_scale_trend_for_latency_grows_by_percent() -> None:
    rng = random.Random(4)
    series = [(START + i * STEP, 20.0 * 1.25 ** (i * STEP / HOUR) * math.exp(rng.gauss(0, 0.1)))
              for i in range(int(10 * HOUR / STEP))]
    events = feed(PredictiveMonitor(), series, metric="latency_ms", threshold=200.0)
    assert events[0].kind is WarningKind.TREND
    assert "latency_ms on gw-0012 forecast to pass 200 ms" in events[0].message
    assert "growing 2" in events[0].message and "% per hour" in events[0].message


def test_trend_sentences() -> None:
    forecast = Forecast(59.0, 2.0 / HOUR, 0.1, 0.01, 0.5, 60.0, 30.0, 0.99, 10.0, 7200.0)
    warning = _trend_warning("gw-1", "cpu_percent", START, 59.2, 60.0, forecast, 0.0)
    assert warning.message == "cpu_percent on gw-1 forecast to pass 60 % about now; now 59.2 %, rising 2 % per hour"
    later = Forecast(40.0, 2.0 / HOUR, 0.1, 0.01, 0.5, 3 * HOUR, 1200.0, 0.9, 10.0, 7200.0)
    text = _trend_warning("gw-1", "temperature_c", START, 40.0, 60.0, later, 0.0).message
    assert text == ("temperature_c on gw-1 forecast to pass 60 °C in about 3 h (± 20 min); now 40 °C, "
                    "rising 2 °C per hour")
    plain = _trend_warning("gw-1", "fan_rpm", START, 40.0, 60.0, later, 0.0).message
    assert "pass 60 in about 3 h" in plain


# -- anomaly warnings -------------------------------------------------------------------------------


def erratic_series() -> list[tuple[float, float]]:
    rng = random.Random(8)
    calm = [(START + i * 10.0, 50.0 + rng.gauss(0, 1)) for i in range(3000)]
    wild = [(START + (3000 + i) * 10.0, 50.0 + rng.gauss(0, 12)) for i in range(300)]
    back = [(START + (3300 + i) * 10.0, 50.0 + rng.gauss(0, 1)) for i in range(2000)]
    return calm + wild + back


def test_sustained_unusual_behaviour_raises_and_later_withdraws_an_anomaly_warning() -> None:
    monitor = PredictiveMonitor(parse_predictive({"anomaly_minutes": 2}))
    events = feed(monitor, erratic_series(), metric="latency_ms", threshold=None)
    assert [(e.change, e.kind, e.reason) for e in events] == [
        (Change.RAISED, WarningKind.ANOMALY, None),
        (Change.WITHDRAWN, WarningKind.ANOMALY, Reason.BACK_TO_NORMAL),
    ]
    raised, withdrawn = events
    assert START + 3000 * 10 <= raised.ts <= START + 3100 * 10
    assert raised.score >= 0.5
    assert raised.message.startswith("latency_ms on gw-0012 behaving unusually for a few minutes (anomaly score ")
    assert "before it reaches" not in raised.message
    assert withdrawn.message.startswith("latency_ms on gw-0012 back to its usual behaviour")
    with_threshold = feed(PredictiveMonitor(parse_predictive({"anomaly_minutes": 2})), erratic_series(),
                          metric="latency_ms", threshold=200.0)
    assert "worth a look before it reaches 200 ms" in with_threshold[0].message


def test_anomaly_warnings_can_be_switched_off() -> None:
    monitor = PredictiveMonitor(parse_predictive({"anomaly_minutes": 2, "anomaly": False}))
    assert feed(monitor, erratic_series(), metric="latency_ms", threshold=None) == []


# -- switching off, bad input, queries ----------------------------------------------------------------


def test_disabled_metrics_are_not_watched_and_open_warnings_are_withdrawn() -> None:
    off = parse_predictive({"metrics": {"mem_percent": {"enabled": False}}})
    monitor = PredictiveMonitor(off)
    assert feed(monitor, ramp(8, 40.0, 3.0)) == []
    assert monitor.anomaly_score("gw-0012", "mem_percent") is None
    monitor = PredictiveMonitor()
    series = ramp(8, 40.0, 3.0)
    feed(monitor, series[:300])
    monitor.set_config(off)
    [event] = feed(monitor, series[300:302])
    assert event.reason is Reason.DISABLED
    assert event.message == "mem_percent on gw-0012: predictive warnings switched off"
    assert monitor.config is off
    off_for_routers = parse_predictive({"classes": {"router": {"enabled": False}}})
    assert feed(PredictiveMonitor(off_for_routers), series, device_class="router") == []


def test_old_samples_are_ignored() -> None:
    monitor = PredictiveMonitor()
    feed(monitor, ramp(1, 40.0, 0.0))
    before = json.dumps(monitor.snapshot())
    assert feed(monitor, [(START, 99.0), (START + 10, 99.0)]) == []
    assert json.dumps(monitor.snapshot()) == before


def test_a_fast_series_is_learned_at_the_monitors_step_and_warns_the_same() -> None:
    # Every second for 8 hours: the monitor learns from one sample in five (min_step 5 s), so it
    # raises the same warning, at the same time, as for the series sampled every 5 s.
    rng = random.Random(3)
    every_second = [(START + i, 40.0 + 3.0 * i / HOUR + rng.gauss(0, 1.0)) for i in range(int(8 * HOUR))]
    fast = PredictiveMonitor()
    [warning] = feed(fast, every_second)
    slow = PredictiveMonitor()
    [same] = feed(slow, every_second[::5])
    assert warning == same
    assert fast.snapshot() == slow.snapshot()


def test_a_sample_between_steps_still_hands_a_warning_over_to_an_alert() -> None:
    monitor = PredictiveMonitor()
    series = ramp(8, 40.0, 3.0)
    [_raised] = feed(monitor, series[:240])
    last = series[239][0]
    assert feed(monitor, [(last, 80.0)], alert=True) == []  # not newer: ignored even so
    [withdrawn] = feed(monitor, [(last + 1.0, 80.0)], alert=True)  # newer, within the step
    assert withdrawn.reason is Reason.ALERT and withdrawn.ts == last + 1.0
    assert monitor.warnings() == {}


def test_min_step_zero_learns_every_newer_sample_and_still_ignores_repeats() -> None:
    monitor = PredictiveMonitor(parse_predictive({"min_step_seconds": 0}))
    feed(monitor, [(START, 40.0), (START + 0.5, 41.0)])
    learned = json.dumps(monitor.snapshot())
    assert feed(monitor, [(START + 0.5, 99.0)]) == []
    assert json.dumps(monitor.snapshot()) == learned
    assert monitor.snapshot()["devices"]["gw-0012"]["mem_percent"]["forecaster"]["n"] == 2


def test_queries() -> None:
    monitor = PredictiveMonitor()
    assert monitor.forecast("gw-0012", "mem_percent", 60.0) is None
    feed(monitor, ramp(2, 40.0, 3.0))
    forecast = monitor.forecast("gw-0012", "mem_percent", 60.0)
    assert forecast is not None and forecast.slope * HOUR == pytest.approx(3.0, abs=0.6)
    score = monitor.anomaly_score("gw-0012", "mem_percent")
    assert score is not None and 0.0 <= score <= 1.0
    monitor.forget("gw-0012")
    monitor.forget("gw-0012")
    assert monitor.snapshot_device("gw-0012") is None


def test_changed_trend_settings_start_a_fresh_trend() -> None:
    monitor = PredictiveMonitor()
    feed(monitor, ramp(2, 40.0, 3.0))
    monitor.set_config(parse_predictive({"trend_half_life_hours": 3}))
    feed(monitor, ramp(0.1, 46.0, 0.0, t0=2 * HOUR))
    forecast = monitor.forecast("gw-0012", "mem_percent", 60.0)
    assert forecast is not None and forecast.span < 0.2 * HOUR


# -- snapshot and restore -------------------------------------------------------------------------------


def test_snapshot_and_restore_continue_with_the_same_events() -> None:
    series = ramp(5, 40.0, 3.0) + ramp(3, 54.0, -4.0, t0=5 * HOUR)
    whole = PredictiveMonitor()
    expected = feed(whole, series)
    for cut in (0, 100, 250, 330, len(series)):
        first = PredictiveMonitor()
        head = feed(first, series[:cut])
        restored = PredictiveMonitor()
        restored.restore(json.loads(json.dumps(first.snapshot())))
        assert head + feed(restored, series[cut:]) == expected
    copy = PredictiveMonitor()
    snapshot = whole.snapshot_device("gw-0012")
    assert snapshot is not None
    copy.restore_device("gw-0012", json.loads(json.dumps(snapshot)))
    assert copy.snapshot() == whole.snapshot()


def test_events_round_trip_through_dicts() -> None:
    monitor = PredictiveMonitor()
    events = feed(monitor, ramp(5, 40.0, 3.0) + ramp(3, 54.0, -4.0, t0=5 * HOUR))
    for event in events:
        assert PredictiveEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event
    assert events[1].to_dict()["reason"] == "trend_reversed" and events[0].to_dict()["reason"] is None


def test_restore_rejects_bad_snapshots_and_keeps_the_state() -> None:
    monitor = PredictiveMonitor()
    feed(monitor, ramp(1, 40.0, 3.0))
    before = monitor.snapshot()
    with pytest.raises(PredictiveStateError, match="version"):
        monitor.restore({"version": 9, "devices": {}})
    with pytest.raises(PredictiveStateError, match="version"):
        monitor.restore(None)  # type: ignore[arg-type]
    with pytest.raises(PredictiveStateError, match="no 'devices' table"):
        monitor.restore({"version": 1})
    with pytest.raises(PredictiveStateError, match="device 'gw-9': malformed"):
        monitor.restore({"version": 1, "devices": {"gw-9": {"mem_percent": {"warning": None}}}})
    with pytest.raises(PredictiveStateError, match="device 'gw-9': malformed"):
        monitor.restore({"version": 1, "devices": {"gw-9": []}})
    assert monitor.snapshot() == before


# -- sentences ------------------------------------------------------------------------------------------


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


# -- the forecast refresh and bursts ----------------------------------------------------------------


def refreshed(seconds: float, **more: Any) -> PredictiveMonitor:
    return PredictiveMonitor(parse_predictive({"forecast_refresh_seconds": seconds, **more}))


def test_a_throttled_forecast_raises_on_a_fresh_one_at_most_a_refresh_later() -> None:
    series = ramp(8, 40.0, 3.0)
    [exact] = feed(refreshed(0), series)
    monitor = refreshed(1800)
    [warning] = feed(monitor, series)
    assert exact.ts <= warning.ts <= exact.ts + 1800 + STEP
    # The warning's expected time comes from a forecast made at the raising sample itself.
    fresh = PredictiveMonitor(parse_predictive({"forecast_refresh_seconds": 0}))
    feed(fresh, [s for s in series if s[0] <= warning.ts])
    forecast = fresh.forecast("gw-0012", "mem_percent", 60.0)
    assert forecast is not None and forecast.eta is not None
    assert warning.expected_at == pytest.approx(warning.ts + forecast.eta)


def test_a_stale_crossing_forecast_is_checked_afresh_before_raising() -> None:
    # Rising fast for 70 minutes (the forecast made at 60 minutes crosses), then a long gap and a
    # low, flat series: when the confirmation time is up, a fresh forecast no longer crosses.
    series = ramp(70 / 60, 40.0, 6.0) + ramp(1, 20.0, 0.0, t0=12 * HOUR)
    assert feed(refreshed(100 * HOUR), series) == feed(refreshed(0), series) == []
    assert [e.change for e in feed(refreshed(100 * HOUR), ramp(2, 40.0, 6.0))] == [Change.RAISED]


def test_a_throttled_forecast_still_withdraws_a_reversed_trend() -> None:
    series = ramp(5, 40.0, 3.0) + ramp(3, 54.0, -4.0, t0=5 * HOUR)
    exact = feed(refreshed(0), series)
    events = feed(refreshed(2 * HOUR), series)
    assert [(e.change, e.reason) for e in events] == [(e.change, e.reason) for e in exact]
    assert events[1].reason is Reason.TREND_REVERSED
    assert exact[1].ts <= events[1].ts <= exact[1].ts + 2 * HOUR + 15 * 60


def bursty(hours: float, start: float, per_hour: float, t0: float = 0.0) -> list[tuple[float, float]]:
    """A trend with ten minutes 20 points higher every two hours (like CPU bursts)."""
    return [(ts, v + (20.0 if (ts - START) % (2 * HOUR) < 600 else 0.0))
            for ts, v in ramp(hours, start, per_hour, t0=t0)]


def test_bursts_on_a_rising_trend_warn_earlier_and_can_be_switched_off() -> None:
    series = bursty(4, 30.0, 0.0) + bursty(14, 30.0, 2.0, t0=4 * HOUR)
    [with_bursts] = feed(PredictiveMonitor(), series)
    [plain] = feed(PredictiveMonitor(parse_predictive({"bursts": False})), series)
    assert with_bursts.kind is plain.kind is WarningKind.TREND
    assert with_bursts.ts < plain.ts - HOUR
    assert feed(PredictiveMonitor(), bursty(12, 30.0, 0.0)) == []  # the same bursts without a trend: quiet


def test_a_saved_state_from_before_the_burst_record_is_restored() -> None:
    monitor = PredictiveMonitor()
    feed(monitor, ramp(2, 40.0, 1.0))
    saved = monitor.snapshot()
    forecaster = saved["devices"]["gw-0012"]["mem_percent"]["forecaster"]
    forecaster["version"] = 1
    del forecaster["burst"]
    restored = PredictiveMonitor()
    restored.restore(json.loads(json.dumps(saved)))
    assert feed(restored, ramp(1, 42.0, 1.0, t0=2 * HOUR)) == []
    assert restored.snapshot()["devices"]["gw-0012"]["mem_percent"]["forecaster"]["version"] == 2


def test_the_setting_reference_lists_every_key_with_its_default() -> None:
    from rules.predict import setting_reference

    rows = setting_reference()
    document = {key: default for key, default, _, _ in rows}
    assert parse_predictive(document).resolve(None, "mem_percent") == PredictiveSettings()
    assert all(meaning and kind in ("bool", "float") for _, _, kind, meaning in rows)
    assert document["forecast_refresh_seconds"] == 60.0 and document["bursts"] is True
    assert document["min_step_seconds"] == 5.0
