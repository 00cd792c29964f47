"""Building the contract's sample from measured values (pure: no I/O, no clock).

`latency_ms` and `packet_loss_percent` are the first target's (by default the broker: the path the
telemetry itself takes); every target's figures are under the top-level `targets` key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from agent.latency import TargetResult
from rules.sample import METRIC_NAME_PATTERN, SampleError, check_metric_value, parse_sample

logger = logging.getLogger(__name__)

SAMPLE_VERSION = 1


def telemetry_topic(device_id: str) -> str:
    return f"edgewatch/v1/{device_id}/telemetry"


def status_topic(device_id: str) -> str:
    return f"edgewatch/v1/{device_id}/status"


def latency_metrics(results: Sequence[TargetResult]) -> dict[str, float]:
    """The primary (first) target's latency and packet loss, when measured."""
    out: dict[str, float] = {}
    if results:
        primary = results[0]
        if primary.latency_ms is not None:
            out["latency_ms"] = primary.latency_ms
        if primary.loss_percent is not None:
            out["packet_loss_percent"] = primary.loss_percent
    return out


def valid_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The metrics the collector will accept; any other value is left out (and logged), never altered."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        try:
            if METRIC_NAME_PATTERN.fullmatch(name) is None:
                raise SampleError("bad_metric_name", f"metric name {name!r} is not lower_snake_case")
            check_metric_value(name, float(value))
        except (SampleError, TypeError, ValueError) as exc:
            logger.warning("leaving out a value that cannot be right: %s", exc)
            continue
        out[name] = value
    return out


def build_sample(
    *,
    device_id: str,
    seq: int,
    ts: float,
    metrics: Mapping[str, float],
    instance: str,
    device_class: str | None = None,
    dropped: int = 0,
    targets: Sequence[TargetResult] = (),
) -> dict[str, Any]:
    sample: dict[str, Any] = {
        "v": SAMPLE_VERSION,
        "device_id": device_id,
        "seq": seq,
        "ts": round(ts, 3),
        "metrics": valid_metrics(metrics),
        "instance": instance,
    }
    if device_class is not None:
        sample["device_class"] = device_class
    if dropped:
        sample["spool_dropped"] = dropped
    if targets:
        sample["targets"] = {result.name: result.as_dict() for result in targets}
    return sample


def encode(sample: Mapping[str, Any]) -> bytes:
    """Compact JSON, checked against the contract so that the agent never spools a sample the
    collector would reject."""
    parse_sample(sample)
    return json.dumps(sample, separators=(",", ":"), allow_nan=False).encode()
