"""A VictoriaMetrics server on 127.0.0.1 for the InfluxDB v2 write path (it accepts /api/v2/write)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.services import find_executable, free_port, stop_process, wait_for_port


@dataclass
class VictoriaMetrics:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.workdir / "vm.log").open("ab")
        self.process = subprocess.Popen(
            [find_executable("victoria-metrics"), f"-storageDataPath={self.workdir / 'data'}",
             "-retentionPeriod=100y", f"-httpListenAddr=127.0.0.1:{self.port}"],
            stdout=log, stderr=log,
        )
        wait_for_port(self.port, timeout=20)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM, 10)
        self.process = None

    def export(self, match: str = '{__name__=~"device_health_.*"}') -> list[dict[str, object]]:
        """Every stored series matching `match` (after forcing buffered rows to be searchable)."""
        with httpx.Client(timeout=10) as client:
            client.get(f"{self.url}/internal/force_flush").raise_for_status()
            answer = client.post(f"{self.url}/api/v1/export", data={"match[]": match})
            answer.raise_for_status()
        return [json.loads(line) for line in answer.text.splitlines() if line.strip()]


@contextlib.contextmanager
def victoria_metrics(port: int | None = None) -> Iterator[VictoriaMetrics]:
    with tempfile.TemporaryDirectory(prefix="ew-vm-") as tmp:
        server = VictoriaMetrics(port or free_port(), Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()
