"""Telegraf's `cpu`, `mem` and `ping` inputs mapped onto edgewatch samples.

| Telegraf line | edgewatch metric |
|---|---|
| `cpu,cpu=cpu-total usage_idle=X` | `cpu_percent = 100 - X` (per-core lines are ignored) |
| `mem used_percent=X` | `mem_percent = X` |
| `ping average_response_ms=X` | `latency_ms = X` (several targets: the worst) |
| `ping percent_packet_loss=X` | `packet_loss_percent = X` (several targets: the worst) |

The device is the topic level the subscription's first wildcard matches (`telegraf/gw-0042` and
`telegraf/gw-0042/mem` under `telegraf/#`), which the broker's ACL ties to the client's
credentials, exactly as the device segment of a native topic; a line whose `host` tag
names another device is refused (`topic_mismatch`), so no client can write, or move the seq of,
another device. A line without a `host` tag is the topic's device. Timestamps are checked like
a native sample's `ts` (1970 to the end of year 9999). Lines with the same timestamp become one sample, so
Telegraf's `batch = true` MQTT output turns each gathering round into one sample. Telegraf has no
sequence number: seq is the timestamp in microseconds times 4 plus the highest index of the
measurements merged (cpu 0, mem 1, ping 2), so it grows with time and a round split over several
messages in the order cpu, mem, ping still counts every part.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collector.errors import DecodeError
from collector.lineproto import FieldValue, Line
from rules import Sample
from rules.sample import DEVICE_ID_PATTERN, MAX_TS, SampleError, check_metric_value

MEASUREMENTS = {"cpu": 0, "mem": 1, "ping": 2}


@dataclass(slots=True)
class _Round:
    device_id: str
    micros: int
    index: int
    metrics: dict[str, float]


def _number(line: Line, name: str) -> float | None:
    value: FieldValue | None = line.fields.get(name)
    if value is None or isinstance(value, (bool, str)):
        return None
    return float(value)


def _metrics_of(line: Line) -> dict[str, float]:
    if line.measurement == "cpu":
        idle = _number(line, "usage_idle")
        if line.tags.get("cpu") != "cpu-total" or idle is None:
            return {}
        # 100 - idle can come out a hair below 0 or above 100 in floating point.
        return {"cpu_percent": min(100.0, max(0.0, 100.0 - idle))}
    if line.measurement == "mem":
        used = _number(line, "used_percent")
        return {} if used is None else {"mem_percent": used}
    found = {}
    latency = _number(line, "average_response_ms")
    if latency is not None:
        found["latency_ms"] = latency
    loss = _number(line, "percent_packet_loss")
    if loss is not None:
        found["packet_loss_percent"] = loss
    return found


def to_micros(timestamp: int) -> int:
    """Line protocol timestamps are ns by default; also accept s, ms and us, told apart by size."""
    magnitude = abs(timestamp)
    if magnitude >= 10**17:
        return timestamp // 1000
    if magnitude >= 10**14:
        return timestamp
    if magnitude >= 10**11:
        return timestamp * 1000
    return timestamp * 1_000_000


def device_of_topic(topic: str, subscription: str) -> str:
    """The device a Telegraf topic speaks for: the level matched by the subscription's first wildcard."""
    wildcards = [i for i, level in enumerate(subscription.split("/")) if level in ("+", "#")]
    levels = topic.split("/")
    device_id = levels[wildcards[0]] if wildcards and wildcards[0] < len(levels) else ""
    if DEVICE_ID_PATTERN.fullmatch(device_id) is None:
        raise DecodeError("bad_topic", f"the topic level after the Telegraf prefix of {subscription!r} names the "
                                       f"device (1-64 characters of A-Za-z0-9._-), got {device_id!r}")
    return device_id


def samples_from_lines(lines: Iterable[Line], received_at: float, device_id: str) -> list[Sample]:
    """Samples (one per timestamp) of `device_id` (the topic's device) from parsed lines; other
    measurements are ignored.

    A line without a timestamp is taken at `received_at`. Raises DecodeError for a host tag naming
    another device, a timestamp out of range or an impossible value (the checks of the JSON path).
    """
    rounds: dict[tuple[str, int], _Round] = {}
    for line in lines:
        index = MEASUREMENTS.get(line.measurement)
        if index is None:
            continue
        metrics = _metrics_of(line)
        if not metrics:
            continue
        host = line.tags.get("host", device_id)
        if host != device_id:
            raise DecodeError(
                "topic_mismatch", f"{line.measurement}: host tag {host!r} is not the topic's device {device_id!r}"
            )
        try:
            for name, value in metrics.items():
                check_metric_value(name, value)
        except SampleError as exc:
            raise DecodeError(exc.reason, f"{line.measurement}: {exc.detail}") from None
        micros = to_micros(line.timestamp) if line.timestamp is not None else int(received_at * 1_000_000)
        if micros < 0:
            raise DecodeError("bad_ts", f"{line.measurement}: timestamp {line.timestamp} is before 1970")
        if micros > MAX_TS * 1_000_000:
            raise DecodeError("bad_ts", f"{line.measurement}: timestamp {line.timestamp} is after the end of year 9999")
        key = (host, micros)
        current = rounds.get(key)
        if current is None:
            rounds[key] = _Round(host, micros, index, metrics)
            continue
        current.index = max(current.index, index)
        for name, value in metrics.items():
            # Several ping targets: the worst one speaks for the device.
            current.metrics[name] = max(value, current.metrics.get(name, value))
    return [
        Sample(r.device_id, r.micros * 4 + r.index, r.micros / 1_000_000, dict(r.metrics))
        for r in sorted(rounds.values(), key=lambda r: (r.device_id, r.micros))
    ]
