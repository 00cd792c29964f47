"""Data files are created 0600 in 0700 directories under the usual umask (022): the ticket database
(and its WAL), the telemetry store, the agent's spool, the local inbox, the session key. An existing
directory the operator chose is left as it is."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from agent.spool import Spool
from server.app import session_key
from server.settings import ServerSettings
from telemetry.model import Point
from telemetry.sqlite import SqliteStore
from tickets.db import create_engine_for, migrate
from tickets.notify.inbox import InboxChannel
from tickets.notify.message import Notification


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_data_file_is_private(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    data = tmp_path / "data"
    engine = create_engine_for(f"sqlite:///{data / 'edgewatch.db'}")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE probe (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO probe VALUES (1)"))
    assert mode(data / "edgewatch.db-wal") == 0o600  # while open: SQLite removes it on the last close
    engine.dispose()
    store = SqliteStore(data / "telemetry" / "telemetry.sqlite3")
    store.write([Point("gw-1", 1, 1.0, 1.0, {"cpu_percent": 1.0})])
    store.close()
    spool = Spool(data / "agent" / "spool.sqlite3", 100)
    spool.close()
    InboxChannel(data / "inbox.jsonl").send(Notification(idempotency_key="k1", channel="inbox", address="ops",
                                                         subject="s", text="t"))
    session_key(ServerSettings(data_dir=data / "server"))

    files = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"edgewatch.db", "telemetry.sqlite3", "spool.sqlite3",
                                       "inbox.jsonl", "session.key"}
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o600) for p in files}
    dirs = [data, *(p for p in data.rglob("*") if p.is_dir())]
    assert {str(p): oct(mode(p)) for p in dirs} == {str(p): oct(0o700) for p in dirs}
    assert mode(tmp_path) == 0o755  # the operator's own directory is never changed
