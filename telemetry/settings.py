"""The `[telemetry]` settings, shared by the collector (which writes) and the server (which reads the
charts), and `open_store`, which builds the store they name.

One loader for both, so the server reads the store the collector writes without a second copy of
its address, credentials or retentions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from common.config import ConfigError, Settings
from telemetry.model import TelemetryStore

STORE_KINDS = ("sqlite", "influxdb", "victoriametrics", "none")
RAW_RETENTION_DAYS = 14.0
ROLLUP_1M_RETENTION_DAYS = 90.0
ROLLUP_1H_RETENTION_DAYS = 730.0


@dataclass(frozen=True)
class TelemetrySettings:
    store: str = "sqlite"  # sqlite | influxdb | victoriametrics | none
    sqlite_path: Path = Path("telemetry.sqlite3")
    influx_url: str = "http://127.0.0.1:8086"
    influx_token: str | None = None  # InfluxDB 2.x: an API token (sent as `Authorization: Token ...`)
    influx_org: str = "edgewatch"  # kept for older settings files: the 1.x API the store speaks has no org
    influx_bucket: str = "edgewatch"
    influx_database: str = ""  # "": the bucket's name (InfluxDB 2.x maps a database to the bucket of that name)
    influx_retention_policy: str = ""  # "": the database's default
    influx_username: str | None = None  # InfluxDB 1.x with authentication on
    influx_password: str | None = None
    victoriametrics_url: str = "http://127.0.0.1:8428"
    timeout_s: float = 10.0  # one HTTP request to InfluxDB or VictoriaMetrics
    rollup_every_s: float = 10.0  # InfluxDB: minutes written are rolled up this often
    buffer_points: int = 200_000  # bounded buffer while the store is slow or down
    flush_points: int = 5_000  # one write carries at most this many points
    flush_interval_s: float = 0.2
    retry_max_s: float = 30.0  # back-off ceiling while the store is unreachable
    retention_days: float = RAW_RETENTION_DAYS  # raw samples; 0 keeps all
    rollup_1m_retention_days: float = ROLLUP_1M_RETENTION_DAYS  # 1-minute roll-ups; 0 keeps all
    rollup_1h_retention_days: float = ROLLUP_1H_RETENTION_DAYS  # 1-hour roll-ups; 0 keeps all

    @property
    def database(self) -> str:
        return self.influx_database or self.influx_bucket

    def __repr__(self) -> str:  # never print a secret
        return f"TelemetrySettings(store={self.store!r})"


def load_telemetry_settings(
    config_file: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None, *, data_dir: Path
) -> TelemetrySettings:
    """Build the settings from the `[telemetry]` section and `EDGEWATCH_*`; a store kind this version
    does not know is a ConfigError naming the key."""
    tel = Settings.load(config_file, "telemetry", environ)
    store = tel.str("store", "sqlite", env="TELEMETRY_STORE") or "sqlite"
    if store not in STORE_KINDS:
        raise tel.invalid("store", f"expected one of {', '.join(STORE_KINDS)}, got {store!r}", env="TELEMETRY_STORE")
    return TelemetrySettings(
        store=store,
        sqlite_path=tel.path("sqlite_path", data_dir / "telemetry.sqlite3", env="TELEMETRY_SQLITE_PATH"),
        influx_url=tel.str("influx_url", "http://127.0.0.1:8086", env="INFLUX_URL") or "",
        influx_token=tel.str("influx_token", None, env="INFLUX_TOKEN"),
        influx_org=tel.str("influx_org", "edgewatch", env="INFLUX_ORG") or "edgewatch",
        influx_bucket=tel.str("influx_bucket", "edgewatch", env="INFLUX_BUCKET") or "edgewatch",
        influx_database=tel.str("influx_database", None, env="INFLUX_DATABASE") or "",
        influx_retention_policy=tel.str("influx_retention_policy", None, env="INFLUX_RETENTION_POLICY") or "",
        influx_username=tel.str("influx_username", None, env="INFLUX_USERNAME"),
        influx_password=tel.str("influx_password", None, env="INFLUX_PASSWORD"),
        victoriametrics_url=tel.str("victoriametrics_url", "http://127.0.0.1:8428", env="VICTORIAMETRICS_URL") or "",
        timeout_s=tel.float("timeout_s", 10.0, positive=True),
        rollup_every_s=tel.float("rollup_every_s", 10.0, minimum=0),
        buffer_points=tel.int("buffer_points", 200_000, minimum=1),
        flush_points=tel.int("flush_points", 5_000, minimum=1),
        flush_interval_s=tel.float("flush_interval_s", 0.2, positive=True),
        retry_max_s=tel.float("retry_max_s", 30.0, positive=True),
        retention_days=tel.float("retention_days", RAW_RETENTION_DAYS, env="TELEMETRY_RETENTION_DAYS", minimum=0),
        rollup_1m_retention_days=tel.float("rollup_1m_retention_days", ROLLUP_1M_RETENTION_DAYS,
                                           env="TELEMETRY_ROLLUP_1M_RETENTION_DAYS", minimum=0),
        rollup_1h_retention_days=tel.float("rollup_1h_retention_days", ROLLUP_1H_RETENTION_DAYS,
                                           env="TELEMETRY_ROLLUP_1H_RETENTION_DAYS", minimum=0),
    )


def open_store(settings: TelemetrySettings, *, clock: Callable[[], float] | None = None) -> TelemetryStore:
    """The store the settings name. Opening connects to nothing: the first write or read does."""
    import time

    now = clock or time.time
    if settings.store == "sqlite":
        from telemetry.sqlite import SqliteStore

        return SqliteStore(settings.sqlite_path, settings.retention_days,
                           rollup_1m_days=settings.rollup_1m_retention_days,
                           rollup_1h_days=settings.rollup_1h_retention_days, clock=now)
    if settings.store == "influxdb":
        from telemetry.influxdb import InfluxStore

        return InfluxStore(settings.influx_url, database=settings.database,
                           retention_policy=settings.influx_retention_policy, token=settings.influx_token,
                           username=settings.influx_username, password=settings.influx_password,
                           retention_days=settings.retention_days,
                           rollup_1m_days=settings.rollup_1m_retention_days,
                           rollup_1h_days=settings.rollup_1h_retention_days, timeout_s=settings.timeout_s,
                           rollup_every_s=settings.rollup_every_s, clock=now)
    if settings.store == "victoriametrics":
        from telemetry.victoriametrics import VictoriaMetricsStore

        return VictoriaMetricsStore(settings.victoriametrics_url, timeout_s=settings.timeout_s,
                                    latest_lookback_days=settings.retention_days or 30.0, clock=now)
    if settings.store == "none":
        from telemetry.null import NullStore

        return NullStore()
    raise ConfigError("telemetry.store", "store", f"expected one of {', '.join(STORE_KINDS)}, got {settings.store!r}")
