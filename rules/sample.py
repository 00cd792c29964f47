"""Decoding the contract's JSON sample into a `Sample`, with precise reasons for rejection.

Shared by `edgewatch rules replay` and the collector, so both accept and refuse exactly the same
payloads. Works on the already-parsed JSON value; reading bytes is the caller's job. Metric names
and possible values are those of `rules.metrics`; an old spelling is stored under its canonical name.
"""

from __future__ import annotations

import math
import re
import reprlib
from typing import Any, TypeGuard

from rules.metrics import ALIASES, METRIC_NAME_PATTERN, canonical, range_problem
from rules.model import Sample

SAMPLE_VERSION = 1
DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
# How a refused value is quoted in an error: bounded in depth and length, since a payload may nest
# a value a thousand levels deep (plain repr() would then fail) or carry a long string.
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxother, _QUOTE.maxlong = 3, 200, 200, 60
quote_value = _QUOTE.repr

MAX_METRICS = 256
MAX_INSTANCE_LENGTH = 128
MAX_DEVICE_CLASS_LENGTH = 32
# Stores keep seq as a signed 64-bit integer; a larger one would also make every later sample of the
# device look like a duplicate.
MAX_SEQ = 2**63 - 1
# 9999-12-31T23:59:59Z, the last second a date can be written (tickets and the API show ts as dates).
MAX_TS = 253_402_300_799.0


class SampleError(ValueError):
    """A payload breaks the sample contract. `reason` is a short stable code, `detail` says where."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_float(value: int | float) -> float:
    """JSON integers are unbounded; one too large for a float is as unusable as infinity."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _short_text(value: object, limit: int) -> bool:
    """Printable (no NUL, no control character, no lone surrogate: databases refuse those) and short."""
    return isinstance(value, str) and len(value) <= limit and value.isprintable()


def check_metric_value(name: str, value: float) -> None:
    """Refuse values no probe can produce: non-finite, or outside the metric's bounds (`rules.metrics`)."""
    if not math.isfinite(value):
        raise SampleError("non_finite", f"metrics.{name} is {quote_value(value)}")
    problem = range_problem(name, value)
    if problem is not None:
        raise SampleError("impossible_value", problem)


def parse_sample(obj: Any) -> Sample:
    """Validate a decoded JSON value against the sample contract and build a `Sample`."""
    if not isinstance(obj, dict):
        raise SampleError("not_an_object", f"a sample is a JSON object, got {type(obj).__name__}")
    version = obj.get("v")
    if version != SAMPLE_VERSION or isinstance(version, bool):
        raise SampleError("unknown_version", f"v must be {SAMPLE_VERSION}, got {quote_value(version)}")
    device_id = obj.get("device_id")
    if not isinstance(device_id, str) or DEVICE_ID_PATTERN.fullmatch(device_id) is None:
        raise SampleError("bad_device_id",
                          f"device_id must be 1-64 characters of A-Za-z0-9._-, got {quote_value(device_id)}")
    seq = obj.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise SampleError("bad_seq", f"seq must be a non-negative integer, got {quote_value(seq)}")
    if seq > MAX_SEQ:
        raise SampleError("bad_seq", f"seq must be below 2**63 (a 64-bit integer), got {quote_value(seq)}")
    ts = obj.get("ts")
    if not _is_number(ts) or not math.isfinite(_as_float(ts)) or ts < 0:
        raise SampleError("bad_ts", f"ts must be finite, non-negative Unix seconds, got {quote_value(ts)}")
    if ts > MAX_TS:
        raise SampleError("bad_ts", f"ts must be at most {MAX_TS:.0f} (the end of year 9999), got {quote_value(ts)}")
    raw_metrics = obj.get("metrics")
    if not isinstance(raw_metrics, dict):
        raise SampleError("bad_metrics", f"metrics must be an object, got {quote_value(raw_metrics)}")
    if len(raw_metrics) > MAX_METRICS:
        raise SampleError("bad_metrics", f"at most {MAX_METRICS} metrics, got {len(raw_metrics)}")
    metrics: dict[str, float | None] = {}
    for name, value in raw_metrics.items():
        if METRIC_NAME_PATTERN.fullmatch(name) is None:
            raise SampleError("bad_metric_name", f"metric name {quote_value(name)} is not lower_snake_case")
        written, name = name, canonical(name)
        if name in metrics:  # reached only through an old spelling (JSON keys are unique)
            old = written if written in ALIASES else next(a for a in raw_metrics if ALIASES.get(a) == name)
            raise SampleError("bad_metric_name", f"metrics.{old} is the old name of {name}, which the sample "
                              "also carries; send one of them")
        if value is None:
            metrics[name] = None
            continue
        if not _is_number(value):
            raise SampleError("bad_metric_value", f"metrics.{name} must be a number, got {quote_value(value)}")
        number = _as_float(value)
        check_metric_value(name, number)
        metrics[name] = number
    instance = obj.get("instance")
    if instance is not None and not _short_text(instance, MAX_INSTANCE_LENGTH):
        raise SampleError("bad_instance", f"instance must be printable text of at most {MAX_INSTANCE_LENGTH} "
                          f"characters, got {quote_value(instance)}")
    device_class = obj.get("device_class")
    if device_class is not None and not _short_text(device_class, MAX_DEVICE_CLASS_LENGTH):
        raise SampleError("bad_device_class", f"device_class must be printable text of at most "
                          f"{MAX_DEVICE_CLASS_LENGTH} characters, got {quote_value(device_class)}")
    return Sample(device_id, seq, float(ts), metrics, instance, device_class)
