"""Where thresholds come from: a file, the database document, per-device overrides; reload on change."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from collector.thresholds import ThresholdSource, device_classes
from edgewatch.config import ConfigError
from rules import ThresholdError
from tickets.db import create_engine_for, migrate, session_factory
from tickets.models import THRESHOLDS_KEY, Device, Setting


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    return engine


def put_setting(engine: Engine, value: dict[str, object], version: int) -> None:
    with session_factory(engine)() as session:
        row = session.get(Setting, THRESHOLDS_KEY)
        if row is None:
            session.add(Setting(key=THRESHOLDS_KEY, value=value, version=version))
        else:
            row.value, row.version = value, version
        session.commit()


def test_database_document_device_overrides_and_reload(engine: Engine) -> None:
    source = ThresholdSource()
    sessions = session_factory(engine)
    with sessions() as session:
        first = source.poll(session)
        assert first is not None and first.rule_for("d", None, "cpu_percent").threshold == 60  # type: ignore[union-attr]
        assert source.poll(session) is None  # nothing changed
    put_setting(engine, {"metrics": {"cpu_percent": {"threshold": 50}}}, 2)
    with sessions() as session:
        session.add(Device(id="d-1", state="online", thresholds={"cpu_percent": 40}, device_class="router"))
        session.add(Device(id="d-2", state="online", device_class="gateway"))
        session.commit()
        changed = source.poll(session)
        assert changed is not None and source.version_changed
        assert changed.rule_for("other", None, "cpu_percent").threshold == 50  # type: ignore[union-attr]
        assert changed.rule_for("d-1", None, "cpu_percent").threshold == 40  # type: ignore[union-attr]
        assert changed.class_of("d-1") == "router"
        assert sorted(device_classes(session)) == [("d-1", "router"), ("d-2", "gateway")]
        session.execute(sa.update(Device).where(Device.id == "d-1").values(thresholds={"cpu_percent": 30}))
        session.commit()
        again = source.poll(session)
        assert again is not None and not source.version_changed
        assert again.rule_for("d-1", None, "cpu_percent").threshold == 30  # type: ignore[union-attr]


def test_a_broken_database_document_keeps_the_thresholds_in_force(engine: Engine) -> None:
    source = ThresholdSource()
    put_setting(engine, {"metrics": {"cpu_percent": {"threshold": -5}}}, 3)
    with session_factory(engine)() as session:
        assert source.poll(session) is None
    assert source.errors == 1


def test_file_wins_over_the_database_and_a_bad_file_fails_at_start(engine: Engine, tmp_path: Path) -> None:
    good = tmp_path / "t.toml"
    good.write_text("[metrics.latency_ms]\nthreshold = 100\n")
    put_setting(engine, {"metrics": {"latency_ms": {"threshold": 10}}}, 1)
    with session_factory(engine)() as session:
        loaded = ThresholdSource(good).poll(session)
    assert loaded is not None and loaded.rule_for("x", None, "latency_ms").threshold == 100  # type: ignore[union-attr]
    bad = tmp_path / "bad.toml"
    bad.write_text("[metrics.latency_ms]\nthreshold = 'high'\n")
    with pytest.raises(ThresholdError):
        ThresholdSource(bad)
    with pytest.raises(ConfigError):
        ThresholdSource(tmp_path / "missing.toml")
