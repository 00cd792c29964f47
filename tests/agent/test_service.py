"""The agent loop with a real spool, against a port where no broker listens."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from agent.latency import LatencyProber
from agent.service import Agent, StopSignal
from agent.settings import load_settings
from agent.spool import Spool


class FlakyHost:
    """Host metrics whose second reading fails with a bug."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self) -> dict[str, float]:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("probe bug")
        return {"cpu_percent": 1.0, "mem_percent": 2.0}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_loop_survives_a_failing_probe_and_spools_while_the_broker_is_away(tmp_path: Path) -> None:
    settings = load_settings(None, environ={
        "EDGEWATCH_MQTT_URL": f"mqtt://127.0.0.1:{closed_port()}", "EDGEWATCH_DEVICE_ID": "unit",
        "EDGEWATCH_AGENT_INTERVAL": "0.05", "EDGEWATCH_DATA_DIR": str(tmp_path),
        "EDGEWATCH_AGENT_RECONNECT_MIN": "0.05", "EDGEWATCH_AGENT_RECONNECT_MAX": "0.1",
    })
    spool = Spool(settings.spool_path, 100)
    host = FlakyHost()
    agent = Agent(settings, spool, host, LatencyProber((), 1, 0.1))  # type: ignore[arg-type]
    stop = StopSignal()
    try:
        deadline = time.monotonic() + 10
        while host.calls < 6 and time.monotonic() < deadline:
            agent.step(stop)
        assert host.calls >= 6
        assert agent.link.closed and agent.backoff.failures >= 1  # it kept trying to connect
        rows = spool.peek(0, 100)
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
        assert len(rows) == host.calls - 1, "every sample but the failed one is spooled"
        assert b'"spool_dropped":1' in rows[1].payload, "the failed sample is reported as lost"
        agent.shutdown(stop)
    finally:
        stop.close()
        spool.close()
