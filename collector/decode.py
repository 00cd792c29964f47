"""Every inbound MQTT message decoded and validated at the edge, before it touches any state.

The result is one of: `Telemetry` (samples to feed the rules), `Status` (online/offline), `Ignored`
(nothing to do, e.g. a cleared retained status) or `Rejected` (a dead letter with a reason code).
Sample validation itself is `rules.parse_sample`, shared with `edgewatch rules replay`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import orjson
from paho.mqtt.client import topic_matches_sub

from collector import telegraf
from collector.errors import DecodeError
from collector.lineproto import parse_lines
from rules import Sample, SampleError, parse_sample
from rules.sample import DEVICE_ID_PATTERN, quote_value

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_VERSION_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Telemetry:
    samples: tuple[Sample, ...]
    agent_version: str | None = None
    interval_s: float | None = None
    source: str = "json"  # json | telegraf


@dataclass(frozen=True, slots=True)
class Status:
    device_id: str
    online: bool
    agent_version: str | None = None
    interval_s: float | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    detail: str


Decoded = Telemetry | Status | Ignored | Rejected


class Decoder:
    """Knows the topic layout; `decode(topic, payload, received_at)` never raises."""

    def __init__(self, topic_prefix: str = "edgewatch/v1", telegraf_topics: tuple[str, ...] = ()) -> None:
        self._prefix = topic_prefix.strip("/") + "/"
        self._telegraf_topics = telegraf_topics

    def subscriptions(self) -> list[str]:
        return [f"{self._prefix}+/telemetry", f"{self._prefix}+/status", *self._telegraf_topics]

    def decode(self, topic: str | None, payload: bytes, received_at: float) -> Decoded:
        try:
            return self._decode(topic, payload, received_at)
        except DecodeError as exc:
            return Rejected(exc.reason, exc.detail)
        except RecursionError:  # from a parser, or quoting a value, on a payload nested too deeply
            return Rejected("invalid_json", "nested too deeply")

    def _decode(self, topic: str | None, payload: bytes, received_at: float) -> Decoded:
        if topic is None:
            raise DecodeError("bad_topic", "the topic is not valid UTF-8")
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise DecodeError("too_large", f"{len(payload)} bytes; at most {MAX_PAYLOAD_BYTES} are accepted")
        if topic.startswith(self._prefix):
            device_id, _, kind = topic[len(self._prefix) :].partition("/")
            if DEVICE_ID_PATTERN.fullmatch(device_id) is None or kind not in ("telemetry", "status"):
                raise DecodeError("bad_topic", f"expected {self._prefix}DEVICE_ID/telemetry or /status")
            if kind == "status":
                return _status(device_id, payload)
            return _telemetry(device_id, payload)
        for sub in self._telegraf_topics:
            if topic_matches_sub(sub, topic):
                return _telegraf(telegraf.device_of_topic(topic, sub), payload, received_at)
        raise DecodeError("bad_topic", "not a topic the collector subscribes to")


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid_utf8", f"byte {exc.start}: {exc.reason}") from None


def _json(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass  # the json module says precisely what is wrong, and accepts what it always accepted
    try:
        return json.loads(_text(payload))
    except ValueError as exc:  # json.JSONDecodeError (a RecursionError is answered by Decoder.decode)
        raise DecodeError("invalid_json", str(exc)) from None


def _optional_version(obj: dict[str, Any]) -> str | None:
    # The agent's status says `version`; `agent_version` is accepted as well.
    version = obj.get("agent_version", obj.get("version"))
    if version is None:
        return None
    # Printable only: PostgreSQL cannot store NUL, UTF-8 cannot carry a lone surrogate, and a value
    # the database refuses would fail the whole batch on every retry.
    if not isinstance(version, str) or len(version) > MAX_VERSION_LENGTH or not version.isprintable():
        raise DecodeError("bad_agent_version",
                          f"agent_version must be short printable text, got {quote_value(version):.80}")
    return version


def _optional_interval(obj: dict[str, Any]) -> float | None:
    interval = obj.get("interval_s")
    if interval is None:
        return None
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not math.isfinite(interval) \
            or interval <= 0:
        raise DecodeError("bad_interval", f"interval_s must be a positive number, got {quote_value(interval):.80}")
    return float(interval)


def _telemetry(device_id: str, payload: bytes) -> Telemetry:
    obj = _json(payload)
    try:
        sample = parse_sample(obj)
    except SampleError as exc:
        raise DecodeError(exc.reason, exc.detail) from None
    if sample.device_id != device_id:
        raise DecodeError(
            "topic_mismatch", f"payload device_id {sample.device_id!r} is not the topic's {device_id!r}"
        )
    return Telemetry((sample,), _optional_version(obj), _optional_interval(obj))


def _status(device_id: str, payload: bytes) -> Status | Ignored:
    if not payload:
        return Ignored("status_cleared")  # a retained status being deleted
    obj = _json(payload)
    if not isinstance(obj, dict):
        raise DecodeError("bad_status", f"a status is a JSON object, got {type(obj).__name__}")
    state = obj.get("state")
    if state not in ("online", "offline"):
        raise DecodeError("bad_status", f"state must be 'online' or 'offline', got {quote_value(state):.80}")
    claimed = obj.get("device_id")
    if claimed is not None and claimed != device_id:
        raise DecodeError("topic_mismatch",
                          f"payload device_id {quote_value(claimed):.80} is not the topic's {device_id!r}")
    return Status(device_id, state == "online", _optional_version(obj), _optional_interval(obj))


def _telegraf(device_id: str, payload: bytes, received_at: float) -> Telemetry | Ignored:
    samples = telegraf.samples_from_lines(parse_lines(_text(payload)), received_at, device_id)
    if not samples:
        return Ignored("no_known_metrics")
    return Telemetry(tuple(samples), source="telegraf")
