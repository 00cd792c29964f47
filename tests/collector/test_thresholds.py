"""Where thresholds come from: a file, the database document, per-device overrides; reload on change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from collector.thresholds import ThresholdSource, device_classes
from common.config import ConfigError
from common.thresholds_file import load
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


def test_a_thresholds_file_is_reloaded_when_its_content_changes(engine: Engine, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "fleet.toml"
    file.write_text("[metrics.cpu_percent]\nthreshold = 50\n")
    errors: list[int] = []
    source = ThresholdSource(file, on_error=lambda: errors.append(1))
    sessions = session_factory(engine)

    def poll() -> float | None:
        with sessions() as session:
            found = source.poll(session)
        return None if found is None else found.rule_for("d", None, "cpu_percent").threshold  # type: ignore[union-attr]

    assert poll() == 50 and source.version_changed
    assert poll() is None
    # Same size, same modification time, other content: the content decides.
    stat = file.stat()
    file.write_text("[metrics.cpu_percent]\nthreshold = 45\n")
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert poll() == 45 and not source.version_changed
    file.write_text("[metrics.cpu_percent]\nthreshold = 45\nred = 40\n")
    assert poll() is None and poll() is None  # a broken file: reported once, the thresholds in force stay
    assert source.errors == 1 and errors == [1]
    assert f"thresholds file {file} not applied, keeping the thresholds in force: {file}: " \
           "metrics.cpu_percent.red: red level 40 is not above the threshold 45" in caplog.text
    file.unlink()
    assert poll() is None and poll() is None
    assert source.errors == 2 and f"{file}: (file): no such file" in caplog.text
    file.write_text("[metrics.cpu_percent]\nthreshold = 45\n")  # back to the content in force: nothing to do
    assert poll() is None
    file.write_text("[metrics.cpu_percent]\nthreshold = 44\n")
    assert poll() == 44
    file.write_text("[metrics.cpu_percent\n")
    assert poll() is None and source.errors == 3 and "(syntax)" in caplog.text


def test_with_a_file_the_database_thresholds_do_not_apply(engine: Engine, tmp_path: Path) -> None:
    file = tmp_path / "fleet.json"
    file.write_text('{"metrics": {"latency_ms": {"threshold": 100}}, "devices": {"d-1": {"latency_ms": 90}}}')
    put_setting(engine, {"metrics": {"latency_ms": {"threshold": 10}}}, 1)
    source = ThresholdSource(file)
    sessions = session_factory(engine)
    with sessions() as session:
        session.add(Device(id="d-2", state="online", thresholds={"latency_ms": 20}, device_class="router"))
        session.commit()
        loaded = source.poll(session)
        assert loaded is not None
        assert loaded.rule_for("x", None, "latency_ms").threshold == 100  # type: ignore[union-attr]
        assert loaded.rule_for("d-1", None, "latency_ms").threshold == 90  # type: ignore[union-attr]
        assert loaded.rule_for("d-2", None, "latency_ms").threshold == 100  # type: ignore[union-attr]
        session.execute(sa.update(Device).where(Device.id == "d-2").values(thresholds={"latency_ms": 30}))
        session.commit()
        assert source.poll(session) is None  # device rows' thresholds are not looked at
    put_setting(engine, {"metrics": {"latency_ms": {"threshold": 10}}}, 2)  # a class changed in the registry
    with sessions() as session:
        again = source.poll(session)
    assert again is loaded and source.version_changed


@pytest.mark.parametrize(("name", "data", "key", "reason"), [
    ("t.json", b"[1]", "(document)", "must be a JSON object"),
    ("t.json", b"{", "(syntax)", "Expecting property name"),
    ("t.toml", b"\xff", "(file)", "not UTF-8 text"),
    ("t.toml", b"[metrics]\ntemp_c = 70\ntemperature_c = 80\n", "metrics.temperature_c", "the same metric"),
])
def test_a_thresholds_file_error_names_the_file_key_and_reason(tmp_path: Path, name: str, data: bytes, key: str,
                                                               reason: str) -> None:
    file = tmp_path / name
    file.write_bytes(data)
    with pytest.raises((ConfigError, ThresholdError)) as info:
        load(file)
    assert (info.value.source, info.value.key) == (str(file), key)  # type: ignore[union-attr]
    assert reason in info.value.reason  # type: ignore[union-attr]
