"""Building the contract's sample from measured values (pure: no I/O, no clock).

`latency_ms` and `packet_loss_percent` are the first target's (by default the broker: the path the
telemetry itself takes); every target's figures are under the top-level `targets` key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from agent.contract import SAMPLE_VERSION, metric_problem
from agent.latency import TargetResult

logger = logging.getLogger(__name__)


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
        problem = metric_problem(name, value)
        if problem is not None:
            logger.warning("leaving out a value that cannot be right: %s", problem)
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
    """Compact JSON. `allow_nan=False`: a non-finite number is a bug to surface, never to send."""
    return json.dumps(sample, separators=(",", ":"), allow_nan=False).encode()
