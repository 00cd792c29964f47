"""Threshold configuration: defaults per metric, overrides per device class and per device.

`parse_thresholds` validates a decoded settings document (TOML or JSON, read by the caller) and
names the source, the key and the reason for every mistake, so an operator can fix a file without
guessing. Metric names are those of `rules.metrics`; an old spelling there (e.g. `temp_c`) is
read as its canonical name. Layout (TOML):

    [rules]                        # optional, these are the defaults
    orange_count = 3               # consecutive breaches that raise orange
    clear_count = 3                # consecutive samples at or below the clear level that clear
    red_factor = 1.5               # red when value > red_factor x threshold

    [metrics.cpu_percent]
    threshold = 80
    red = 95                       # optional: red when value > 95 instead of red_factor x 80
    clear_level = 75               # optional hysteresis: clearing needs value <= 75

    [classes.router]
    latency_ms = 250               # shorthand for [classes.router.latency_ms] threshold = 250

    [devices."gw-0001"]
    device_class = "gateway"
    mem_percent = { threshold = 50, clear_count = 5 }
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from rules.metrics import ALIASES, METRIC_NAME_PATTERN, METRIC_NAME_RULE, METRICS, canonical

DEVICE_CLASSES = ("gateway", "router")

RULE_KEYS = ("orange_count", "clear_count", "red_factor")
METRIC_KEYS = ("threshold", "red", "clear_level", "orange_count", "clear_count", "custom", "bounded")


class ThresholdError(ValueError):
    """A threshold setting is wrong; the message names the source, the key and the reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        super().__init__(f"{source}: {key}: {reason}")


@dataclass(frozen=True, slots=True)
class MetricRule:
    """The resolved rule for one (device, metric)."""

    threshold: float
    red_level: float
    clear_level: float
    orange_count: int = 3
    clear_count: int = 3


@dataclass(frozen=True, slots=True)
class _Override:
    threshold: float | None = None
    red: float | None = None
    clear_level: float | None = None
    orange_count: int | None = None
    clear_count: int | None = None


class Thresholds:
    """Resolves the rule for a (device, device class, metric): device over class over default."""

    def __init__(
        self,
        defaults: Mapping[str, _Override] | None = None,
        classes: Mapping[str, Mapping[str, _Override]] | None = None,
        devices: Mapping[str, Mapping[str, _Override]] | None = None,
        device_classes: Mapping[str, str] | None = None,
        *,
        orange_count: int = 3,
        clear_count: int = 3,
        red_factor: float = 1.5,
        bounded: Mapping[str, bool] | None = None,
    ) -> None:
        self.orange_count = orange_count
        self.clear_count = clear_count
        self.red_factor = red_factor
        self.defaults: dict[str, _Override] = {
            name: _Override(threshold=info.default_threshold)
            for name, info in METRICS.items()
            if info.default_threshold is not None
        }
        self.defaults.update(defaults or {})
        self.classes = {cls: dict(table) for cls, table in (classes or {}).items()}
        self.devices = {dev: dict(table) for dev, table in (devices or {}).items()}
        self.device_classes = dict(device_classes or {})
        self.bounded = {name: info.bounded for name, info in METRICS.items()}
        self.bounded.update(bounded or {})
        # Resolved rules, shared by every device without overrides of its own: the collector asks
        # for a rule per metric per sample, and this object never changes once built.
        self._resolved: dict[tuple[str | None, str | None, str], MetricRule | None] = {}

    def class_of(self, device_id: str) -> str | None:
        return self.device_classes.get(device_id)

    def rule_for(self, device_id: str, device_class: str | None, metric: str) -> MetricRule | None:
        """The rule for this metric on this device, or None when the metric has no threshold."""
        if device_class is None:
            device_class = self.device_classes.get(device_id)
        key = (device_id if device_id in self.devices else None, device_class, metric)
        try:
            return self._resolved[key]
        except KeyError:
            rule = self._resolved[key] = self._resolve(device_id, device_class, metric)
            return rule

    def _resolve(self, device_id: str, device_class: str | None, metric: str) -> MetricRule | None:
        merged = self._merged(device_id, device_class, metric)
        if merged.threshold is None:
            return None
        threshold = merged.threshold
        return MetricRule(
            threshold=threshold,
            red_level=merged.red if merged.red is not None else threshold * self.red_factor,
            clear_level=merged.clear_level if merged.clear_level is not None else threshold,
            orange_count=merged.orange_count or self.orange_count,
            clear_count=merged.clear_count or self.clear_count,
        )

    def _merged(self, device_id: str, device_class: str | None, metric: str) -> _Override:
        layers = [self.defaults.get(metric)]
        if device_class is None:
            device_class = self.device_classes.get(device_id)
        if device_class is not None:
            layers.append(self.classes.get(device_class, {}).get(metric))
        layers.append(self.devices.get(device_id, {}).get(metric))
        merged = _Override()
        for layer in layers:
            if layer is not None:
                merged = _merge(merged, layer)
        return merged

    def to_dict(self) -> dict[str, Any]:
        """The settings document this object was parsed from (round-trips through parse_thresholds)."""

        def table(overrides: Mapping[str, _Override]) -> dict[str, Any]:
            return {name: _override_dict(o) for name, o in sorted(overrides.items())}

        custom = {name for name in self.defaults if name not in METRICS}
        metrics = table(self.defaults)
        for name in custom:
            metrics[name]["custom"] = True
            metrics[name]["bounded"] = self.bounded.get(name, False)
        devices: dict[str, Any] = {dev: table(t) for dev, t in sorted(self.devices.items())}
        for dev, cls in sorted(self.device_classes.items()):
            devices.setdefault(dev, {})["device_class"] = cls
        return {
            "rules": {
                "orange_count": self.orange_count,
                "clear_count": self.clear_count,
                "red_factor": self.red_factor,
            },
            "metrics": metrics,
            "classes": {cls: table(t) for cls, t in sorted(self.classes.items())},
            "devices": devices,
        }


def _merge(base: _Override, layer: _Override) -> _Override:
    changes = {key: getattr(layer, key) for key in base.__dataclass_fields__ if getattr(layer, key) is not None}
    # A new threshold without its own clear or red level must not inherit levels meant for another one.
    if layer.threshold is not None:
        changes.setdefault("clear_level", None)
        changes.setdefault("red", None)
    return replace(base, **changes)


def _alias_note(first: str, second: str) -> str:
    old = first if first in ALIASES else second
    return f"{old} is the old name of {ALIASES[old]}"


def _override_dict(override: _Override) -> dict[str, Any]:
    return {key: getattr(override, key) for key in override.__dataclass_fields__ if getattr(override, key) is not None}


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.orange_count = 3
        self.clear_count = 3
        self.red_factor = 1.5
        self.bounded = {name: info.bounded for name, info in METRICS.items()}
        self.written: dict[str, str] = {}  # a metric's key with its canonical name -> as the document spells it

    def fail(self, key: str, reason: str) -> ThresholdError:
        return ThresholdError(self.source, key, reason)

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a table, got {value!r}")
        return value

    def positive_number(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number) or number <= 0:
            raise self.fail(key, f"must be a positive number, got {value!r}")
        return number

    def count(self, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(key, f"must be a whole number of samples, at least 1, got {value!r}")
        return value

    def rules(self, data: Mapping[str, Any]) -> None:
        for key, value in data.items():
            where = f"rules.{key}"
            if key == "red_factor":
                self.red_factor = self.positive_number(value, where)
                if self.red_factor <= 1:
                    raise self.fail(where, f"must be greater than 1 (red is above orange), got {value!r}")
            elif key == "orange_count":
                self.orange_count = self.count(value, where)
            elif key == "clear_count":
                self.clear_count = self.count(value, where)
            else:
                raise self.fail(where, f"unknown setting; expected one of {', '.join(RULE_KEYS)}")

    def metric_name(self, name: str, key: str, custom: set[str]) -> str:
        """The canonical name of a metric named in the document."""
        name = canonical(name)
        if name not in METRICS and name not in custom:
            known = ", ".join(sorted([*METRICS, *custom]))
            raise self.fail(
                key,
                f"unknown metric {name!r} (known: {known}); "
                "declare a metric of your own under [metrics.NAME] with custom = true",
            )
        return name

    def metric_entries(self, table: Mapping[str, Any], prefix: str, custom: set[str]) -> list[tuple[str, str, Any]]:
        """(canonical name, key, value) of each metric in a table; a metric named twice is an error."""
        entries: dict[str, tuple[str, str, Any]] = {}
        for name, value in table.items():
            key = f"{prefix}.{name}"
            metric = self.metric_name(name, key, custom)
            if metric in entries:
                old = entries[metric][1].removeprefix(prefix + ".")
                raise self.fail(key, f"{old} and {name} are the same metric ({_alias_note(old, name)}); keep one")
            entries[metric] = (metric, key, value)
            self.written[f"{prefix}.{metric}"] = key
        return list(entries.values())

    def override(self, value: Any, key: str, metric: str, *, declaring: bool = False) -> _Override:
        shorthand = not isinstance(value, Mapping)
        if shorthand:
            value = {"threshold": value}
        fields: dict[str, Any] = {}
        for sub, sub_value in value.items():
            where = key if shorthand else f"{key}.{sub}"  # the shorthand form has no sub-key to name
            if sub in ("threshold", "red", "clear_level"):
                fields[sub] = self.positive_number(sub_value, where)
            elif sub in ("orange_count", "clear_count"):
                fields[sub] = self.count(sub_value, where)
            elif sub in ("custom", "bounded") and declaring:
                if not isinstance(sub_value, bool):
                    raise self.fail(where, f"must be true or false, got {sub_value!r}")
            else:
                allowed = METRIC_KEYS if declaring else METRIC_KEYS[:5]
                raise self.fail(where, f"unknown setting; expected one of {', '.join(allowed)}")
        result = _Override(**fields)
        self.check_levels(result, key, metric)
        return result

    def check_levels(self, override: _Override, key: str, metric: str) -> None:
        threshold = override.threshold
        if threshold is None:
            return
        if override.clear_level is not None and override.clear_level > threshold:
            raise self.fail(
                f"{key}.clear_level",
                f"clear level {override.clear_level:g} is above the threshold {threshold:g}; it must be at or below it",
            )
        bounded = self.bounded.get(metric, False)
        red = override.red
        if red is not None:
            if red <= threshold:
                raise self.fail(
                    f"{key}.red", f"red level {red:g} is not above the threshold {threshold:g}; it must be above it"
                )
            if bounded and red >= 100:
                raise self.fail(
                    f"{key}.red",
                    f"{metric} is a percentage: a red level of {red:g} % can never be exceeded (red is a value "
                    "above it), so red could never fire; use a red level below 100",
                )
            return
        red_level = threshold * self.red_factor
        if bounded and red_level >= 100:
            raise self.fail(
                key,
                f"{metric} is a percentage: its red level {self.red_factor:g} x {threshold:g} = "
                f"{red_level:g} % can never be exceeded, so red could never fire; "
                f"use a threshold below {100 / self.red_factor:.2f}, or give it a red level below 100 (red = N)",
            )


def with_devices(
    document: Mapping[str, Any], overrides: Iterable[tuple[str, Mapping[str, Any] | None, str | None]]
) -> dict[str, Any]:
    """A copy of `document` with per-device overrides laid over its `[devices.ID]` tables.

    Each override is (device id, its own thresholds table or None, its registry class or None).
    The device's table in the document is kept and the override's metrics replace the same metrics
    there; a class given replaces the document's `device_class`. The collector (all devices at once)
    and the server (one device, to validate and to chart) call this same function, so both resolve
    the same thresholds. Validation is `parse_thresholds`'s."""
    result = copy.deepcopy(dict(document))
    found = result.get("devices", {})
    if not isinstance(found, Mapping):
        return result  # parse_thresholds names what is wrong with it
    devices = dict(found)
    for device_id, table, device_class in overrides:
        current = devices.get(device_id, {})
        if not isinstance(current, Mapping):
            continue  # as above
        entry = dict(current)
        if isinstance(table, Mapping):
            entry.update({k: v for k, v in table.items() if k != "device_class"})
        if device_class:
            entry["device_class"] = device_class
        if entry:
            devices[device_id] = entry
    if devices:
        result["devices"] = devices
    return result


def parse_thresholds(data: Mapping[str, Any], source: str = "thresholds") -> Thresholds:
    """Build `Thresholds` from a settings document; raise ThresholdError naming source, key, reason."""
    parser = _Parser(source)
    for key in data:
        if key not in ("rules", "metrics", "classes", "devices"):
            raise parser.fail(key, "unknown section; expected rules, metrics, classes or devices")
    parser.rules(parser.table(data.get("rules", {}), "rules"))

    metrics_table = parser.table(data.get("metrics", {}), "metrics")
    custom: set[str] = set()
    for name, value in metrics_table.items():
        # `custom = true` on a metric of the catalogue changes nothing: its bounds are known.
        if isinstance(value, Mapping) and value.get("custom") is True and canonical(name) not in METRICS:
            if METRIC_NAME_PATTERN.fullmatch(name) is None:
                raise parser.fail(f"metrics.{name}",
                                  f"a metric name is {METRIC_NAME_RULE}: no sample can carry {name!r}")
            custom.add(name)
            parser.bounded[name] = bool(value.get("bounded", False))
    defaults: dict[str, _Override] = {}
    for name, key, value in parser.metric_entries(metrics_table, "metrics", custom):
        defaults[name] = parser.override(value, key, name, declaring=True)
        if name in custom and defaults[name].threshold is None:
            raise parser.fail(f"{key}.threshold", "a custom metric needs a threshold")

    classes: dict[str, dict[str, _Override]] = {}
    for cls, table in parser.table(data.get("classes", {}), "classes").items():
        if cls not in DEVICE_CLASSES:
            raise parser.fail(f"classes.{cls}", f"unknown device class; expected one of {', '.join(DEVICE_CLASSES)}")
        classes[cls] = {}
        for name, key, value in parser.metric_entries(parser.table(table, f"classes.{cls}"), f"classes.{cls}", custom):
            classes[cls][name] = parser.override(value, key, name)

    devices: dict[str, dict[str, _Override]] = {}
    device_classes: dict[str, str] = {}
    for dev, table in parser.table(data.get("devices", {}), "devices").items():
        devices[dev] = {}
        entries = dict(parser.table(table, f"devices.{dev}"))
        if "device_class" in entries:
            value = entries.pop("device_class")
            if value not in DEVICE_CLASSES:
                raise parser.fail(
                    f"devices.{dev}.device_class",
                    f"unknown device class {value!r}; expected one of {', '.join(DEVICE_CLASSES)}",
                )
            device_classes[dev] = value
        for name, key, value in parser.metric_entries(entries, f"devices.{dev}", custom):
            devices[dev][name] = parser.override(value, key, name)

    thresholds = Thresholds(
        defaults,
        classes,
        devices,
        device_classes,
        orange_count=parser.orange_count,
        clear_count=parser.clear_count,
        red_factor=parser.red_factor,
        bounded=parser.bounded,
    )
    _check_resolved(thresholds, parser)
    return thresholds


def _check_resolved(thresholds: Thresholds, parser: _Parser) -> None:
    """A clear level or red level can also go wrong once layers combine: check every resolved rule."""
    for name in thresholds.defaults:
        _check_rule(thresholds._merged("", None, name), parser, f"metrics.{name}", name)
    for cls, table in thresholds.classes.items():
        for name in table:
            _check_rule(thresholds._merged("", cls, name), parser, f"classes.{cls}.{name}", name)
    for dev, table in thresholds.devices.items():
        for name in table:
            _check_rule(thresholds._merged(dev, None, name), parser, f"devices.{dev}.{name}", name)


def _check_rule(merged: _Override, parser: _Parser, key: str, metric: str) -> None:
    key = parser.written.get(key, key)
    if merged.threshold is None:
        raise parser.fail(key, f"{metric} has no threshold here; give one with threshold = N")
    parser.check_levels(merged, key, metric)
