"""Where the thresholds come from, as the API shows it: a thresholds file (the only source, read-only
here) or the database; red levels of a metric's own; and the metric catalogue the dashboard reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from server.settings import load_settings
from tests.server.harness import Harness, harness
from tickets.db import create_engine_for, migrate, session_factory
from tickets.models import THRESHOLDS_KEY, Device, Setting

FILE = """\
[metrics.cpu_percent]
threshold = 80
red = 95

[classes.router]
latency_ms = 150

[devices."rt-1"]
device_class = "router"
mem_percent = { threshold = 50, red = 70 }
"""


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'edgewatch.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def thresholds_file(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(FILE)
    return path


@pytest.fixture
def with_file(engine: Engine, tmp_path: Path, thresholds_file: Path) -> Iterator[Harness]:
    with harness(session_factory(engine), tmp_path, thresholds_file=thresholds_file) as h:
        yield h


def test_with_a_file_the_document_is_the_files_and_says_so(with_file: Harness, thresholds_file: Path) -> None:
    got = with_file.client.get("/api/v1/thresholds", headers=with_file.auth("engineer")).json()
    assert got["source"] == {"kind": "file", "path": str(thresholds_file)}
    assert got["document"]["metrics"] == {"cpu_percent": {"threshold": 80, "red": 95}}
    assert got["version"] == 0 and got["updated_by"] is None and got["error"] is None
    assert got["updated_at"] is not None


def test_with_a_file_every_write_of_thresholds_is_refused_naming_it(with_file: Harness, thresholds_file: Path) -> None:
    c, sup = with_file.client, with_file.auth("supervisor")
    refused = c.put("/api/v1/thresholds", json={"document": {"metrics": {"cpu_percent": 50}}, "version": 0},
                    headers=sup)
    assert refused.status_code == 409
    assert f"managed in the thresholds file {thresholds_file}" in refused.json()["detail"]
    with with_file.sessions() as session:
        assert session.get(Setting, THRESHOLDS_KEY) is None  # nothing stored

    with_file.add_device("gw-1", "Acme Power", device_class="gateway")
    for body in ({"thresholds": {"cpu_percent": 50}}, {"thresholds": None, "device_class": "router"}):
        device = c.put("/api/v1/devices/gw-1", json=body, headers=sup)
        assert device.status_code == 409, body
        assert str(thresholds_file) in device.json()["detail"] and "class and customer" in device.json()["detail"]
    with with_file.sessions() as session:
        row = session.get(Device, "gw-1")
        assert row is not None and row.thresholds is None and row.device_class == "gateway"  # nothing changed

    # The class and the customer are the registry's: still set here.
    moved = c.put("/api/v1/devices/gw-1", json={"device_class": "router", "customer_id": with_file.customers["Beta Water"]},
                  headers=sup)
    assert moved.status_code == 200 and moved.json()["device_class"] == "router"


def test_with_a_file_devices_show_and_chart_the_files_thresholds(with_file: Harness) -> None:
    c, sup = with_file.client, with_file.auth("supervisor")
    with_file.add_device("rt-1", "Acme Power", device_class=None)
    with with_file.sessions() as session:  # stored before the file was configured: not in force now
        row = session.get(Device, "rt-1")
        assert row is not None
        row.thresholds = {"cpu_percent": 10}
        session.commit()
    device = c.get("/api/v1/devices/rt-1", headers=sup).json()
    assert device["thresholds"] == {"mem_percent": {"threshold": 50, "red": 70}}
    listed = {d["id"]: d for d in c.get("/api/v1/devices", headers=sup).json()["items"]}
    assert listed["rt-1"]["thresholds"] == device["thresholds"]
    lines = {m["metric"]: m["threshold"] for m in c.get("/api/v1/devices/rt-1/history", headers=sup).json()["metrics"]}
    assert lines["cpu_percent"] == {"threshold": 80, "red_level": 95, "clear_level": 80}
    assert lines["mem_percent"] == {"threshold": 50, "red_level": 70, "clear_level": 50}
    assert lines["latency_ms"]["threshold"] == 150  # the file's router class
    # A class set in the registry wins over the file's, as in the collector.
    assert c.put("/api/v1/devices/rt-1", json={"device_class": "gateway"}, headers=sup).status_code == 200
    lines = {m["metric"]: m["threshold"] for m in c.get("/api/v1/devices/rt-1/history", headers=sup).json()["metrics"]}
    assert lines["latency_ms"]["threshold"] == 200


def test_an_edited_file_shows_at_once_and_a_broken_one_keeps_the_last_valid(with_file: Harness,
                                                                            thresholds_file: Path) -> None:
    c, sup = with_file.client, with_file.auth("supervisor")
    thresholds_file.write_text("[metrics.cpu_percent]\nthreshold = 65\n")
    assert c.get("/api/v1/thresholds", headers=sup).json()["document"] == {"metrics": {"cpu_percent": {"threshold": 65}}}
    thresholds_file.write_text("[metrics.cpu_percent]\nthreshold = 70\nred = 101\n")
    got = c.get("/api/v1/thresholds", headers=sup).json()
    assert got["document"] == {"metrics": {"cpu_percent": {"threshold": 65}}}
    assert got["error"].startswith(f"{thresholds_file}: metrics.cpu_percent.red: ")
    assert "can never be exceeded" in got["error"]


def test_a_class_change_the_files_thresholds_cannot_take_is_refused(engine: Engine, tmp_path: Path) -> None:
    file = tmp_path / "t.toml"
    file.write_text('[classes.router]\nmem_percent = { threshold = 65, red = 90 }\n\n'
                    '[devices."gw-1"]\nmem_percent = { red = 65 }\n')  # above the default 60, not above 65
    with harness(session_factory(engine), tmp_path, thresholds_file=file) as h:
        h.add_device("gw-1", "Acme Power", device_class="gateway")
        answer = h.client.put("/api/v1/devices/gw-1", json={"device_class": "router"}, headers=h.auth("admin"))
        assert answer.status_code == 422
        assert answer.json()["detail"] == ("thresholds.mem_percent.red: red level 65 is not above the threshold 65; "
                                           "it must be above it")
        assert h.client.get("/api/v1/devices/gw-1", headers=h.auth("admin")).json()["device_class"] == "gateway"


def test_without_a_file_the_database_is_the_source_and_red_can_be_set(engine: Engine, tmp_path: Path) -> None:
    with harness(session_factory(engine), tmp_path) as h:
        c, sup = h.client, h.auth("supervisor")
        assert c.get("/api/v1/thresholds", headers=sup).json()["source"] == {"kind": "database", "path": None}
        doc = {"metrics": {"mem_percent": {"threshold": 80, "red": 95}, "temp_c": {"threshold": 60, "red": 75}}}
        saved = c.put("/api/v1/thresholds", json={"document": doc, "version": 0}, headers=sup)
        assert saved.status_code == 200 and saved.json()["source"]["kind"] == "database"
        bad = c.put("/api/v1/thresholds", json={"document": {"metrics": {"mem_percent": {"threshold": 80, "red": 70}}}},
                    headers=sup)
        assert bad.status_code == 422 and bad.json()["key"] == "metrics.mem_percent.red"
        assert "not above the threshold 80" in bad.json()["detail"]
        h.add_device("gw-1", "Acme Power")
        own = c.put("/api/v1/devices/gw-1", json={"thresholds": {"cpu_percent": {"threshold": 90, "red": 98}}},
                    headers=sup)
        assert own.status_code == 200 and own.json()["thresholds"] == {"cpu_percent": {"threshold": 90, "red": 98}}
        lines = {m["metric"]: m["threshold"] for m in c.get(
            "/api/v1/devices/gw-1/history", headers=sup, params=[("metric", m) for m in
                                                                  ("cpu_percent", "mem_percent", "temperature_c")],
        ).json()["metrics"]}
        assert lines["cpu_percent"]["red_level"] == 98 and lines["mem_percent"]["red_level"] == 95
        assert lines["temperature_c"] == {"threshold": 60, "red_level": 75, "clear_level": 60}


def test_the_metric_catalogue(engine: Engine, tmp_path: Path) -> None:
    with harness(session_factory(engine), tmp_path) as h:
        answer = h.client.get("/api/v1/metrics-catalog", headers=h.auth("customer"))
    assert answer.status_code == 200
    body = answer.json()
    items = {m["name"]: m for m in body["items"]}
    assert list(items)[:3] == ["cpu_percent", "mem_percent", "latency_ms"]
    assert items["cpu_percent"] == {"name": "cpu_percent", "label": "CPU usage", "short": "CPU", "unit": "%",
                                    "minimum": 0.0, "maximum": 100.0, "default_threshold": 60.0, "aliases": []}
    assert items["temperature_c"]["minimum"] == -273.15 and items["temperature_c"]["aliases"] == ["temp_c"]
    assert items["load1_per_core"]["aliases"] == ["load_per_core"]
    assert body["red_factor"] == 1.5


def test_the_server_takes_the_thresholds_file_from_its_section_the_collectors_or_the_environment(
        tmp_path: Path) -> None:
    config = tmp_path / "central.toml"
    config.write_text('[collector]\nthresholds = "/etc/edgewatch/fleet.toml"\n')
    assert load_settings(config, {}).thresholds_file == Path("/etc/edgewatch/fleet.toml")
    config.write_text('[collector]\nthresholds = "/a.toml"\n[server]\nthresholds = "/b.toml"\n')
    assert load_settings(config, {}).thresholds_file == Path("/b.toml")
    assert load_settings(config, {"EDGEWATCH_THRESHOLDS": "/c.toml"}).thresholds_file == Path("/c.toml")
    assert load_settings(None, {}).thresholds_file is None


def test_a_collector_thresholds_setting_that_is_not_text_is_refused(tmp_path: Path) -> None:
    from common.config import ConfigError

    config = tmp_path / "central.toml"
    config.write_text("[collector]\nthresholds = 5\n")
    with pytest.raises(ConfigError, match=r"collector\.thresholds: expected a string, got 5"):
        load_settings(config, {})
