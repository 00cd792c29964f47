"""The `[telemetry]` section is read once, by one loader, for the collector (which writes) and the
server (which reads): both reach the same store."""

from __future__ import annotations

from pathlib import Path

import pytest

import collector.settings
import server.settings
from common.config import ConfigError
from telemetry.influxdb import InfluxStore
from telemetry.settings import load_telemetry_settings, open_store
from telemetry.sqlite import SqliteStore
from telemetry.victoriametrics import VictoriaMetricsStore


def test_collector_and_server_read_the_same_store(tmp_path: Path) -> None:
    config = tmp_path / "central.toml"
    config.write_text('[telemetry]\nstore = "influxdb"\ninflux_url = "http://influx.internal:8086"\n'
                      'influx_bucket = "fleet"\nretention_days = 7\nrollup_1h_retention_days = 365\n')
    env = {"EDGEWATCH_DATA_DIR": str(tmp_path), "EDGEWATCH_INFLUX_TOKEN": "secret-token"}
    col = collector.settings.load_settings(config, env).telemetry
    srv = server.settings.load_settings(config, env).telemetry
    assert col == srv and srv is not None
    assert (srv.store, srv.influx_url, srv.database, srv.influx_token) == (
        "influxdb", "http://influx.internal:8086", "fleet", "secret-token")
    assert (srv.retention_days, srv.rollup_1m_retention_days, srv.rollup_1h_retention_days) == (7, 90, 365)
    assert "secret-token" not in repr(srv)
    store = open_store(srv)
    assert isinstance(store, InfluxStore) and store.where == "InfluxDB http://influx.internal:8086 database 'fleet'"
    store.close()


def test_each_kind_opens_its_store(tmp_path: Path) -> None:
    for kind, cls in (("sqlite", SqliteStore), ("victoriametrics", VictoriaMetricsStore), ("influxdb", InfluxStore)):
        settings = load_telemetry_settings(None, {"EDGEWATCH_TELEMETRY_STORE": kind}, data_dir=tmp_path)
        store = open_store(settings)
        assert isinstance(store, cls) and store.kind == kind
        store.close()
    assert open_store(load_telemetry_settings(None, {"EDGEWATCH_TELEMETRY_STORE": "none"},
                                              data_dir=tmp_path)).available is False


def test_the_servers_older_telemetry_path_key_still_names_the_sqlite_file(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f'[server]\ntelemetry_path = "{tmp_path}/elsewhere.sqlite3"\n')
    srv = server.settings.load_settings(config, {"EDGEWATCH_DATA_DIR": str(tmp_path)})
    assert srv.telemetry_path == tmp_path / "elsewhere.sqlite3"
    assert srv.telemetry is not None and srv.telemetry.sqlite_path == tmp_path / "elsewhere.sqlite3"


@pytest.mark.parametrize("source, value", [("file", "influx"), ("env", "VictoriaMetrics")])
def test_a_misspelt_store_is_a_config_error_naming_where(tmp_path: Path, source: str, value: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[telemetry]\nstore = "{value}"\n' if source == "file" else "")
    env = {"EDGEWATCH_TELEMETRY_STORE": value} if source == "env" else {}
    for load in (collector.settings.load_settings, server.settings.load_settings):
        with pytest.raises(ConfigError) as err:
            load(config, {**env, "EDGEWATCH_DATA_DIR": str(tmp_path)})
        where = "EDGEWATCH_TELEMETRY_STORE" if source == "env" else f"{config}"
        assert where in str(err.value) and "victoriametrics" in str(err.value) and repr(value) in str(err.value)
