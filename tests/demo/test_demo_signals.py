"""Whatever ends `edgewatch demo` — Ctrl-C, a service manager, a closing terminal, or SIGKILL sent to the
demo process alone — every process it started ends with it, and no port stays held: a second demo can
start on the same explicit ports at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from common.ports import is_free
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def listeners(port: int) -> list[int | None]:
    return [c.pid for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port]


def start_demo(tmp_path: Path, http_port: int, mqtt_port: int) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp_path / f"demo-{time.monotonic_ns()}.out"
    env = {**os.environ, "EDGEWATCH_DATA_DIR": str(tmp_path / "data"), "EDGEWATCH_ADMIN_TOKEN": "signal-test-token-0123456789"}
    env.pop("EDGEWATCH_HTTP_PORT", None)
    with out.open("wb") as log:
        demo = subprocess.Popen(
            [sys.executable, "-m", "edgewatch.cli", "demo", "--devices", "5", "--broker", "mosquitto",
             "--http-port", str(http_port), "--mqtt-port", str(mqtt_port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            start_new_session=True,  # signals reach the demo only, as `kill PID` would
        )
    return demo, out


def wait_started(demo: subprocess.Popen[bytes], out: Path) -> list[psutil.Process]:
    """Once the dashboard is up: the demo's descendants (mosquitto, the agent, the collector's MQTT process)."""
    deadline = time.monotonic() + 90
    while "dashboard" not in out.read_text():
        assert demo.poll() is None, out.read_text()
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.2)
    while True:
        family = psutil.Process(demo.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in family)
        if "mosquitto" in names and "edgewatch.cli agent" in names and "collector.mqtt_process" in names:
            return family
        assert time.monotonic() < deadline, names
        time.sleep(0.2)


@pytest.mark.mosquitto
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=lambda s: signal.Signals(s).name)
def test_every_process_the_demo_started_ends_with_it(tmp_path: Path, signum: int) -> None:
    http_port, mqtt_port = free_port(), free_port()
    demo, out = start_demo(tmp_path, http_port, mqtt_port)
    try:
        family = wait_started(demo, out)
        demo.send_signal(signum)
        code = demo.wait(60)
    finally:
        if demo.poll() is None:
            demo.kill()
    _, alive = psutil.wait_procs(family, timeout=20)
    assert not alive, f"left running after {signal.Signals(signum).name}: {[p.cmdline() for p in alive]}"
    for port in (http_port, mqtt_port):
        assert not listeners(port), f"port {port} still held by {listeners(port)}"
        assert is_free(port)
    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 0, out.read_text()
        assert "edgewatch demo: stopped" in out.read_text()

    # The same explicit ports at once: the old run's connections linger in TIME_WAIT, which is no reason to move.
    again, out = start_demo(tmp_path, http_port, mqtt_port)
    try:
        wait_started(again, out)
        text = out.read_text()
        assert f"mqtt://127.0.0.1:{mqtt_port}" in text and f"http://127.0.0.1:{http_port}/" in text
    finally:
        again.send_signal(signal.SIGINT)
        assert again.wait(60) == 0, out.read_text()


@pytest.mark.mosquitto
def test_an_explicit_port_that_is_taken_stops_the_demo_naming_the_holder(tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env = {**os.environ, "EDGEWATCH_DATA_DIR": str(tmp_path / "data"), "EDGEWATCH_HTTP_PORT": str(taken)}
        done = subprocess.run([sys.executable, "-m", "edgewatch.cli", "demo", "--mqtt-port", "0", "--duration", "1"],
                              env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line == (f"edgewatch demo: EDGEWATCH_HTTP_PORT: port {taken} on 127.0.0.1 is in use by pid {os.getpid()} "
                    f"({psutil.Process().name()}); stop it or choose another port")
    assert not (tmp_path / "data" / "mosquitto.conf").exists(), "nothing was started"
