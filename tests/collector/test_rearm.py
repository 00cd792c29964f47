"""Re-arm requests are stored first and applied to the engine only once committed; a request for a
device the engine does not hold is left for the collector that does, unless nothing is to re-arm."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from collector.rearm import store_rearms
from common.files import key_file
from rules import RuleEngine, Sample
from tickets.db import create_engine_for, migrate, session_factory
from tickets.models import RuleRearm, RuleState


def test_requests_are_stored_first_and_the_engine_is_left_to_the_caller(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'e.db'}")
    migrate(engine)
    rules = RuleEngine()
    rules.feed(Sample("gw-1", 1, 1.0, {"cpu_percent": 95.0, "mem_percent": 95.0}))
    other = {"seq": 1, "instance": None, "device_class": None, "metrics": {"cpu_percent": [0, "red", 0]}}
    with session_factory(engine).begin() as s:
        s.add_all([RuleRearm(device_id="gw-1", metric="cpu_percent", requested_by="t"),
                   RuleRearm(device_id="gw-elsewhere", metric="cpu_percent", requested_by="t"),
                   RuleRearm(device_id="gw-gone", metric="cpu_percent", requested_by="t")])
        s.add(RuleState(device_id="gw-elsewhere", state=other))
    with session_factory(engine).begin() as s:
        applied = store_rearms(s, rules)
    assert [(d, m) for d, m, _ in applied] == [("gw-1", "cpu_percent")]
    assert set(rules.active_alerts()) == {("gw-1", "cpu_percent"), ("gw-1", "mem_percent")}  # untouched here
    with engine.connect() as conn:
        stored = conn.scalar(sa.select(RuleState.state).where(RuleState.device_id == "gw-1"))
        left = conn.execute(sa.select(RuleRearm.device_id)).scalars().all()
    assert stored is not None and set(stored["metrics"]) == {"mem_percent"}
    assert left == ["gw-elsewhere"]  # another collector's device, still alerting there
    engine.dispose()


def test_two_processes_creating_a_key_file_at_once_get_the_same_key(tmp_path: Path) -> None:
    got: list[bytes] = []
    start = threading.Barrier(8)

    def create(n: int) -> None:
        start.wait()
        got.append(key_file(tmp_path / "k" / "secrets.key", lambda: f"key-{n}".encode()))

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 8 and len(set(got)) == 1
    assert (tmp_path / "k" / "secrets.key").read_bytes() == got[0]
