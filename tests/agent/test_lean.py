"""The deferred import keeps a module out of memory until it is used, and then works as usual.
Run in a child interpreter: the test process has long imported everything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CHECK = """
import sys
from agent.lean import defer_import
defer_import("urllib.request")
import paho.mqtt.client
assert "http.client" not in sys.modules and "email" not in sys.modules, "deferred"
import urllib.request
assert urllib.request.getproxies() is not None          # first use loads the real module
assert "http.client" in sys.modules
assert sys.modules["urllib.request"] is urllib.request and hasattr(urllib.request, "urlopen")
defer_import("json")                                     # already imported: left alone
import json
assert json.dumps([1]) == "[1]"
print("ok")
"""


def test_deferred_import_loads_on_first_use() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_agent_imports_no_central_side_modules() -> None:
    # Of `rules` only the metric catalogue, which every layer shares.
    code = ("import sys; import agent.cli, agent.service; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "{'collector', 'server', 'tickets', 'rules', 'fastapi', 'sqlalchemy', 'pydantic', 'dataclasses'} "
            "and m not in ('rules', 'rules.metrics')]; "
            "print(bad, 'rules.metrics' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] True"


def test_without_tls_keeps_openssl_out_and_says_so_when_reached() -> None:
    code = """
import sys
from agent.lean import defer_import, without_tls
for name in ("urllib.request", "hashlib", "uuid"):
    defer_import(name)
without_tls()
import paho.mqtt.client
import agent.service
loaded = [m for m in ("_ssl", "_hashlib", "_uuid", "http.client") if m in sys.modules]
import ssl
try:
    ssl.create_default_context
except AttributeError as exc:
    print(loaded, "mqtt://" in str(exc), issubclass(ssl.SSLWantReadError, OSError))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] True True"


def test_an_unreachable_broker_without_tls_is_an_ordinary_connect_failure(tmp_path: Path) -> None:
    # paho's and the link's `except` clauses name ssl's exceptions: the stand-in must answer them.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWATCH_")}
    env.update({"EDGEWATCH_MQTT_URL": f"mqtt://127.0.0.1:{port}", "EDGEWATCH_DEVICE_ID": "gw-lean",
                "EDGEWATCH_DATA_DIR": str(tmp_path), "EDGEWATCH_AGENT_RECONNECT_MIN": "0.2",
                "EDGEWATCH_AGENT_RECONNECT_MAX": "0.3"})
    process = subprocess.Popen([sys.executable, "-m", "edgewatch.cli", "agent"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(2.5)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    assert "cannot connect to" in output and "Connection refused" in output
    assert "unexpected error" not in output, output
