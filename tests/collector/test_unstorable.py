"""A row the ticket database refuses (not a passing outage) must not stall the stream.

The database itself refuses here: a trigger raises for one device's registry row, on SQLite and
on PostgreSQL. The collector retries the batch row by row, skips and counts the refused row, and
goes on; everything else of the batch is committed and its messages are acknowledged.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from collector.app import Collector
from telemetry.sqlite import read_sqlite_samples
from tests.collector.helpers import device, handled, pub_lines, sample, settings, wait_for
from tests.support.services import Mosquitto, Postgres
from tickets.db import create_engine_for, migrate
from tickets.models import RuleState

pytestmark = pytest.mark.mosquitto
T = "edgewatch/v1/{}/telemetry"

SQLITE_TRIGGER = """
CREATE TRIGGER refuse_poison BEFORE INSERT ON devices WHEN NEW.id = 'poison-1'
BEGIN SELECT RAISE(ABORT, 'device poison-1 refused by policy'); END
"""
POSTGRES_TRIGGER = [
    """CREATE FUNCTION refuse_poison() RETURNS trigger AS $$
       BEGIN IF NEW.id = 'poison-1' THEN RAISE EXCEPTION 'device poison-1 refused by policy'; END IF;
       RETURN NEW; END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER refuse_poison BEFORE INSERT ON devices FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
]


def _run(broker: Mosquitto, tmp_path: Path, url: str) -> None:
    c = Collector(settings(tmp_path, broker.port, database_url=url))
    c.start(timeout=30)
    try:
        messages = [(T.format(d), sample(d, seq, cpu_percent=20.0 + seq)) for seq in (1, 2, 3)
                    for d in ("gw-ok", "poison-1")]
        pub_lines(broker.port, messages)
        wait_for(lambda: handled(c) >= 6, what="6 messages processed")
        m = c.metrics
        assert m.value("edgewatch_collector_messages_total", outcome="processed") == 6
        assert m.value("edgewatch_collector_unstorable_rows_total", table="devices") >= 1
        assert m.value("edgewatch_collector_commit_errors_total") >= 1
        ok = wait_for(lambda: device(c.db_engine, "gw-ok"), what="gw-ok's registry row")
        assert ok["latest_seq"] == 3
        assert device(c.db_engine, "poison-1") is None
        with c.db_engine.connect() as conn:
            states = dict(conn.execute(sa.select(RuleState.device_id, RuleState.state)).all())
        assert states["gw-ok"]["seq"] == 3 and states["poison-1"]["seq"] == 3  # rule state kept for both
        # The stream goes on after the refusal.
        pub_lines(broker.port, [(T.format("gw-ok"), sample("gw-ok", 4, cpu_percent=30.0))])
        wait_for(lambda: (device(c.db_engine, "gw-ok") or {}).get("latest_seq") == 4, what="a later sample")
        assert c.writer.flush(10)
    finally:
        c.stop()
    # Telemetry of both devices is in the store, and every message was acknowledged: a new
    # collector on the same session gets nothing again.
    stored = read_sqlite_samples(tmp_path / "telemetry.sqlite3")
    assert sorted({s["device_id"] for s in stored}) == ["gw-ok", "poison-1"] and len(stored) == 7
    again = Collector(settings(tmp_path, broker.port, database_url=url))
    again.start(timeout=30)
    try:
        time.sleep(1.0)
        assert handled(again) == 0
    finally:
        again.stop()


def test_a_refused_row_is_skipped_and_counted_on_sqlite(broker: Mosquitto, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'edgewatch.db'}"
    engine = create_engine_for(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(SQLITE_TRIGGER)
    engine.dispose()
    _run(broker, tmp_path, url)


@pytest.mark.postgres
def test_a_refused_row_is_skipped_and_counted_on_postgresql(broker: Mosquitto, postgres_server: Postgres,
                                                            tmp_path: Path) -> None:
    url = postgres_server.url
    engine = create_engine_for(url)
    with engine.begin() as conn:  # a clean schema for this test
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    migrate(engine)
    with engine.begin() as conn:
        for statement in POSTGRES_TRIGGER:
            conn.exec_driver_sql(statement)
    engine.dispose()
    _run(broker, tmp_path, url)
