"""Device charts read the store the collector writes, whichever it is: a real collector writes samples
from mosquitto into VictoriaMetrics or InfluxDB (each a real server on 127.0.0.1), and the server's
history endpoint returns them, averaged per bucket, under the same settings."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from telemetry.settings import TelemetrySettings
from tests.server.harness import collector_and_server
from tests.server.live import wait_for
from tests.support import services

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]


@contextmanager
def store_settings(kind: str) -> Iterator[TelemetrySettings]:
    if kind == "victoriametrics":
        with services.victoria_metrics() as vm:
            yield TelemetrySettings(store=kind, victoriametrics_url=vm.url, flush_interval_s=0.05)
    else:
        with services.influxdb() as influx:
            yield TelemetrySettings(store=kind, influx_url=influx.url, influx_bucket="edgewatch_api",
                                    flush_interval_s=0.05)


@pytest.mark.parametrize("kind", ["victoriametrics", "influxdb"])
def test_history_reads_what_the_collector_wrote(kind: str, pg_engine: Engine, broker: services.Mosquitto,
                                                tmp_path: Path) -> None:
    with store_settings(kind) as telemetry, \
            collector_and_server(pg_engine, broker, tmp_path, telemetry=telemetry) as (collector, h):
        sup = h.auth("supervisor")
        now = time.time()
        for seq in range(1, 7):  # 5 s apart, the last 5 s ago
            payload = {"v": 1, "device_id": "gw-store", "seq": seq, "ts": now - 35 + 5 * seq,
                       "metrics": {"cpu_percent": 10.0 * seq, "temperature_c": 30.0 + seq}}
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-t",
                            "edgewatch/v1/gw-store/telemetry", "-m", json.dumps(payload)], check=True, timeout=10)
        wait_for(lambda: collector.writer.stats.written >= 6, what="six samples written to the store")

        def chart(minutes: float) -> dict[str, list[float]]:
            answer = h.client.get("/api/v1/devices/gw-store/history", headers=sup, params=[
                ("metric", "cpu_percent"), ("metric", "temperature_c"), ("points", 200),
                ("start", datetime.fromtimestamp(now - 60 * minutes, UTC).isoformat()),
                ("end", datetime.fromtimestamp(now + 1, UTC).isoformat())])
            assert answer.status_code == 200, answer.text
            assert answer.json()["available"] is True
            return {m["metric"]: [p["value"] for p in m["points"]] for m in answer.json()["metrics"]}

        # Raw samples (buckets of 0.3 s), once every sample is readable (VictoriaMetrics makes new
        # samples searchable within seconds).
        raw = wait_for(lambda: c if len((c := chart(1))["cpu_percent"]) == 6 else None, timeout=30,
                       what="the six samples on the chart")
        assert raw == {"cpu_percent": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
                       "temperature_c": [31.0, 32.0, 33.0, 34.0, 35.0, 36.0]}
        # A day (buckets of 8 minutes, from the 1-minute roll-ups): bucket means of the same samples.
        day = chart(24 * 60)
        assert 1 <= len(day["cpu_percent"]) <= 2 and 10.0 <= min(day["cpu_percent"]) <= max(day["cpu_percent"]) <= 60


def test_an_unreachable_store_answers_503_with_the_reason(pg_engine: Engine, tmp_path: Path) -> None:
    from sqlalchemy.orm import sessionmaker

    from tests.server.harness import harness

    down = TelemetrySettings(store="influxdb", influx_url=f"http://127.0.0.1:{services.free_port()}", timeout_s=2)
    with harness(sessionmaker(pg_engine), tmp_path, telemetry=down) as h:
        h.add_device("gw-down", "Acme Power")
        answer = h.client.get("/api/v1/devices/gw-down/history", headers=h.auth("supervisor"))
    assert answer.status_code == 503
    assert "telemetry store" in answer.json()["detail"] and "InfluxDB" in answer.json()["detail"]
