"""Predictive warnings: tell staff about a metric before it reaches orange.

`PredictiveMonitor.feed(device_id, metric, ts, value, threshold, alert_active)` runs, per (device,
metric), a trend forecaster and an anomaly detector, and a small state machine on top:

    idle ──(forecast crosses within the horizon, confidently, for `confirm` s)──▶ warned (trend)
    idle ──(anomaly score >= level for `anomaly_duration` s)──────────────────▶ warned (anomaly)
    warned (trend)   ──(crossing no longer more likely than not, for `confirm` s)──▶ withdrawn
    warned (anomaly) ──(score below level for `anomaly_duration` s)────────────────▶ withdrawn
    warned (any)     ──(an orange/red alert is active for the metric)──────────────▶ withdrawn
    withdrawn ──(`rearm` seconds of quiet)──▶ idle

It never raises while an alert is active for the metric, and holds at most one warning per
(device, metric): a warning is never raised twice. Events are frozen dataclasses carrying the
expected crossing time, its uncertainty, the confidence, the anomaly score and a sentence for
people. Settings (`parse_predictive`) are resolved per metric and device class and can switch the
whole thing, or the anomaly part, off. Pure: no clock (time is the samples'), no I/O; the whole
state snapshots to plain JSON-able data.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from rules.anomaly import DEFAULT_PARAMS, AnomalyDetector, AnomalyParams
from rules.forecast import Forecast, TrendForecaster
from rules.metrics import METRIC_NAME_PATTERN, canonical, unit_of
from rules.thresholds import DEVICE_CLASSES

SNAPSHOT_VERSION = 1
HOUR = 3600.0
MINUTE = 60.0


class PredictiveConfigError(ValueError):
    """A predictive setting is wrong; names the source, the key and the reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        super().__init__(f"{source}: {key}: {reason}")


class PredictiveStateError(ValueError):
    """A monitor snapshot cannot be restored; the monitor is left unchanged."""


class Change(StrEnum):
    RAISED = "raised"
    WITHDRAWN = "withdrawn"


class WarningKind(StrEnum):
    TREND = "trend"  # forecast to cross the threshold within the horizon
    ANOMALY = "anomaly"  # behaving unusually for a sustained time


class Reason(StrEnum):
    """Why a warning was withdrawn."""

    TREND_REVERSED = "trend_reversed"
    BACK_TO_NORMAL = "back_to_normal"
    ALERT = "alert"  # an orange or red alert took over
    DISABLED = "disabled"


# -- settings ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PredictiveSettings:
    """The resolved settings for one (device class, metric); times in seconds."""

    enabled: bool = True
    horizon: float = 6 * HOUR  # warn when the crossing is expected within this time
    confidence: float = 0.7  # ...with at least this probability
    half_life: float = 1 * HOUR  # memory of the trend fit
    noise_margin: float = 1.0  # the crossing counts from trend + margin x noise (samples breach first)
    bursts: bool = True  # ...or from trend + the usual sustained burst height, on a confidently rising trend
    log_scale: bool = False  # fit the trend to log(value): steady relative growth
    min_history: float = 1 * HOUR  # no forecast from less history than this
    confirm: float = 15 * MINUTE  # a condition must hold this long to raise or withdraw
    anomaly: bool = True  # warn on sustained unusual behaviour too
    anomaly_level: float = 0.5  # calibrated anomaly score (0.5 ~ a one-in-10^5 event)
    anomaly_duration: float = 20 * MINUTE  # the score must stay at or above the level this long
    rearm: float = 6 * HOUR  # quiet time after a withdrawal before the next warning
    refresh: float = 1 * MINUTE  # the crossing forecast is recomputed at most this often (sample time)
    min_step: float = 5.0  # learn from at most one sample per this many seconds of sample time


# Built-in per-metric defaults, under anything configured: latency degrades multiplicatively.
BUILTIN_METRICS: dict[str, dict[str, Any]] = {"latency_ms": {"log_scale": True}}

# TOML key -> (field, converter from the user's unit, check)
_KEYS: dict[str, tuple[str, float | None, str]] = {
    "enabled": ("enabled", None, "bool"),
    "horizon_hours": ("horizon", HOUR, "positive"),
    "confidence": ("confidence", 1.0, "probability"),
    "trend_half_life_hours": ("half_life", HOUR, "positive"),
    "noise_margin": ("noise_margin", 1.0, "not_negative"),
    "bursts": ("bursts", None, "bool"),
    "log_scale": ("log_scale", None, "bool"),
    "min_history_minutes": ("min_history", MINUTE, "not_negative"),
    "confirm_minutes": ("confirm", MINUTE, "not_negative"),
    "anomaly": ("anomaly", None, "bool"),
    "anomaly_level": ("anomaly_level", 1.0, "level"),
    "anomaly_minutes": ("anomaly_duration", MINUTE, "positive"),
    "rearm_hours": ("rearm", HOUR, "not_negative"),
    "forecast_refresh_seconds": ("refresh", 1.0, "not_negative"),
    "min_step_seconds": ("min_step", 1.0, "not_negative"),
}


# What each key means, for the configuration reference (docs/configuration.md).
_MEANINGS: dict[str, str] = {
    "enabled": "predictive warnings on or off",
    "horizon_hours": "warn when the crossing of the orange threshold is expected within this time",
    "confidence": "...with at least this probability (0.5 to below 1)",
    "trend_half_life_hours": "memory of the trend fit",
    "noise_margin": "the crossing counts from trend + this many noise deviations",
    "bursts": "also from trend + the usual sustained burst height, on a confidently rising trend",
    "log_scale": "fit the trend to log(value) (built-in default true for latency_ms)",
    "min_history_minutes": "no trend warning from less history than this",
    "confirm_minutes": "a trend condition must hold this long to raise or to withdraw",
    "anomaly": "warn on sustained unusual behaviour too",
    "anomaly_level": "anomaly score that counts as unusual (0.5 ~ a 1-in-100 000 event)",
    "anomaly_minutes": "...for this long without a break to warn; as long below to withdraw",
    "rearm_hours": "after a withdrawal, quiet this long before the next warning",
    "forecast_refresh_seconds": "recompute the crossing forecast at most this often (sample time; 0: every sample)",
    "min_step_seconds": "learn from at most one sample per series in this time (sample time; the rules still see "
                        "every sample; 0: every sample)",
}


def setting_reference() -> list[tuple[str, Any, str, str]]:
    """(key, default in the key's unit, type, meaning) of every `[predictive]` key."""
    defaults = _user_units(_fields_of(PredictiveSettings()))
    return [(key, defaults[key], "bool" if check == "bool" else "float", _MEANINGS[key])
            for key, (_, _, check) in _KEYS.items()]


class PredictiveConfig:
    """Settings per metric and device class: class.metric over class over metric over defaults."""

    def __init__(
        self,
        defaults: PredictiveSettings | None = None,
        metrics: Mapping[str, Mapping[str, Any]] | None = None,
        classes: Mapping[str, Mapping[str, Any]] | None = None,
        class_metrics: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    ) -> None:
        self.defaults = defaults if defaults is not None else PredictiveSettings()
        self.metrics = {k: dict(v) for k, v in (metrics or {}).items()}
        self.classes = {k: dict(v) for k, v in (classes or {}).items()}
        self.class_metrics = {k: dict(v) for k, v in (class_metrics or {}).items()}
        self._cache: dict[tuple[str | None, str], PredictiveSettings] = {}

    def resolve(self, device_class: str | None, metric: str) -> PredictiveSettings:
        key = (device_class, metric)
        found = self._cache.get(key)
        if found is None:
            changes = {**BUILTIN_METRICS.get(metric, {}), **self.metrics.get(metric, {})}
            if device_class is not None:
                changes.update(self.classes.get(device_class, {}))
                changes.update(self.class_metrics.get((device_class, metric), {}))
            found = self._cache[key] = replace(self.defaults, **changes)
        return found

    def to_dict(self) -> dict[str, Any]:
        """The settings document (in the user's units) that `parse_predictive` reads back."""
        doc = _user_units(_fields_of(self.defaults))
        if self.metrics:
            doc["metrics"] = {m: _user_units(v) for m, v in sorted(self.metrics.items())}
        classes: dict[str, Any] = {c: _user_units(v) for c, v in sorted(self.classes.items())}
        for (cls, metric), values in sorted(self.class_metrics.items()):
            classes.setdefault(cls, {})[metric] = _user_units(values)
        if classes:
            doc["classes"] = classes
        return doc


def _fields_of(settings: PredictiveSettings) -> dict[str, Any]:
    return {f.name: getattr(settings, f.name) for f in fields(settings)}


def _user_units(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (name, unit, _) in _KEYS.items():
        if name in values:
            out[key] = values[name] / unit if unit is not None and unit != 1.0 else values[name]
    return out


def parse_predictive(data: Mapping[str, Any], source: str = "predictive") -> PredictiveConfig:
    """Build the settings from a `[predictive]` table; raise PredictiveConfigError naming the key.

    Layout (TOML):

        [predictive]                     # defaults for every metric
        enabled = true
        horizon_hours = 6
        confidence = 0.9
        [predictive.metrics.cpu_percent] # per metric
        anomaly = false
        [predictive.classes.router]      # per device class ...
        horizon_hours = 3
        [predictive.classes.router.latency_ms]   # ... and metric within the class
        enabled = false
    """
    if not isinstance(data, Mapping):
        raise PredictiveConfigError(source, "predictive", f"must be a table, got {data!r}")
    settings = {k: v for k, v in data.items() if k not in ("metrics", "classes")}
    defaults = replace(PredictiveSettings(), **_settings(settings, "predictive", source))
    metrics: dict[str, dict[str, Any]] = {}
    for metric, table in _table(data.get("metrics", {}), "predictive.metrics", source).items():
        where = f"predictive.metrics.{metric}"
        name = _metric(metric, where, source, metrics)
        metrics[name] = _settings(_table(table, where, source), where, source)
    classes: dict[str, dict[str, Any]] = {}
    class_metrics: dict[tuple[str, str], dict[str, Any]] = {}
    for cls, table in _table(data.get("classes", {}), "predictive.classes", source).items():
        where = f"predictive.classes.{cls}"
        if cls not in DEVICE_CLASSES:
            known = ", ".join(DEVICE_CLASSES)
            raise PredictiveConfigError(source, where, f"unknown device class; expected one of {known}")
        own: dict[str, Any] = {}
        for key, value in _table(table, where, source).items():
            if isinstance(value, Mapping):
                name = _metric(key, f"{where}.{key}", source, {m for c, m in class_metrics if c == cls})
                class_metrics[(cls, name)] = _settings(value, f"{where}.{key}", source)
            else:
                own[key] = value
        classes[cls] = _settings(own, where, source)
    config = PredictiveConfig(defaults, metrics, classes, class_metrics)
    for device_class in (None, *DEVICE_CLASSES):
        for metric in sorted({*metrics, *(m for _, m in class_metrics), "*"}):
            resolved = config.resolve(device_class, metric)
            if resolved.confirm >= resolved.horizon:
                raise PredictiveConfigError(
                    source, f"predictive ({device_class or 'any class'}, {metric})",
                    f"confirm_minutes ({resolved.confirm / MINUTE:g}) must be shorter than the horizon "
                    f"({resolved.horizon / HOUR:g} h), or no warning could ever come in time",
                )
    return config


def _table(value: Any, where: str, source: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PredictiveConfigError(source, where, f"must be a table, got {value!r}")
    return value


def _metric(name: str, where: str, source: str, seen: Collection[str]) -> str:
    """The canonical name of a metric named in the settings (`rules.metrics`)."""
    if not METRIC_NAME_PATTERN.fullmatch(name):
        raise PredictiveConfigError(source, where, "a metric name is lower_snake_case: a-z, then up to 63 of a-z 0-9 _")
    metric = canonical(name)
    if metric in seen:
        raise PredictiveConfigError(source, where, f"{metric} is set twice here (once by an old name); keep one")
    return metric


def _settings(values: Mapping[str, Any], where: str, source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        spec = _KEYS.get(key)
        here = f"{where}.{key}"
        if spec is None:
            raise PredictiveConfigError(source, here, f"unknown setting; expected one of {', '.join(_KEYS)}")
        name, unit, check = spec
        out[name] = _checked(value, unit, check, here, source)
    return out


def _checked(value: Any, unit: float | None, check: str, where: str, source: str) -> Any:
    if check == "bool":
        if not isinstance(value, bool):
            raise PredictiveConfigError(source, where, f"must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PredictiveConfigError(source, where, f"must be a number, got {value!r}")
    number = float(value)
    if check == "positive" and number <= 0:
        raise PredictiveConfigError(source, where, f"must be greater than 0, got {value!r}")
    if check == "not_negative" and number < 0:
        raise PredictiveConfigError(source, where, f"must not be negative, got {value!r}")
    if check == "probability" and not 0.5 <= number < 1:
        raise PredictiveConfigError(source, where, f"must be at least 0.5 and below 1, got {value!r}")
    if check == "level" and not 0 < number <= 1:
        raise PredictiveConfigError(source, where, f"must be above 0 and at most 1, got {value!r}")
    return number * (unit if unit is not None else 1.0)


# -- events ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PredictiveEvent:
    """A predictive warning raised or withdrawn for one (device, metric)."""

    change: Change
    kind: WarningKind
    device_id: str
    metric: str
    ts: float  # the sample that caused it
    value: float
    threshold: float | None
    expected_at: float | None = None  # when the trend is forecast to pass the threshold (Unix s)
    uncertainty: float | None = None  # one standard error of that time, seconds
    confidence: float | None = None  # probability of passing it within the horizon
    score: float = 0.0  # the anomaly score at this sample
    reason: Reason | None = None  # for a withdrawal
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.change.value,
            "kind": self.kind.value,
            "device_id": self.device_id,
            "metric": self.metric,
            "ts": self.ts,
            "value": self.value,
            "threshold": self.threshold,
            "expected_at": self.expected_at,
            "uncertainty": self.uncertainty,
            "confidence": self.confidence,
            "score": self.score,
            "reason": self.reason.value if self.reason is not None else None,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictiveEvent:
        reason = data["reason"]
        return cls(
            Change(data["event"]), WarningKind(data["kind"]), str(data["device_id"]), str(data["metric"]),
            float(data["ts"]), float(data["value"]), _opt(data["threshold"]), _opt(data["expected_at"]),
            _opt(data["uncertainty"]), _opt(data["confidence"]), float(data["score"]),
            Reason(reason) if reason is not None else None, str(data["message"]),
        )


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def format_duration(seconds: float) -> str:
    """A rough, readable duration: "a few minutes", "40 min", "3 h", "2.5 h", "2 days"."""
    minutes = seconds / MINUTE
    if minutes < 7.5:
        return "a few minutes"
    if minutes < 55:
        return f"{5 * round(minutes / 5)} min"
    hours = seconds / HOUR
    if hours < 10:
        return f"{round(hours * 2) / 2:g} h"
    if hours < 48:
        return f"{round(hours)} h"
    return f"{round(hours / 24)} days"


def format_value(metric: str, value: float) -> str:
    unit = unit_of(metric)
    return f"{value:g} {unit}" if unit else f"{value:g}"


# -- the monitor -------------------------------------------------------------------------------------


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
        series.pending = _opt(data["pending"])
        series.high_since = _opt(data["high_since"])
        series.low_since = _opt(data["low_since"])
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
        self,
        device_id: str,
        metric: str,
        ts: float,
        value: float,
        threshold: float | None,
        alert_active: bool,
        device_class: str | None = None,
    ) -> tuple[PredictiveEvent, ...]:
        """Learn one sample of one metric; the warnings it raises or withdraws (usually none).

        `threshold` is the metric's orange threshold for this device (None: anomaly warnings
        only); `alert_active` says whether an orange or red alert is active for it right now.
        A sample not newer than the last one of the series is ignored.
        """
        settings = self._config.resolve(device_class, metric)
        device = self._series.get(device_id)
        series = device.get(metric) if device is not None else None
        if not settings.enabled:
            if series is not None and series.warning is not None:
                return (self._withdraw(series, Reason.DISABLED, ts, value, 0.0),)
            return ()
        if series is None:
            if device is None:
                device = self._series[device_id] = {}
            series = device[metric] = _Series(settings, self._params)
        elif ts - series.last_ts < settings.min_step or ts <= series.last_ts:
            # Not newer, or sooner than the monitor learns: a trend over hours gains nothing from
            # 1 Hz samples, and the detector keeps the cadence it was measured at. Only the
            # hand-over to an alert cannot wait for the next sample it learns from.
            if alert_active and series.warning is not None and ts > series.last_ts:
                return (self._withdraw(series, Reason.ALERT, ts, value, series.detector.unusual, settings),)
            return ()
        series.last_ts = ts
        forecaster = series.forecaster
        if forecaster.half_life != settings.half_life or forecaster.log_scale != settings.log_scale:
            forecaster = series.forecaster = _forecaster(settings)  # the trend settings changed
            series.forget_forecast()
        forecaster.update(ts, value)
        detector = series.detector
        detector.update(ts, value)
        score = detector.unusual
        if score >= settings.anomaly_level:
            if series.high_since is None:
                series.high_since = ts
            series.low_since = None
        else:
            if series.low_since is None:
                series.low_since = ts
            series.high_since = None
        if alert_active:
            series.pending = None
            if series.warning is not None:
                return (self._withdraw(series, Reason.ALERT, ts, value, score, settings),)
            return ()
        if series.warning is None:
            if ts < series.quiet_until:
                series.pending = None
                return ()
            return self._maybe_raise(series, settings, device_id, metric, ts, value, threshold, score)
        return self._maybe_withdraw(series, settings, ts, value, threshold, score)

    def _maybe_raise(
        self, series: _Series, settings: PredictiveSettings, device_id: str, metric: str, ts: float,
        value: float, threshold: float | None, score: float,
    ) -> tuple[PredictiveEvent, ...]:
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
                assert forecast is not None and forecast.eta is not None and threshold is not None
                series.pending = None
                series.warning = _trend_warning(device_id, metric, ts, value, threshold, forecast, score)
                return (series.warning,)
        else:
            series.pending = None
        if settings.anomaly and series.high_since is not None and ts - series.high_since >= settings.anomaly_duration:
            series.pending = None
            series.warning = _anomaly_warning(device_id, metric, ts, value, threshold, score, settings)
            return (series.warning,)
        return ()

    def _maybe_withdraw(
        self, series: _Series, settings: PredictiveSettings, ts: float, value: float, threshold: float | None,
        score: float,
    ) -> tuple[PredictiveEvent, ...]:
        warning = series.warning
        assert warning is not None
        if warning.kind is WarningKind.ANOMALY:
            if series.low_since is not None and ts - series.low_since >= settings.anomaly_duration:
                return (self._withdraw(series, Reason.BACK_TO_NORMAL, ts, value, score, settings),)
            return ()
        forecast = _crossing_forecast(series, settings, ts, threshold)
        since = ts if series.pending is None else series.pending
        if not _still_rising(forecast) and ts - since >= settings.confirm and series.forecast_ts < ts:
            forecast = _crossing_forecast(series, settings, ts, threshold, fresh=True)  # as for a raise
        if _still_rising(forecast):
            series.pending = None
            return ()
        series.pending = since
        if ts - since >= settings.confirm:
            return (self._withdraw(series, Reason.TREND_REVERSED, ts, value, score, settings),)
        return ()

    def _withdraw(
        self, series: _Series, reason: Reason, ts: float, value: float, score: float,
        settings: PredictiveSettings | None = None,
    ) -> PredictiveEvent:
        warning = series.warning
        assert warning is not None
        series.warning = None
        series.pending = None
        series.quiet_until = ts + (settings.rearm if settings is not None else 0.0)
        return PredictiveEvent(
            Change.WITHDRAWN, warning.kind, warning.device_id, warning.metric, ts, value, warning.threshold,
            score=score, reason=reason, message=_withdrawal_message(warning, reason, value, settings),
        )

    # -- queries ----------------------------------------------------------------------------------------

    def warnings(self) -> dict[tuple[str, str], PredictiveEvent]:
        """The open warnings, each as the event that raised it."""
        return {
            (device_id, metric): series.warning
            for device_id, metrics in self._series.items()
            for metric, series in metrics.items()
            if series.warning is not None
        }

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


# -- the sentences ---------------------------------------------------------------------------------


def _trend_warning(
    device_id: str, metric: str, ts: float, value: float, threshold: float, forecast: Forecast, score: float
) -> PredictiveEvent:
    eta = forecast.eta
    assert eta is not None
    spread = forecast.eta_sd or 0.0
    when = "about now" if eta < 7.5 * MINUTE else f"in about {format_duration(eta)}"
    margin = f" (± {format_duration(spread)})" if spread >= 7.5 * MINUTE else ""
    rise = forecast.rise_per_hour()
    if forecast.log_scale:
        pace = f"growing {rise:.0f} % per hour"
    else:
        pace = f"rising {format_value(metric, round(rise, 2))} per hour"
    message = (
        f"{metric} on {device_id} forecast to pass {format_value(metric, threshold)} {when}{margin}; "
        f"now {format_value(metric, round(value, 2))}, {pace}"
    )
    return PredictiveEvent(
        Change.RAISED, WarningKind.TREND, device_id, metric, ts, value, threshold,
        expected_at=ts + eta, uncertainty=forecast.eta_sd, confidence=forecast.confidence, score=score,
        message=message,
    )


def _anomaly_warning(
    device_id: str, metric: str, ts: float, value: float, threshold: float | None, score: float,
    settings: PredictiveSettings,
) -> PredictiveEvent:
    limit = f" before it reaches {format_value(metric, threshold)}" if threshold is not None else ""
    message = (
        f"{metric} on {device_id} behaving unusually for {format_duration(settings.anomaly_duration)} "
        f"(anomaly score {score:.2f}); worth a look{limit}"
    )
    return PredictiveEvent(
        Change.RAISED, WarningKind.ANOMALY, device_id, metric, ts, value, threshold, score=score,
        message=message,
    )


def _withdrawal_message(
    warning: PredictiveEvent, reason: Reason, value: float, settings: PredictiveSettings | None
) -> str:
    subject = f"{warning.metric} on {warning.device_id}"
    now = format_value(warning.metric, round(value, 2))
    if reason is Reason.TREND_REVERSED:
        assert warning.threshold is not None and settings is not None
        return (
            f"{subject}: trend reversed, no longer forecast to pass "
            f"{format_value(warning.metric, warning.threshold)} within {format_duration(settings.horizon)}; now {now}"
        )
    if reason is Reason.BACK_TO_NORMAL:
        return f"{subject} back to its usual behaviour; now {now}"
    if reason is Reason.ALERT:
        return f"{subject}: superseded by the threshold alert now active; now {now}"
    return f"{subject}: predictive warnings switched off"
