"""`edgewatch collector` on the command line: settings errors, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from collector.cli import main
from tests.collector.helpers import pub, sample, wait_for
from tests.support.services import Mosquitto


def test_bad_setting_exits_2_naming_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EDGEWATCH_MQTT_URL", "http://nowhere")
    assert main([]) == 2
    assert "EDGEWATCH_MQTT_URL" in capsys.readouterr().err


def test_bad_thresholds_file_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEWATCH_DATA_DIR", str(tmp_path))
    bad = tmp_path / "t.toml"
    bad.write_text("[metrics.cpu_percent]\nthreshold = -1\n")
    assert main(["--thresholds", str(bad)]) == 2
    assert "metrics.cpu_percent" in capsys.readouterr().err


@pytest.mark.mosquitto
def test_runs_and_stops_cleanly_on_sigterm(broker: Mosquitto, tmp_path: Path) -> None:
    env = {**os.environ, "EDGEWATCH_MQTT_URL": broker.url, "EDGEWATCH_DATA_DIR": str(tmp_path),
           "EDGEWATCH_MQTT_CLIENT_ID": "cli-test"}
    proc = subprocess.Popen([sys.executable, "-m", "edgewatch.cli", "collector"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (tmp_path / "edgewatch.db").exists(), timeout=30)
        seq = iter(range(1, 10_000))

        def delivered() -> bool:  # publish until the collector, once subscribed, has stored one
            pub(broker.port, "edgewatch/v1/c-1/telemetry", sample("c-1", next(seq), cpu_percent=5))
            return (tmp_path / "telemetry.sqlite3").exists()

        wait_for(delivered, timeout=30, what="telemetry written")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
    assert b"collector running" in out


@pytest.mark.mosquitto
def test_without_the_ticket_runtime_tickets_follow_the_configured_sla_and_links(broker: Mosquitto,
                                                                               tmp_path: Path) -> None:
    from datetime import timedelta

    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from tickets.db import create_engine_for
    from tickets.models import Clock, OutboxMessage, StaffGroup, Ticket

    env = {**os.environ, "EDGEWATCH_MQTT_URL": broker.url, "EDGEWATCH_DATA_DIR": str(tmp_path),
           "EDGEWATCH_MQTT_CLIENT_ID": "cli-no-runtime", "EDGEWATCH_PUBLIC_URL": "https://desk.example.com/ew/",
           "EDGEWATCH_SLA_FIRST_RESPONSE_RED": "7m"}
    proc = subprocess.Popen([sys.executable, "-m", "edgewatch.cli", "collector", "--no-ticket-runtime"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    engine = create_engine_for(f"sqlite:///{tmp_path / 'edgewatch.db'}")
    try:
        wait_for(lambda: (tmp_path / "edgewatch.db").exists(), timeout=30)

        def staffed() -> bool:  # once the collector has migrated the database
            try:
                with Session(engine) as s:
                    s.add(StaffGroup(name="senior engineers", level="senior", channel="email",
                                     address="senior@desk.test"))
                    s.commit()
                return True
            except OperationalError:
                return False

        wait_for(staffed, timeout=30, what="the migrated database")
        seq = iter(range(1, 10_000))

        def opened() -> Ticket | None:
            pub(broker.port, "edgewatch/v1/c-2/telemetry", sample("c-2", next(seq), cpu_percent=97))
            with Session(engine) as s:
                return s.scalars(select(Ticket)).first()

        ticket = wait_for(opened, timeout=30, what="the red ticket")
        with Session(engine) as s:
            (row,) = s.scalars(select(OutboxMessage)).all()
            assert f"Ticket: https://desk.example.com/ew/tickets/{ticket.id}\n" in row.payload["text"]
            first = s.scalars(select(Clock).where(Clock.name == "first_response")).one()
            assert first.due_at - first.started_at == timedelta(minutes=7)
    finally:
        engine.dispose()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
    assert b"links in notifications start with https://desk.example.com/ew" in out


@pytest.mark.mosquitto
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_a_stop_sent_to_the_whole_process_group_logs_no_error(broker: Mosquitto, tmp_path: Path, signum: int) -> None:
    """systemd (control group), `timeout`, Ctrl-C and a closing terminal signal the MQTT process too: still a
    normal stop, said once, with no ERROR line."""
    import time

    env = {**os.environ, "EDGEWATCH_MQTT_URL": broker.url, "EDGEWATCH_DATA_DIR": str(tmp_path),
           "EDGEWATCH_MQTT_CLIENT_ID": "group-stop"}
    log_path = tmp_path / "collector.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "edgewatch.cli", "collector"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: b"connected to the broker" in log_path.read_bytes(), timeout=60, what="a connected collector")
        time.sleep(0.5)
        os.killpg(proc.pid, signum)
        assert proc.wait(30) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log_path.read_text()
    assert " ERROR " not in text and "Traceback" not in text, text
    assert text.count(f"{signal.Signals(signum).name}: stopping") == 1, text
