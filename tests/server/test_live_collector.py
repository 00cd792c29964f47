"""The server and a running collector sharing one database: what is saved through the API reaches
the collector without a restart, and what the collector rejects is visible through the API."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.server.harness import Harness, collector_and_server
from tests.server.live import publish, wait_for
from tests.support import services

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]


def test_thresholds_saved_through_the_api_reach_the_running_collector(running: Harness, broker: services.Mosquitto) -> None:
    h, sup = running, running.auth("supervisor")
    saved = h.client.put("/api/v1/thresholds", json={"document": {"metrics": {"cpu_percent": {"threshold": 40}}}},
                         headers=sup)
    assert saved.status_code == 200
    time.sleep(0.5)  # the collector polls the version every 0.2 s here
    publish(broker.port, "gw-thr", 1, cpu_percent=65.0)  # red only under the new threshold: 65 > 1.5 x 40
    tickets = wait_for(lambda: h.client.get("/api/v1/tickets", params={"device_id": "gw-thr"},
                                            headers=sup).json()["items"], what="the red ticket")
    assert tickets[0]["severity"] == "red"
    assert "40" in h.client.get(f"/api/v1/tickets/{tickets[0]['id']}", headers=sup).json()["description"]

    h.client.put("/api/v1/devices/gw-thr", json={"thresholds": {"mem_percent": 30}}, headers=sup).raise_for_status()
    time.sleep(0.5)
    publish(broker.port, "gw-thr", 2, cpu_percent=10.0, mem_percent=50.0)  # 50 > 1.5 x 30
    wait_for(lambda: [t for t in h.client.get("/api/v1/tickets", params={"device_id": "gw-thr"},
                                              headers=sup).json()["items"] if t["metric"] == "mem_percent"],
             what="the per-device override to open a mem_percent ticket")

    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                    "-t", "edgewatch/v1/gw-thr/telemetry", "-m", "{not json"], check=True, timeout=10)
    letters = wait_for(lambda: h.client.get("/api/v1/dead-letters", params={"device_id": "gw-thr"},
                                            headers=sup).json()["items"], what="the dead letter")
    assert letters[0]["reason"] and letters[0]["topic"] == "edgewatch/v1/gw-thr/telemetry"


def test_with_a_thresholds_file_the_api_refuses_writes_and_an_edit_reaches_the_collector(
        pg_engine: Engine, broker: services.Mosquitto, tmp_path: Path) -> None:
    file = tmp_path / "fleet.toml"
    file.write_text("[metrics.cpu_percent]\nthreshold = 60\n")
    with collector_and_server(pg_engine, broker, tmp_path, file) as (collector, h):
        sup = h.auth("supervisor")
        shown = h.client.get("/api/v1/thresholds", headers=sup).json()
        assert shown["source"] == {"kind": "file", "path": str(file)}
        refused = h.client.put("/api/v1/thresholds", json={"document": {"metrics": {"cpu_percent": 40}}},
                               headers=sup)
        assert refused.status_code == 409 and str(file) in refused.json()["detail"]
        device = h.client.put("/api/v1/devices/gw-file", json={"thresholds": {"cpu_percent": 40}}, headers=sup)
        assert device.status_code == 409 and str(file) in device.json()["detail"]

        publish(broker.port, "gw-file", 1, cpu_percent=75.0)  # under the file's 60 (red above 90): no ticket
        file.write_text("[metrics.cpu_percent]\nthreshold = 60\nred = 70\n")
        wait_for(lambda: collector.rules.thresholds.rule_for("gw-file", None, "cpu_percent").red_level == 70,  # type: ignore[union-attr]
                 what="the collector to apply the edited file")
        assert h.client.get("/api/v1/thresholds", headers=sup).json()["document"] == {
            "metrics": {"cpu_percent": {"threshold": 60, "red": 70}}}
        publish(broker.port, "gw-file", 2, cpu_percent=75.0)  # red under the edited file
        tickets = wait_for(lambda: h.client.get("/api/v1/tickets", params={"device_id": "gw-file"},
                                                headers=sup).json()["items"], what="the red ticket")
        assert [(t["metric"], t["severity"]) for t in tickets] == [("cpu_percent", "red")]
        detail = h.client.get(f"/api/v1/tickets/{tickets[0]['id']}", headers=sup).json()
        assert "over its red level 70 (threshold 60)" in detail["description"]
