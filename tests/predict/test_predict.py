"""PredictiveMonitor: fed samples, the warnings it raises and withdraws, its events and its snapshot.

The sentences are composed at the edge (`tickets.notify.message.predictive_text`); these tests read
them there, as a ticket does.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from typing import Any

import pytest

from rules import Sample
from rules.predict import (
    Change,
    PredictiveEvent,
    PredictiveMonitor,
    PredictiveSettings,
    PredictiveStateError,
    Reason,
    WarningKind,
    parse_predictive,
)
from tickets.notify.message import predictive_text

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
    thresholds = {metric: threshold} if threshold is not None else {}
    alerts = {metric} if alert else set()
    for seq, (ts, value) in enumerate(series, start=1):
        events += monitor.feed(Sample(device, seq, ts, {metric: value}, None, device_class), thresholds, alerts)
    return events


# -- trend warnings ---------------------------------------------------------------------------------


def test_a_leak_raises_one_trend_warning_that_says_what_and_when() -> None:
    monitor = PredictiveMonitor()
    events = feed(monitor, ramp(8, 40.0, 3.0))
    assert [e.change for e in events] == [Change.RAISED]
    [warning] = events
    assert warning.kind is WarningKind.TREND
    assert (warning.device_id, warning.metric, warning.threshold) == ("gw-0012", "mem_percent", 60.0)
    assert predictive_text(warning).startswith("mem_percent on gw-0012 forecast to pass 60 % in about ")
    assert "rising 3" in predictive_text(warning) or "rising 2" in predictive_text(warning)
    assert warning.expected_at is not None and warning.uncertainty is not None and warning.confidence is not None
    assert warning.confidence >= PredictiveSettings().confidence
    eta = warning.expected_at - warning.ts
    assert 0 < eta <= 6 * HOUR
    # The trend meets 60 % minus one noise deviation (about 59 %) near (59 - 40) / 3 h after the start.
    assert abs((warning.expected_at - START) / HOUR - 19 / 3) < 1.5
    assert monitor.warnings() == {("gw-0012", "mem_percent"): warning}


def test_one_sample_feeds_every_metric_it_carries() -> None:
    # Two metrics leaking alike warn at the same sample; a metric without a value is not watched.
    monitor = PredictiveMonitor()
    raised: list[tuple[PredictiveEvent, ...]] = []
    for seq, (ts, value) in enumerate(ramp(8, 40.0, 3.0), start=1):
        sample = Sample("gw-0012", seq, ts, {"mem_percent": value, "cpu_percent": value, "latency_ms": None})
        events = monitor.feed(sample, {"mem_percent": 60.0, "cpu_percent": 60.0}, ())
        if events:
            raised.append(events)
    [(first, second)] = raised
    assert (first.metric, second.metric) == ("mem_percent", "cpu_percent") and first.ts == second.ts
    assert set(monitor.snapshot_device("gw-0012") or {}) == {"mem_percent", "cpu_percent"}


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
    assert "superseded by the threshold alert" in predictive_text(withdrawn)
    assert monitor.warnings() == {}
    assert feed(monitor, series[260:300], alert=True) == []


def test_never_twice_and_withdrawn_when_the_trend_reverses() -> None:
    monitor = PredictiveMonitor()
    up = ramp(5, 40.0, 3.0)
    down = ramp(3, 54.0, -4.0, t0=5 * HOUR)
    events = feed(monitor, up + down)
    assert [(e.change, e.reason) for e in events] == [(Change.RAISED, None), (Change.WITHDRAWN, Reason.TREND_REVERSED)]
    assert "trend reversed, no longer forecast to pass 60 % within 6 h" in predictive_text(events[1])
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
    assert "latency_ms on gw-0012 forecast to pass 200 ms" in predictive_text(events[0])
    assert "growing 2" in predictive_text(events[0]) and "% per hour" in predictive_text(events[0])


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
    assert predictive_text(raised).startswith("latency_ms on gw-0012 behaving unusually for a few minutes (anomaly score ")
    assert "before it reaches" not in predictive_text(raised)
    assert predictive_text(withdrawn).startswith("latency_ms on gw-0012 back to its usual behaviour")
    with_threshold = feed(PredictiveMonitor(parse_predictive({"anomaly_minutes": 2})), erratic_series(),
                          metric="latency_ms", threshold=200.0)
    assert "worth a look before it reaches 200 ms" in predictive_text(with_threshold[0])


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
    assert predictive_text(event) == "mem_percent on gw-0012: predictive warnings switched off"
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


def test_a_warning_saved_by_an_earlier_release_is_restored() -> None:
    # Earlier releases saved the warning's sentence ("message") and not the facts it was made of.
    series = ramp(5, 40.0, 3.0) + ramp(3, 54.0, -4.0, t0=5 * HOUR)
    monitor = PredictiveMonitor()
    [raised] = feed(monitor, series[:240])
    saved = monitor.snapshot()
    warning = saved["devices"]["gw-0012"]["mem_percent"]["warning"]
    for fact in ("horizon", "rise_per_hour", "log_scale", "unusual_for"):
        del warning[fact]
    warning["message"] = "mem_percent on gw-0012 forecast to pass 60 % in about 3 h; now 50 %, rising 3 % per hour"
    restored = PredictiveMonitor()
    restored.restore(json.loads(json.dumps(saved)))
    [(_, old)] = restored.warnings().items()
    assert (old.kind, old.expected_at, old.confidence) == (raised.kind, raised.expected_at, raised.confidence)
    assert (old.horizon, old.rise_per_hour, old.log_scale, old.unusual_for) == (None, None, False, None)
    assert [e.reason for e in feed(restored, series[240:])] == [Reason.TREND_REVERSED]


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
