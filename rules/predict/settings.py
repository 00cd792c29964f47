"""Predictive settings: the `[predictive]` table, validated, and resolved per device class and metric.

Owns `PredictiveSettings` (the resolved values for one (device class, metric), times in seconds),
`PredictiveConfig` (the layers: class.metric over class over metric over the built-in per-metric
defaults over the top-level values), `parse_predictive` (the TOML table in the user's units, every
mistake a `PredictiveConfigError` naming the source, the key and the reason) and
`setting_reference` (every key with its default and meaning, for docs/configuration.md).
Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from rules.metrics import METRIC_NAME_PATTERN, canonical
from rules.thresholds import DEVICE_CLASSES

HOUR = 3600.0
MINUTE = 60.0


class PredictiveConfigError(ValueError):
    """A predictive setting is wrong; names the source, the key and the reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        super().__init__(f"{source}: {key}: {reason}")


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
