"""Shared pieces of the collector's integration tests: settings, publishing, reading back, waiting."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from collector.app import Collector
from collector.settings import CollectorSettings, MqttSettings, TelemetrySettings
from tickets.models import DeadLetter, Device, Ticket

NOW = time.time()


def settings(tmp: Path, port: int, *, client_id: str = "test-collector", **changes: Any) -> CollectorSettings:
    telemetry = changes.pop("telemetry", TelemetrySettings(sqlite_path=tmp / "telemetry.sqlite3",
                                                           flush_interval_s=0.05))
    return CollectorSettings(
        data_dir=tmp, database_url=changes.pop("database_url", f"sqlite:///{tmp / 'edgewatch.db'}"),
        mqtt=MqttSettings(port=port, client_id=client_id, telegraf_topics=("telegraf/#",)),
        telemetry=telemetry, batch_wait_s=0.02, offline_check_s=0.1, thresholds_poll_s=0.2,
        registry_flush_s=0.0, **changes,
    )


def sample(device: str, seq: int, **metrics: float | None) -> dict[str, Any]:
    return {"v": 1, "device_id": device, "seq": seq, "ts": NOW + seq, "metrics": metrics}


def pub(port: int, topic: str, payload: bytes | str | dict[str, Any], *, retain: bool = False) -> None:
    """Publish one message with mosquitto_pub (QoS 1)."""
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-s"]
    if retain:
        cmd.append("-r")
    subprocess.run(cmd, input=data, check=True, timeout=10)


def pub_lines(port: int, messages: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Many JSON messages through one mosquitto_pub per topic, in order (-l: one message a line)."""
    by_topic: dict[str, list[str]] = {}
    for topic, body in messages:
        by_topic.setdefault(topic, []).append(json.dumps(body))
    for topic, lines in by_topic.items():
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-l"],
                       input="\n".join(lines).encode() + b"\n", check=True, timeout=30)


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def handled(collector: Collector) -> float:
    return sum(collector.metrics.value("edgewatch_collector_messages_total", outcome=o)
               for o in ("processed", "rejected", "duplicate", "ignored"))


def tickets(engine: Engine) -> list[Ticket]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(Ticket).order_by(Ticket.id)).all())  # type: ignore[arg-type]


def ticket_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(sa.select(Ticket.__table__).order_by(Ticket.id))  # type: ignore[arg-type]
        return [dict(r._mapping) for r in result]


def dead_letters(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(sa.select(DeadLetter.__table__).order_by(DeadLetter.id))  # type: ignore[arg-type]
        return [dict(r._mapping) for r in result]


def device(engine: Engine, device_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(Device.__table__).where(Device.id == device_id)).first()  # type: ignore[arg-type]
        return None if row is None else dict(row._mapping)
