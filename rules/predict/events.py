"""Predictive warning events: the structured facts of a warning raised or withdrawn.

Owns `PredictiveEvent` and its vocabulary (`Change`, `WarningKind`, `Reason`), the builders the
monitor makes them with, and their plain-dict form (what snapshots, ticket details and the API
carry). An event holds facts only — kind, metric, values, expected time, horizon, confidence,
anomaly score, reason; the sentence people read is composed from them where texts live
(`tickets.notify.message.predictive_text`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rules.forecast import Forecast


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
    horizon: float | None = None  # trend warnings: the horizon the trend is judged against, seconds
    rise_per_hour: float | None = None  # trend raise: the trend's rise per hour (a percentage on a log scale)
    log_scale: bool = False  # trend raise: the trend is fitted to log(value), so it grows by a percentage
    unusual_for: float | None = None  # anomaly raise: how long the score had stayed high, seconds

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
            "horizon": self.horizon,
            "rise_per_hour": self.rise_per_hour,
            "log_scale": self.log_scale,
            "unusual_for": self.unusual_for,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictiveEvent:
        """The inverse of `to_dict`. Events saved by earlier releases lack the last four facts (and
        carry their sentence as "message", which is not read): those come back unknown."""
        reason = data["reason"]
        return cls(
            Change(data["event"]), WarningKind(data["kind"]), str(data["device_id"]), str(data["metric"]),
            float(data["ts"]), float(data["value"]), opt_float(data["threshold"]), opt_float(data["expected_at"]),
            opt_float(data["uncertainty"]), opt_float(data["confidence"]), float(data["score"]),
            Reason(reason) if reason is not None else None, opt_float(data.get("horizon")),
            opt_float(data.get("rise_per_hour")), bool(data.get("log_scale", False)),
            opt_float(data.get("unusual_for")),
        )


def opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def trend_raised(
    device_id: str, metric: str, ts: float, value: float, threshold: float, forecast: Forecast, score: float,
    horizon: float,
) -> PredictiveEvent:
    """A trend warning from the forecast that crosses `threshold` within `horizon`."""
    eta = forecast.eta
    assert eta is not None
    return PredictiveEvent(
        Change.RAISED, WarningKind.TREND, device_id, metric, ts, value, threshold,
        expected_at=ts + eta, uncertainty=forecast.eta_sd, confidence=forecast.confidence, score=score,
        horizon=horizon, rise_per_hour=forecast.rise_per_hour(), log_scale=forecast.log_scale,
    )


def anomaly_raised(
    device_id: str, metric: str, ts: float, value: float, threshold: float | None, score: float, unusual_for: float
) -> PredictiveEvent:
    """An anomaly warning: the score stayed at or above its level for `unusual_for` seconds."""
    return PredictiveEvent(
        Change.RAISED, WarningKind.ANOMALY, device_id, metric, ts, value, threshold, score=score,
        unusual_for=unusual_for,
    )


def withdrawn(
    warning: PredictiveEvent, reason: Reason, ts: float, value: float, score: float, horizon: float | None
) -> PredictiveEvent:
    """The withdrawal of the open `warning` (its raise event); `horizon` for a trend warning's."""
    return PredictiveEvent(
        Change.WITHDRAWN, warning.kind, warning.device_id, warning.metric, ts, value, warning.threshold,
        score=score, reason=reason, horizon=horizon if warning.kind is WarningKind.TREND else None,
    )
