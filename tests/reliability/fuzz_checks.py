"""The properties every fuzzed input must satisfy, shared by the hypothesis tests and the atheris
harness (`tests.reliability.fuzz_atheris`). Pure: no I/O."""

from __future__ import annotations

import io
import math
import re
from collections import Counter

from collector.decode import MAX_PAYLOAD_BYTES, Decoder, Ignored, Rejected, Status, Telemetry
from collector.errors import DecodeError
from collector.lineproto import parse_lines
from edgewatch.rules_cli import replay
from rules import RuleEngine, Sample
from rules.sample import DEVICE_ID_PATTERN
from tests.reliability.lineproto_text import line_text, writable

DECODER = Decoder("edgewatch/v1", ("telegraf/#",))
RECEIVED_AT = 1_764_072_000.0
REASON = re.compile(r"[a-z][a-z0-9_]{1,40}")
WHERE = re.compile(r"line (\d+), column (\d+): .+", re.DOTALL)
TELEMETRY_TOPIC = re.compile(r"edgewatch/v1/[A-Za-z0-9._-]{1,64}/telemetry")
# Checks the collector makes beyond the sample contract; replay (no topic, no agent) cannot.
COLLECTOR_ONLY = {"too_large", "topic_mismatch", "bad_agent_version", "bad_interval"}


class Tally:
    """Outcomes of every case, rejections by reason."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()

    def add(self, decoded: object) -> None:
        self.outcomes[type(decoded).__name__.lower()] += 1
        if isinstance(decoded, Rejected):
            self.reasons[decoded.reason] += 1

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    def as_dict(self) -> dict[str, object]:
        return {"cases": self.total, "outcomes": dict(self.outcomes), "reasons": dict(self.reasons)}


def replay_verdict(payload: bytes) -> str | None:
    """What `edgewatch rules replay` says of the payload as one line: None (accepted) or the reason."""
    out, err = io.StringIO(), io.StringIO()
    counts = replay([payload + b"\n"], RuleEngine(), out, err)
    if counts["rejected"]:
        return err.getvalue().split(": ")[1]
    return None


def check_sample(sample: Sample) -> None:
    assert DEVICE_ID_PATTERN.fullmatch(sample.device_id), sample
    assert isinstance(sample.seq, int) and sample.seq >= 0, sample
    assert math.isfinite(sample.ts) and sample.ts >= 0, sample
    for name, value in sample.metrics.items():
        assert value is None or (math.isfinite(value) and value >= 0), (name, value)
        assert value is None or not name.endswith("_percent") or value <= 100, (name, value)


def check_payload(topic: str | None, payload: bytes, tally: Tally) -> None:
    """`Decoder.decode` never raises, is deterministic, gives reasons, accepts only contract samples,
    and agrees with `edgewatch rules replay` on the sample contract."""
    decoded = DECODER.decode(topic, payload, RECEIVED_AT)
    assert isinstance(decoded, Telemetry | Status | Ignored | Rejected)
    assert decoded == DECODER.decode(topic, payload, RECEIVED_AT)
    tally.add(decoded)
    if isinstance(decoded, Rejected):
        assert REASON.fullmatch(decoded.reason), decoded
        assert isinstance(decoded.detail, str) and decoded.detail.strip(), decoded
    elif isinstance(decoded, Telemetry):
        for sample in decoded.samples:
            check_sample(sample)
        if decoded.source == "json":
            [sample] = decoded.samples
            assert topic == f"edgewatch/v1/{sample.device_id}/telemetry"
    elif isinstance(decoded, Status):
        assert topic == f"edgewatch/v1/{decoded.device_id}/status"
    is_telemetry_topic = topic is not None and TELEMETRY_TOPIC.fullmatch(topic)
    # A file has lines (replay skips blank ones); an MQTT payload has no such notion.
    if is_telemetry_topic and b"\n" not in payload and payload.strip() and len(payload) <= MAX_PAYLOAD_BYTES:
        verdict = replay_verdict(payload)
        if isinstance(decoded, Rejected) and decoded.reason not in COLLECTOR_ONLY:
            assert verdict == decoded.reason, (payload, decoded, verdict)
        else:
            assert verdict is None, (payload, decoded, verdict)


def check_text(text: str, tally: Tally) -> None:
    """Line protocol: parses or fails naming line and column; what parses reads back the same once
    written out again; the Telegraf topic of the decoder satisfies `check_payload`."""
    try:
        parsed = parse_lines(text)
    except DecodeError as exc:
        assert exc.reason == "bad_line_protocol"
        where = WHERE.fullmatch(exc.detail)
        assert where is not None, exc.detail
        assert 1 <= int(where.group(1)) <= text.count("\n") + 1, exc.detail
        parsed = None
    if parsed is not None and all(writable(line) for line in parsed):
        again = "\n".join(line_text(line) for line in parsed)
        assert parse_lines(again) == parsed, (text, again)
    check_payload("telegraf/gw-1", text.encode("utf-8", "surrogatepass"), tally)
