"""`edgewatch server` as an operator runs it, and its settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from common.config import ConfigError
from server.app import create_app
from server.settings import load_settings
from tests.support.services import free_port, wait_for_port
from tickets.db import create_engine_for, session_factory

TOKEN = "bootstrap-admin-token-for-tests-0123456789"


def test_settings_from_file_and_environment(tmp_path: Path) -> None:
    conf = tmp_path / "edgewatch.toml"
    conf.write_text('[server]\nport = 9000\ncors_origins = ["https://ops.example"]\npoll_interval_s = 2.5\n'
                    '[database]\nurl = "sqlite:///x.db"\n')
    s = load_settings(conf, environ={"EDGEWATCH_HTTP_PORT": "9100", "EDGEWATCH_DATA_DIR": str(tmp_path)})
    assert (s.port, s.cors_origins, s.poll_interval_s, s.database_url) == (9100, ("https://ops.example",), 2.5,
                                                                          "sqlite:///x.db")
    assert s.telemetry_path == tmp_path / "telemetry.sqlite3"
    assert TOKEN not in repr(load_settings(None, environ={"EDGEWATCH_ADMIN_TOKEN": TOKEN}))
    with pytest.raises(ConfigError, match=r"EDGEWATCH_ADMIN_TOKEN.*at least 16"):
        load_settings(None, environ={"EDGEWATCH_ADMIN_TOKEN": "short"})
    with pytest.raises(ConfigError, match=r"EDGEWATCH_HTTP_PORT.*integer"):
        load_settings(None, environ={"EDGEWATCH_HTTP_PORT": "eighty"})


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from server.settings import ServerSettings

    engine = create_engine_for(f"postgresql://nobody@127.0.0.1:{free_port()}/none", connect_args={"connect_timeout": 2})
    app = create_app(ServerSettings(data_dir=tmp_path), session_factory(engine))
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/healthz")
        assert answer.status_code == 503 and answer.json()["status"] == "unavailable"
        api = client.get("/api/v1/tickets", headers={"Authorization": "Bearer whatever"})
        assert api.status_code == 503 and "not reachable" in api.json()["detail"]
        assert api.json()["key"] == "database_unavailable" and api.headers["Retry-After"] == "5"
    engine.dispose()


def test_edgewatch_server_serves_with_a_bootstrap_token(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "EDGEWATCH_DATA_DIR": str(tmp_path), "EDGEWATCH_HTTP_PORT": str(port),
           "EDGEWATCH_ADMIN_TOKEN": TOKEN}
    log = (tmp_path / "server.log").open("w+")
    process = subprocess.Popen([sys.executable, "-m", "edgewatch.cli", "server"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=30)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/healthz", timeout=5).json() == {"status": "ok", "database": "ok"}
        me = httpx.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert me.json()["role"] == "admin"
        assert httpx.get(base + "/api/v1/me", timeout=5).status_code == 401
        # A survey link's token is its credential: the access log must not keep it.
        assert httpx.get(base + "/survey/SURVEYTOKEN-0123456789abc", timeout=5).status_code == 200
        httpx.post(base + "/api/v1/survey/SURVEYTOKEN-0123456789abc", json={"rating": 5}, timeout=5)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    time.sleep(0.1)
    log.seek(0)
    output = log.read()
    assert TOKEN not in output, "the admin token must never be logged"
    assert "SURVEYTOKEN" not in output and '"GET /survey/*** HTTP/1.1" 200' in output, output[-2000:]
    assert (tmp_path / "edgewatch.db").exists()
    assert oct((tmp_path / "session.key").stat().st_mode & 0o777) == "0o600"


def test_bad_settings_exit_with_the_reason(tmp_path: Path) -> None:
    env = {**os.environ, "EDGEWATCH_DATA_DIR": str(tmp_path), "EDGEWATCH_ADMIN_TOKEN": "s3cr3t"}
    done = subprocess.run([sys.executable, "-m", "edgewatch.cli", "server"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2 and "EDGEWATCH_ADMIN_TOKEN" in done.stderr and "s3cr3t" not in done.stderr


def test_the_server_opens_tickets_with_the_configured_sla(tmp_path: Path) -> None:
    """Manual tickets (and rating follow-ups) are opened by the server: they follow `[sla]`, not the defaults."""
    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.settings import load_settings
    from tickets.db import create_engine_for, migrate, session_factory
    from tickets.models import Device

    config = tmp_path / "edgewatch.toml"
    config.write_text('[sla]\nfirst_response_blue = "45m"\n')
    settings = load_settings(config, {"EDGEWATCH_DATA_DIR": str(tmp_path),
                                      "EDGEWATCH_ADMIN_TOKEN": "sla-admin-token-0123456789abcdef"})
    engine = create_engine_for(f"sqlite:///{tmp_path / 'edgewatch.db'}")
    migrate(engine)
    with session_factory(engine).begin() as session:
        session.add(Device(id="gw-sla", state="online"))
    with TestClient(create_app(settings, session_factory(engine))) as client:
        opened = client.post("/api/v1/tickets", json={"device_id": "gw-sla", "title": "check the cabinet",
                                                      "level": "blue"},
                             headers={"Authorization": "Bearer sla-admin-token-0123456789abcdef"})
        assert opened.status_code == 201, opened.text
        ticket = opened.json()
    first = next(c for c in ticket["clocks"] if c["name"] == "first_response")
    started, due = (datetime.fromisoformat(first[k].replace("Z", "+00:00")) for k in ("started_at", "due_at"))
    assert due - started == timedelta(minutes=45)
    engine.dispose()


@pytest.mark.parametrize(("content", "says"), [
    (None, "(file): no such file"),
    ("[metrics.cpu_percent]\nthreshold = 80\n", "metrics.cpu_percent: cpu_percent is a percentage"),
])
def test_a_thresholds_file_that_cannot_be_used_stops_the_server(tmp_path: Path, content: str | None,
                                                                 says: str) -> None:
    file = tmp_path / "fleet.toml"
    if content is not None:
        file.write_text(content)
    env = {**os.environ, "EDGEWATCH_DATA_DIR": str(tmp_path), "EDGEWATCH_HTTP_PORT": str(free_port())}
    done = subprocess.run([sys.executable, "-m", "edgewatch.cli", "server", "--thresholds", str(file)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"edgewatch server: {file}: ") and says in last
