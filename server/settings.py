"""The server's settings, built once in `main()` from the `[server]` section and `EDGEWATCH_*`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edgewatch.config import ConfigError, Settings, default_data_dir, read_toml

DEFAULT_PORT = 8080
MIN_ADMIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class ServerSettings:
    data_dir: Path
    database_url: str | None = None  # None: SQLite in the data dir (tickets.db decides the name)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # A bootstrap admin token: stored hashed at start-up, never logged.
    admin_token: str | None = None
    cors_origins: tuple[str, ...] = ()
    # Cookies are Secure when the request came over HTTPS (also behind a trusted proxy); True: always.
    force_secure_cookies: bool = False
    session_max_age_s: int = 12 * 3600
    # Signs session cookies; None: a random key kept in the data dir (sessions survive restarts).
    session_secret: str | None = None
    telemetry_path: Path | None = None  # the collector's SQLite telemetry store, for device history
    poll_interval_s: float = 5.0  # how often the dashboard refreshes
    kpi_cache_s: float = 60.0  # how long a computed efficiency board is served again (0: never)
    # ... and how much longer it is still served while a fresh one is computed in the background
    kpi_stale_s: float = 600.0
    forwarded_allow_ips: str = "127.0.0.1"
    # The thresholds file the collector applies: when set, the API and dashboard show it read-only.
    thresholds_file: Path | None = None

    def __repr__(self) -> str:  # never print a secret
        return f"ServerSettings(data_dir={self.data_dir!s}, host={self.host}, port={self.port})"


def load_settings(
    config_file: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> ServerSettings:
    """Build the settings from the `[server]` section (and `[database] url`, `[collector] thresholds`)
    and the environment."""
    srv = Settings.load(config_file, "server", environ)
    db = Settings.load(config_file, "database", environ)
    data_dir = srv.path("data_dir", default_data_dir(), env="DATA_DIR")
    admin_token = srv.str("admin_token", None, env="ADMIN_TOKEN")
    if admin_token is not None and len(admin_token) < MIN_ADMIN_TOKEN_CHARS:
        raise ConfigError(
            "EDGEWATCH_ADMIN_TOKEN / server.admin_token",
            "admin_token",
            f"too short to be safe: use at least {MIN_ADMIN_TOKEN_CHARS} random characters",
        )
    port = srv.int("port", DEFAULT_PORT, env="HTTP_PORT", minimum=0)
    if port > 65535:
        raise ConfigError("EDGEWATCH_HTTP_PORT / server.port", "port", f"must be at most 65535, got {port}")
    telemetry = srv.str("telemetry_path", None, env="TELEMETRY_SQLITE_PATH")
    thresholds = srv.str("thresholds", None, env="THRESHOLDS") or _collector_thresholds(config_file)
    return ServerSettings(
        data_dir=data_dir,
        database_url=srv.str("database_url", None, env="DATABASE_URL") or db.str("url", None),
        host=srv.str("host", "127.0.0.1", env="HTTP_HOST") or "127.0.0.1",
        port=port,
        admin_token=admin_token,
        cors_origins=tuple(srv.list("cors_origins", [], env="CORS_ORIGINS")),
        force_secure_cookies=srv.bool("force_secure_cookies", False),
        session_max_age_s=srv.int("session_max_age_s", 12 * 3600, minimum=60),
        session_secret=srv.str("session_secret", None, env="SESSION_SECRET"),
        telemetry_path=Path(telemetry) if telemetry else data_dir / "telemetry.sqlite3",
        poll_interval_s=srv.float("poll_interval_s", 5.0, positive=True),
        kpi_cache_s=srv.float("kpi_cache_s", 60.0, minimum=0),
        kpi_stale_s=srv.float("kpi_stale_s", 600.0, minimum=0),
        forwarded_allow_ips=srv.str("forwarded_allow_ips", "127.0.0.1") or "127.0.0.1",
        thresholds_file=Path(thresholds).expanduser() if thresholds else None,
    )


def _collector_thresholds(config_file: str | os.PathLike[str] | None) -> str | None:
    """The collector's thresholds file, when the same settings file serves the central side."""
    if config_file is None:
        return None
    section = read_toml(config_file).get("collector")
    value = section.get("thresholds") if isinstance(section, dict) else None
    if value is not None and not isinstance(value, str):
        raise ConfigError(str(config_file), "collector.thresholds", f"expected a string, got {value!r}")
    return value or None
