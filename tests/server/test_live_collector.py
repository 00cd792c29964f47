"""The server and a running collector sharing one database: what is saved through the API reaches
the collector without a restart, and what the collector rejects is visible through the API."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.server.harness import Harness
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
