"""The predictive monitor: per (device, metric) a trend forecaster and an anomaly detector, fed
samples, turned into predictive warnings by the state machine of `rules.predict.machine`.

`PredictiveMonitor.feed(sample, thresholds, alerts)` learns each metric of a `rules.Sample` (after
the rule engine has seen it), senses the series' signal in its phase — a forecast crossing the
orange threshold within the horizon, confidently, for `confirm` seconds; an anomaly score staying
high for `anomaly_duration`; the trend reversing; an alert taking over; the metric switched off —
and takes the step `TRANSITIONS` gives, returning the `PredictiveEvent`s it raises or withdraws.
It never raises while an alert is active for the metric and holds at most one warning per
(device, metric). Owns the per-series state, its queries (forecast, anomaly score, open warnings,
phase) and its snapshot. Pure: no clock (time is the samples'), no I/O; the whole state snapshots
to plain JSON-able data.
"""

from __future__ import annotations

import math
from collections.abc import Container, Mapping
from typing import Any

from rules.anomaly import DEFAULT_PARAMS, AnomalyDetector, AnomalyParams
from rules.forecast import Forecast, TrendForecaster
from rules.model import Sample
from rules.predict.events import PredictiveEvent, WarningKind, anomaly_raised, opt_float, trend_raised, withdrawn
from rules.predict.machine import TRANSITIONS, Phase, Signal
from rules.predict.settings import PredictiveConfig, PredictiveSettings

SNAPSHOT_VERSION = 1

# The members used on every sample, bound once: each read of `Phase.IDLE` goes through the enum's
# metaclass (CPython 3.11), and a steady sample would pay that several times.
_IDLE, _QUIET, _TREND, _ANOMALY = Phase.IDLE, Phase.QUIET, Phase.TREND, Phase.ANOMALY
_OFF, _ALERT, _CROSSING, _UNUSUAL = Signal.OFF, Signal.ALERT, Signal.CROSSING, Signal.UNUSUAL
_REVERSED, _NORMAL, _NOTHING = Signal.REVERSED, Signal.NORMAL, Signal.NOTHING
_TREND_KIND = WarningKind.TREND


class PredictiveStateError(ValueError):
    """A monitor snapshot cannot be restored; the monitor is left unchanged."""


def _forecaster(settings: PredictiveSettings) -> TrendForecaster:
    return TrendForecaster(settings.half_life, log_scale=settings.log_scale)


class _Series:
    """The state of one (device, metric)."""

    __slots__ = ("detector", "forecast", "forecast_key", "forecast_ts", "forecaster", "high_since", "last_ts",
                 "low_since", "pending", "quiet_until", "warning")

    def __init__(self, settings: PredictiveSettings, params: AnomalyParams) -> None:
        self.forecaster = _forecaster(settings)
        self.detector = AnomalyDetector(params)
        self.warning: PredictiveEvent | None = None  # the raise event of the open warning
        self.pending: float | None = None  # since when the raise/withdraw condition holds
        self.high_since: float | None = None  # since when the anomaly score stays at or above the level
        self.low_since: float | None = None  # ... below it
        self.quiet_until = -math.inf
        self.last_ts = -math.inf
        self.forget_forecast()

    def phase(self, ts: float) -> Phase:
        """Where the series is in the state machine at sample time `ts`."""
        warning = self.warning
        if warning is not None:
            return _TREND if warning.kind is _TREND_KIND else _ANOMALY
        return _QUIET if ts < self.quiet_until else _IDLE

    def forget_forecast(self) -> None:
        # The last crossing forecast, when it was made and for which (settings, threshold): a
        # cache that spares recomputing it for every sample; not part of the snapshot.
        self.forecast: Forecast | None = None
        self.forecast_ts = -math.inf
        self.forecast_key: tuple[PredictiveSettings, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "forecaster": self.forecaster.snapshot(),
            "detector": self.detector.snapshot(),
            "warning": self.warning.to_dict() if self.warning is not None else None,
            "pending": self.pending,
            "high_since": self.high_since,
            "low_since": self.low_since,
            "quiet_until": None if self.quiet_until == -math.inf else self.quiet_until,
            "last_ts": None if self.last_ts == -math.inf else self.last_ts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _Series:
        series = cls.__new__(cls)
        series.forecaster = TrendForecaster.restore(data["forecaster"])
        series.detector = AnomalyDetector.restore(data["detector"])
        warning = data["warning"]
        series.warning = PredictiveEvent.from_dict(warning) if warning is not None else None
        series.pending = opt_float(data["pending"])
        series.high_since = opt_float(data["high_since"])
        series.low_since = opt_float(data["low_since"])
        quiet, last = data["quiet_until"], data["last_ts"]
        series.quiet_until = -math.inf if quiet is None else float(quiet)
        series.last_ts = -math.inf if last is None else float(last)
        series.forget_forecast()
        return series


class PredictiveMonitor:
    """Per (device, metric) forecasts and anomaly scores, turned into predictive warnings."""

    def __init__(self, config: PredictiveConfig | None = None, params: AnomalyParams = DEFAULT_PARAMS) -> None:
        self._config = config if config is not None else PredictiveConfig()
        self._params = params
        self._series: dict[str, dict[str, _Series]] = {}

    @property
    def config(self) -> PredictiveConfig:
        return self._config

    def set_config(self, config: PredictiveConfig) -> None:
        """Use new settings from the next sample on (learnt trends and open warnings are kept)."""
        self._config = config

    def feed(
        self, sample: Sample, thresholds: Mapping[str, float | None], alerts: Container[str]
    ) -> tuple[PredictiveEvent, ...]:
        """Learn every metric of one sample; the warnings it raises or withdraws (usually none, at
        most one per metric).

        `thresholds`: each metric's orange threshold on this device (a metric without one gets
        anomaly warnings only); `alerts`: the metrics with an orange or red alert active once the
        rule engine has seen the sample. `sample.device_class` selects per-class settings. Time
        order is the samples' `ts` per series: a metric whose series has seen a newer sample is
        ignored (`seq` is the rule engine's business).
        """
        events: list[PredictiveEvent] | None = None
        observe, device_id, ts, device_class = self._observe, sample.device_id, sample.ts, sample.device_class
        for metric, value in sample.metrics.items():
            if value is None:
                continue
            event = observe(device_id, metric, ts, value, thresholds.get(metric), metric in alerts, device_class)
            if event is not None:
                if events is None:
                    events = []
                events.append(event)
        return () if events is None else tuple(events)

    def _observe(
        self, device_id: str, metric: str, ts: float, value: float, threshold: float | None, alert: bool,
        device_class: str | None,
    ) -> PredictiveEvent | None:
        """One value of one series: learn it, sense the signal in the series' phase, and take the
        step the table gives (raising or withdrawing a warning when the step changes the phase)."""
        settings = self._config.resolve(device_class, metric)
        device = self._series.get(device_id)
        series = device.get(metric) if device is not None else None
        forecast: Forecast | None = None
        if not settings.enabled:
            if series is None:
                return None
            phase, signal, score = series.phase(ts), _OFF, 0.0  # nothing is learnt
        elif series is not None and (ts - series.last_ts < settings.min_step or ts <= series.last_ts):
            # Not newer, or sooner than the monitor learns: a trend over hours gains nothing from
            # 1 Hz samples, and the detector keeps the cadence it was measured at. Only the
            # hand-over to an alert cannot wait for the next sample it learns from.
            if not alert or ts <= series.last_ts:
                return None
            phase, signal, score = series.phase(ts), _ALERT, series.detector.unusual
        else:
            if series is None:
                if device is None:
                    device = self._series[device_id] = {}
                series = device[metric] = _Series(settings, self._params)
            # Learn (inline: this runs for every sample of every metric).
            series.last_ts = ts
            forecaster = series.forecaster
            if forecaster.half_life != settings.half_life or forecaster.log_scale != settings.log_scale:
                forecaster = series.forecaster = _forecaster(settings)  # the trend settings changed
                series.forget_forecast()
            forecaster.update(ts, value)
            detector = series.detector
            detector.update(ts, value)
            score = detector.unusual
            # Since when the anomaly score has been at or above its level, or below it.
            if score >= settings.anomaly_level:
                if series.high_since is None:
                    series.high_since = ts
                series.low_since = None
            else:
                if series.low_since is None:
                    series.low_since = ts
                series.high_since = None
            # Sense, in the phase (`_Series.phase`, inline); `series.pending` is since when the
            # phase's trend condition has held.
            warning = series.warning
            if warning is None:
                phase = _QUIET if ts < series.quiet_until else _IDLE
            else:
                phase = _TREND if warning.kind is _TREND_KIND else _ANOMALY
            if alert:
                series.pending = None
                signal = _ALERT
            elif phase is _IDLE:
                signal, forecast = _sense_idle(series, settings, ts, threshold)
            elif phase is _TREND:
                signal = _sense_trend(series, settings, ts, threshold)
            elif phase is _ANOMALY:
                low_since = series.low_since
                normal = low_since is not None and ts - low_since >= settings.anomaly_duration
                signal = _NORMAL if normal else _NOTHING
            else:  # QUIET: re-arming, no condition counts
                series.pending = None
                signal = _NOTHING
        step = TRANSITIONS[phase, signal]
        if step.then is phase:
            return None
        if step.then is _TREND:
            assert forecast is not None and threshold is not None
            event = series.warning = trend_raised(device_id, metric, ts, value, threshold, forecast, score,
                                                  settings.horizon)
        elif step.then is _ANOMALY:
            event = series.warning = anomaly_raised(device_id, metric, ts, value, threshold, score,
                                                    settings.anomaly_duration)
        else:
            assert series.warning is not None and step.reason is not None
            event = withdrawn(series.warning, step.reason, ts, value, score, settings.horizon)
            series.warning = None
            series.quiet_until = ts + (settings.rearm if step.then is _QUIET else 0.0)
        series.pending = None
        return event

    # -- queries ----------------------------------------------------------------------------------------

    def warnings(self) -> dict[tuple[str, str], PredictiveEvent]:
        """The open warnings, each as the event that raised it."""
        return {
            (device_id, metric): series.warning
            for device_id, metrics in self._series.items()
            for metric, series in metrics.items()
            if series.warning is not None
        }

    def phase(self, device_id: str, metric: str, at: float | None = None) -> Phase:
        """Where a series is in the state machine at sample time `at` (default: its last sample)."""
        series = self._series.get(device_id, {}).get(metric)
        if series is None:
            return _IDLE
        return series.phase(series.last_ts if at is None else at)

    def forecast(
        self, device_id: str, metric: str, threshold: float, device_class: str | None = None
    ) -> Forecast | None:
        """The current trend of a series against a threshold (for the API and the dashboard)."""
        series = self._series.get(device_id, {}).get(metric)
        if series is None:
            return None
        return _forecast(series.forecaster, threshold, self._config.resolve(device_class, metric))

    def anomaly_score(self, device_id: str, metric: str) -> float | None:
        series = self._series.get(device_id, {}).get(metric)
        return None if series is None else series.detector.unusual

    def forget(self, device_id: str) -> None:
        """Drop a device's state (a decommissioned device)."""
        self._series.pop(device_id, None)

    # -- snapshot and restore -------------------------------------------------------------------------

    def snapshot_device(self, device_id: str) -> dict[str, Any] | None:
        metrics = self._series.get(device_id)
        if metrics is None:
            return None
        return {metric: series.to_dict() for metric, series in sorted(metrics.items())}

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "devices": {device_id: self.snapshot_device(device_id) for device_id in sorted(self._series)},
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Replace the whole state with a snapshot's; on error nothing changes."""
        if not isinstance(snapshot, Mapping) or snapshot.get("version") != SNAPSHOT_VERSION:
            found = snapshot.get("version") if isinstance(snapshot, Mapping) else type(snapshot).__name__
            raise PredictiveStateError(f"predictive snapshot version {found!r} is not {SNAPSHOT_VERSION}")
        devices = snapshot.get("devices")
        if not isinstance(devices, Mapping):
            raise PredictiveStateError("predictive snapshot has no 'devices' table")
        self._series = {device_id: _device_from(device_id, data) for device_id, data in devices.items()}

    def restore_device(self, device_id: str, data: Mapping[str, Any]) -> None:
        self._series[device_id] = _device_from(device_id, data)


# -- sensing ------------------------------------------------------------------------------


def _sense_idle(
    series: _Series, settings: PredictiveSettings, ts: float, threshold: float | None
) -> tuple[Signal, Forecast | None]:
    forecast = _crossing_forecast(series, settings, ts, threshold)
    crossing = _crosses(forecast, settings)
    since = ts if series.pending is None else series.pending
    if crossing and ts - since >= settings.confirm and series.forecast_ts < ts:
        # Decided on a forecast from a few samples ago: a warning is raised on a fresh one.
        forecast = _crossing_forecast(series, settings, ts, threshold, fresh=True)
        crossing = _crosses(forecast, settings)
    if crossing:
        series.pending = since
        if ts - since >= settings.confirm:
            return _CROSSING, forecast
    else:
        series.pending = None
    # After the crossing: when both are confirmed, the trend warning (the more specific) is raised.
    if settings.anomaly and series.high_since is not None and ts - series.high_since >= settings.anomaly_duration:
        return _UNUSUAL, None
    return _NOTHING, None


def _sense_trend(series: _Series, settings: PredictiveSettings, ts: float, threshold: float | None) -> Signal:
    forecast = _crossing_forecast(series, settings, ts, threshold)
    since = ts if series.pending is None else series.pending
    if not _still_rising(forecast) and ts - since >= settings.confirm and series.forecast_ts < ts:
        forecast = _crossing_forecast(series, settings, ts, threshold, fresh=True)  # as for a raise
    if _still_rising(forecast):
        series.pending = None
        return _NOTHING
    series.pending = since
    return _REVERSED if ts - since >= settings.confirm else _NOTHING


def _crossing_forecast(
    series: _Series, settings: PredictiveSettings, ts: float, threshold: float | None, fresh: bool = False
) -> Forecast | None:
    """The series' forecast against `threshold`, recomputed at most every `settings.refresh` seconds
    (or now, when `fresh`); None without a threshold or with less than `min_history` of history."""
    if threshold is None:
        return None
    forecaster = series.forecaster
    if forecaster.t_ref - forecaster.t_first < settings.min_history:
        return None  # (the forecast's span): too short a history to act on, so not worth computing
    key = (settings, threshold)
    if not fresh and ts - series.forecast_ts < settings.refresh and series.forecast_key == key:
        return series.forecast
    forecast = _forecast(forecaster, threshold, settings)
    series.forecast, series.forecast_ts, series.forecast_key = forecast, ts, key
    return forecast


def _forecast(forecaster: TrendForecaster, threshold: float, settings: PredictiveSettings) -> Forecast | None:
    bursts = settings.confidence if settings.bursts else 0.0
    return forecaster.forecast(threshold, settings.horizon, settings.noise_margin, bursts)


def _crosses(forecast: Forecast | None, settings: PredictiveSettings) -> bool:
    """Forecast to pass the threshold within the horizon, confidently enough to warn."""
    return (
        forecast is not None and forecast.eta is not None and forecast.eta <= settings.horizon
        and forecast.confidence >= settings.confidence
    )


def _still_rising(forecast: Forecast | None) -> bool:
    """A trend warning holds while passing the threshold stays more likely than not."""
    return forecast is not None and forecast.eta is not None and forecast.confidence >= 0.5


def _device_from(device_id: str, data: Any) -> dict[str, _Series]:
    try:
        return {str(metric): _Series.from_dict(state) for metric, state in data.items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PredictiveStateError(f"device {device_id!r}: malformed predictive state ({exc})") from None
