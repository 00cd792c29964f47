"""The collector's predictive stage: `rules.predict.PredictiveMonitor` fed after the rule engine.

Every accepted sample goes to the monitor with its metrics' orange thresholds for the device (from
the same thresholds as the rule engine) and the metrics with an orange or red alert active after
the engine saw it. The stage keeps what it needs for that in memory, cheaply per sample: the active
alerts (from the engine's transitions), each device's class, and the resolved thresholds.

It also decides which devices' monitor state is written with a batch (`take`): a device whose
warning was raised or withdrawn always (in the transaction of its ticket change, so a warning is
never raised twice across a restart), the others at most every `flush_s`. Each row carries the
device's latest forecast per metric, which the server shows (it does not host the monitor), with
the open warning's sentence (`tickets.notify.message.predictive_text`).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from common.config import ConfigError, Settings, read_toml
from rules import Event, Sample, Thresholds, Transition
from rules.predict import PredictiveConfig, PredictiveConfigError, PredictiveEvent, PredictiveMonitor, parse_predictive
from tickets.notify.message import predictive_text

logger = logging.getLogger(__name__)

SECTION = "predictive"


def load_predictive(path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> PredictiveConfig:
    """The `[predictive]` table of the settings file (defaults without one); `EDGEWATCH_PREDICTIVE_ENABLED`
    overrides its top-level `enabled`. A wrong value is a ConfigError naming the file and key."""
    table: dict[str, Any] = {}
    if path is not None:
        found = read_toml(path).get(SECTION, {})
        if not isinstance(found, dict):
            raise ConfigError(str(path), SECTION, "must be a table ([predictive])")
        table = dict(found)
    # The switch goes through Settings so that the environment can turn predictive warnings off and
    # the configuration reference lists it; the rest of the table is parse_predictive's to check.
    switch = Settings(table, source=str(path) if path is not None else "(defaults)", section=SECTION,
                      environ=environ)
    table["enabled"] = switch.bool("enabled", True, env="PREDICTIVE_ENABLED")
    try:
        return parse_predictive(table, str(path) if path is not None else "(defaults)")
    except PredictiveConfigError as exc:
        raise ConfigError(exc.source, exc.key, exc.reason) from None


class PredictiveConfigSource:
    """Re-reads `[predictive]` when the settings file changes, so new settings apply without a restart."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._stamp = self._mtime()

    def _mtime(self) -> float | None:
        try:
            return self._path.stat().st_mtime if self._path is not None else None
        except OSError:
            return None

    def poll(self) -> PredictiveConfig | None:
        """New settings when the file changed since the last poll; None otherwise or when they are wrong."""
        stamp = self._mtime()
        if stamp is None or stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            config = load_predictive(self._path)
        except ConfigError as exc:
            logger.error("predictive settings not reloaded, the previous ones stay in force: %s", exc)
            return None
        logger.info("predictive settings reloaded from %s", self._path)
        return config


class PredictiveStage:
    def __init__(self, monitor: PredictiveMonitor, thresholds: Thresholds, *, flush_s: float = 300.0,
                 max_rows: int = 500) -> None:
        self.monitor = monitor
        self._thresholds = thresholds
        self._flush_s = flush_s
        self._max_rows = max_rows
        self._alerts: dict[str, set[str]] = {}  # device -> metrics with an active alert
        self._classes: dict[str, str | None] = {}
        self._limits: dict[str, dict[str, float | None]] = {}  # device -> metric -> orange threshold
        self._last_ts: dict[str, float] = {}
        self._dirty: OrderedDict[str, float] = OrderedDict()  # device -> since when its state is unwritten

    # -- what the collector tells it -------------------------------------------------------------

    def set_config(self, config: PredictiveConfig) -> None:
        self.monitor.set_config(config)

    def set_thresholds(self, thresholds: Thresholds) -> None:
        self._thresholds = thresholds
        self._limits.clear()

    def set_device_class(self, device_id: str, device_class: str | None) -> None:
        if self._classes.get(device_id) != device_class:
            self._classes[device_id] = device_class
            self._limits.pop(device_id, None)

    def restore(self, device_id: str, state: Mapping[str, Any], last_ts: float | None) -> None:
        """A device's stored monitor state (raises PredictiveStateError, changing nothing, when bad)."""
        self.monitor.restore_device(device_id, state)
        if last_ts is not None:
            self._last_ts[device_id] = last_ts

    def load_alerts(self, active: Iterable[tuple[str, str]]) -> None:
        """The alerts active in the restored rule engine."""
        self._alerts = {}
        for device_id, metric in active:
            self._alerts.setdefault(device_id, set()).add(metric)

    def forget_alert(self, device_id: str, metric: str) -> None:
        """An alert the rule engine forgot (re-armed after a forced resolve)."""
        self._alerts.get(device_id, set()).discard(metric)

    # -- the hot path -----------------------------------------------------------------------------

    def feed(self, sample: Sample, transitions: Iterable[Transition]) -> tuple[PredictiveEvent, ...]:
        """Learn an accepted sample (after the rule engine produced `transitions` for it)."""
        device_id = sample.device_id
        alerts = self._alerts.get(device_id)
        for t in transitions:
            if alerts is None:
                alerts = self._alerts[device_id] = set()
            if t.event is Event.CLEARED:
                alerts.discard(t.metric)
            else:
                alerts.add(t.metric)
        if sample.device_class is not None:
            self.set_device_class(device_id, sample.device_class)
        device_class = self._classes.get(device_id) or self._thresholds.device_classes.get(device_id)
        limits = self._limits.get(device_id)
        if limits is None:
            limits = self._limits[device_id] = {}
        for metric in sample.metrics:
            if metric not in limits:
                rule = self._thresholds.rule_for(device_id, device_class, metric)
                limits[metric] = rule.threshold if rule is not None else None
        if device_class != sample.device_class:  # the registry's or the thresholds file's class
            sample = Sample(device_id, sample.seq, sample.ts, sample.metrics, sample.instance, device_class)
        self._last_ts[device_id] = sample.ts
        return self.monitor.feed(sample, limits, alerts if alerts is not None else ())

    # -- what is written ---------------------------------------------------------------------------

    def take(self, now: float, touched: Iterable[str], urgent: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
        """Rows due to be written: the `urgent` devices (a warning raised or withdrawn), then those
        whose state has been unwritten for `flush_s`, at most `max_rows` of those per batch.
        `touched`: the devices fed in this batch."""
        dirty = self._dirty
        for device_id in touched:
            if device_id not in dirty:
                dirty[device_id] = now
        rows = {device_id: self.row(device_id) for device_id in set(urgent)}
        for device_id in rows:
            dirty.pop(device_id, None)
        while dirty and len(rows) < self._max_rows:
            device_id, since = next(iter(dirty.items()))
            if now - since < self._flush_s:
                break
            dirty.popitem(last=False)
            rows[device_id] = self.row(device_id)
        return {device_id: row for device_id, row in rows.items() if row["state"] is not None}

    def drain(self) -> dict[str, dict[str, Any]]:
        """Every unwritten device's row (at shutdown)."""
        rows = {device_id: self.row(device_id) for device_id in self._dirty}
        self._dirty.clear()
        return {device_id: row for device_id, row in rows.items() if row["state"] is not None}

    def row(self, device_id: str) -> dict[str, Any]:
        """The device's monitor state and its latest forecast per metric."""
        state = self.monitor.snapshot_device(device_id)
        return {"state": state, "forecasts": self.forecasts(device_id, state or {})}

    def forecasts(self, device_id: str, state: Mapping[str, Any]) -> dict[str, Any]:
        """Per metric: the trend against the orange threshold, the anomaly score and the open warning."""
        monitor = self.monitor
        device_class = self._classes.get(device_id) or self._thresholds.device_classes.get(device_id)
        out: dict[str, Any] = {}
        for metric, series in state.items():
            rule = self._thresholds.rule_for(device_id, device_class, metric)
            settings = monitor.config.resolve(device_class, metric)
            entry: dict[str, Any] = {
                "ts": self._last_ts.get(device_id), "threshold": rule.threshold if rule is not None else None,
                "horizon_s": settings.horizon, "enabled": settings.enabled,
                "anomaly_score": monitor.anomaly_score(device_id, metric), "forecast": None, "warning": None,
            }
            if rule is not None:
                f = monitor.forecast(device_id, metric, rule.threshold, device_class)
                if f is not None:
                    entry["forecast"] = {
                        "level": f.level, "slope": f.slope, "log_scale": f.log_scale, "eta": f.eta,
                        "eta_sd": f.eta_sd, "confidence": f.confidence, "span_s": f.span,
                        "level_sd": f.level_sd, "slope_sd": f.slope_sd,  # the server's uncertainty band
                        "reliable": f.span >= settings.min_history,
                    }
            warning = series.get("warning")
            if warning is not None:
                text = predictive_text(PredictiveEvent.from_dict(warning))
                entry["warning"] = {"kind": warning["kind"], "message": text,
                                    "expected_at": warning["expected_at"], "raised_ts": warning["ts"]}
            out[metric] = entry
        return out
