"""Real `edgewatch agent` processes and an MQTT listener for the agent-side fault scenarios."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.reliability.stack import ROOT, wait_until


class AgentProcess:
    """`edgewatch agent`, optionally with a wall clock the test can move (`jumping_clock`)."""

    def __init__(self, workdir: Path, data_dir: Path, broker_url: str, device_id: str, *, interval: float = 0.2,
                 clock_file: Path | None = None, extra_env: Mapping[str, str] | None = None) -> None:
        self.log_path = workdir / f"agent-{device_id}.log"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "EDGEWATCH_MQTT_URL": broker_url,
            "EDGEWATCH_DEVICE_ID": device_id,
            "EDGEWATCH_AGENT_INTERVAL": str(interval),
            "EDGEWATCH_DATA_DIR": str(data_dir),
            "EDGEWATCH_AGENT_RECONNECT_MIN": "0.2",
            "EDGEWATCH_AGENT_RECONNECT_MAX": "1",
            "EDGEWATCH_AGENT_PUBLISH_RATE": "200",
            **(extra_env or {}),
        }
        program = ["edgewatch.cli", "agent"]
        if clock_file is not None:
            program = ["tests.reliability.jumping_clock", str(clock_file), *program]
        self.args = [sys.executable, "-m", *program]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=log, cwd=ROOT)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return -9
        finally:
            self.process = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


class Listener:
    """Subscribes to every device's telemetry on a persistent session (QoS 1), so nothing sent while
    the broker restarts is missed; keeps each sample once per (device, seq) and counts repeats."""

    def __init__(self, port: int, client_id: str = "rel-listener") -> None:
        self.samples: dict[tuple[str, int], dict[str, Any]] = {}
        self.repeats = 0
        self._lock = threading.Lock()
        self.arrivals: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(0.1, 1.0)
        self.client.on_connect = lambda c, *_: c.subscribe("edgewatch/v1/+/telemetry", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        body = json.loads(message.payload)
        key = (str(body["device_id"]), int(body["seq"]))
        with self._lock:
            if key in self.samples:
                self.repeats += 1
                return
            self.samples[key] = body
        self.arrivals.put(body)

    def count(self, device_id: str) -> int:
        with self._lock:
            return sum(1 for d, _ in self.samples if d == device_id)

    def seqs(self, device_id: str) -> list[int]:
        with self._lock:
            return sorted(s for d, s in self.samples if d == device_id)

    def wait_count(self, device_id: str, count: int, timeout: float) -> None:
        wait_until(lambda: self.count(device_id) >= count, timeout, f"{count} samples of {device_id}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def small_disk(path: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of `size` at `path` (root only): a disk that fills up for real, with ENOSPC."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                             capture_output=True, text=True, timeout=30)
    if mounted.returncode != 0:
        import pytest

        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}); run the suite as root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full, to the last byte; returns it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size = 65536
        while size >= 1:
            try:
                os.write(fd, b"\0" * size)
            except OSError:
                size //= 2
    finally:
        os.close(fd)
    return filler
