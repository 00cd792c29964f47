"""`edgewatch demo` as a newcomer runs it: within 60 s the fleet has raised red and orange tickets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "demo-test-token-0123456789abcdef"


@pytest.mark.parametrize("broker", ["auto", "embedded"])
def test_demo_raises_red_and_orange_tickets_and_notifies_within_a_minute(tmp_path: Path, broker: str) -> None:
    http_port = free_port()
    env = {
        **os.environ,
        "EDGEWATCH_DATA_DIR": str(tmp_path),
        "EDGEWATCH_HTTP_PORT": str(http_port),
        "EDGEWATCH_ADMIN_TOKEN": TOKEN,
    }
    log = (tmp_path / "demo.out").open("w+")
    demo = subprocess.Popen(
        [sys.executable, "-m", "edgewatch.cli", "demo", "--mqtt-port", "0", "--devices", "40", "--broker", broker],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        started = time.monotonic()
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{http_port}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        kinds: set[tuple[str | None, str]] = set()
        inbox = tmp_path / "inbox.jsonl"
        red_notified = False
        while time.monotonic() - started < 60:
            assert demo.poll() is None, (tmp_path / "demo.out").read_text()
            try:
                tickets = api.get("/tickets", params={"limit": 100}).json()["items"]
                kinds = {(t["severity"], t["kind"]) for t in tickets}
            except httpx.TransportError:
                pass  # still starting
            if inbox.exists():
                red_notified = any(
                    json.loads(line)["data"].get("severity") == "red" and json.loads(line)["address"].startswith("ops@")
                    for line in inbox.read_text().splitlines()
                )
            if ("red", "on_site") in kinds and ("orange", "pre_maintenance") in kinds and red_notified:
                break
            time.sleep(1)
        assert ("red", "on_site") in kinds, kinds
        assert ("orange", "pre_maintenance") in kinds, kinds
        assert red_notified, "the customer's ops contact got no red notification in the local inbox"
        output = (tmp_path / "demo.out").read_text()
        assert f"http://127.0.0.1:{http_port}/" in output and TOKEN in output
        assert ("embedded amqtt broker" in output) == (broker == "embedded")
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
        log.close()
    assert code == 0, (tmp_path / "demo.out").read_text()
    assert "edgewatch demo: stopped" in (tmp_path / "demo.out").read_text()
