"""The server's settings, built once in `main()` from the `[server]` section and `EDGEWATCH_*`."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from common.config import HTTP_DEFAULT_HOST, HTTP_DEFAULT_PORT, ConfigError, Settings, default_data_dir, read_toml
from telemetry.settings import TelemetrySettings, load_telemetry_settings
from tickets.intake import IntakeSettings, load_intake_settings
from tickets.knowledge import KnowledgeSettings
from tickets.notify.locale import ENGLISH_UTC, Locale
from tickets.notify.registry import NotifySettings
from tickets.policy import SlaPolicy, load_policy
from tickets.settings import load_locale, load_public_url, server_url

DEFAULT_PORT = HTTP_DEFAULT_PORT
MIN_ADMIN_TOKEN_CHARS = 16
# 32 random bytes hold 256 bits; the estimate below gives such secrets 200-250 (hex, base64), words
# and short or repetitive strings well under 160.
MIN_SESSION_SECRET_BYTES, MIN_SESSION_SECRET_BITS = 32, 160
MAX_BODY_BYTES = 1 << 20


def estimated_bits(secret: str) -> float:
    """A generous estimate of a secret's entropy: its length times the Shannon entropy of its characters.

    32 random bytes written as hex (64 characters of 16 kinds) or base64 (43 characters) pass; a word,
    a repeated character or a short string does not."""
    if not secret:
        return 0.0
    counts = Counter(secret)
    per_char = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    return per_char * len(secret)


@dataclass(frozen=True)
class ServerSettings:
    data_dir: Path
    database_url: str | None = None  # None: SQLite in the data dir (tickets.db decides the name)
    host: str = HTTP_DEFAULT_HOST
    port: int = DEFAULT_PORT
    # What every link in a notification starts with (`[tickets] public_url`); "": the server's own address.
    public_url: str = ""
    # `[tickets] default_language`, `default_timezone`: for whoever has none set, nor their customer.
    locale: Locale = ENGLISH_UTC
    # The `[sla]` policy, for the tickets the server opens (manual tickets, rating follow-ups) and the
    # clocks its actions move.
    sla: SlaPolicy = field(default_factory=SlaPolicy)
    # `[notifications] allow_private_addresses`: contact URLs may point at internal receivers.
    allow_private_addresses: bool = False
    # A bootstrap admin token: stored hashed at start-up, never logged.
    admin_token: str | None = None
    cors_origins: tuple[str, ...] = ()
    # Cookies are Secure when the request came over HTTPS (also behind a trusted proxy); True: always.
    force_secure_cookies: bool = False
    session_max_age_s: int = 12 * 3600
    # Signs session cookies; None: a random key kept in the data dir (sessions survive restarts).
    session_secret: str | None = None
    telemetry_path: Path | None = None  # the collector's SQLite telemetry store, for device history
    # The `[telemetry]` section the collector writes by: which store the charts read, and how to reach it.
    # None (or store "sqlite"): the SQLite file at `telemetry_path`.
    telemetry: TelemetrySettings | None = None
    poll_interval_s: float = 5.0  # how often the dashboard refreshes
    # How long one live-update stream lasts before the browser reconnects (and is authenticated again).
    events_max_s: float = 300.0
    kpi_cache_s: float = 60.0  # how long a computed efficiency board is served again (0: never)
    # ... and how much longer it is still served while a fresh one is computed in the background
    kpi_stale_s: float = 600.0
    forwarded_allow_ips: str = "127.0.0.1"
    # The thresholds file the collector applies: when set, the API and dashboard show it read-only.
    thresholds_file: Path | None = None
    max_body_bytes: int = MAX_BODY_BYTES  # larger request bodies are answered 413 unread
    auth_failure_limit: str = "20 per 5 minutes"  # 401s a client address may earn before it gets 429s
    intake: IntakeSettings = field(default_factory=IntakeSettings)  # `[intake]`: other monitors' alerts
    # `[knowledge]`: review dates of published entries, what counts as a repeated fault
    knowledge: KnowledgeSettings = field(default_factory=KnowledgeSettings)

    def __post_init__(self) -> None:
        if not self.public_url:
            object.__setattr__(self, "public_url", server_url(self.host, self.port))

    def __repr__(self) -> str:  # never print a secret
        return f"ServerSettings(data_dir={self.data_dir!s}, host={self.host}, port={self.port})"


def load_settings(
    config_file: str | os.PathLike[str] | None,
    environ: Mapping[str, str] | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
) -> ServerSettings:
    """Build the settings from the `[server]` section (and `[database] url`, `[tickets] public_url`,
    `[collector] thresholds`, `[telemetry]`) and the environment; `host` and `port` (the command line's)
    win over both."""
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
    configured_port = srv.int("port", DEFAULT_PORT, env="HTTP_PORT", minimum=0)
    port = configured_port if port is None else port
    if port > 65535:
        raise ConfigError("EDGEWATCH_HTTP_PORT / server.port", "port", f"must be at most 65535, got {port}")
    configured_host = srv.str("host", HTTP_DEFAULT_HOST, env="HTTP_HOST") or HTTP_DEFAULT_HOST
    host = host or configured_host
    telemetry = load_telemetry_settings(config_file, environ, data_dir=data_dir)
    sqlite_path = srv.str("telemetry_path", None, env="TELEMETRY_SQLITE_PATH")  # older files name it here
    if sqlite_path:
        telemetry = replace(telemetry, sqlite_path=Path(sqlite_path).expanduser())
    session_secret = srv.str("session_secret", None, env="SESSION_SECRET")
    if session_secret is not None and (len(session_secret.encode()) < MIN_SESSION_SECRET_BYTES
                                       or estimated_bits(session_secret) < MIN_SESSION_SECRET_BITS):
        raise ConfigError(
            "EDGEWATCH_SESSION_SECRET / server.session_secret", "session_secret",
            "too weak to sign sessions: use 32 random bytes, e.g. the output of `openssl rand -hex 32`",
        )
    thresholds = srv.str("thresholds", None, env="THRESHOLDS") or _collector_thresholds(config_file)
    return ServerSettings(
        data_dir=data_dir,
        database_url=srv.str("database_url", None, env="DATABASE_URL") or db.str("url", None),
        host=host,
        port=port,
        public_url=load_public_url(config_file, environ, host=host, port=port),
        locale=load_locale(config_file, environ),
        sla=load_policy(Settings.load(config_file, "sla", environ)),
        # The whole [notifications] section is read (and checked), for this one key.
        allow_private_addresses=NotifySettings.load(config_file, environ, data_dir=data_dir).allow_private_addresses,
        admin_token=admin_token,
        cors_origins=tuple(srv.list("cors_origins", [], env="CORS_ORIGINS")),
        force_secure_cookies=srv.bool("force_secure_cookies", False),
        session_max_age_s=srv.int("session_max_age_s", 12 * 3600, minimum=60),
        session_secret=session_secret,
        telemetry_path=telemetry.sqlite_path,
        telemetry=telemetry,
        poll_interval_s=srv.float("poll_interval_s", 5.0, positive=True),
        kpi_cache_s=srv.float("kpi_cache_s", 60.0, minimum=0),
        kpi_stale_s=srv.float("kpi_stale_s", 600.0, minimum=0),
        forwarded_allow_ips=srv.str("forwarded_allow_ips", "127.0.0.1") or "127.0.0.1",
        max_body_bytes=srv.int("max_body_bytes", MAX_BODY_BYTES, env="HTTP_MAX_BODY_BYTES", minimum=1024),
        auth_failure_limit=_rate("auth_failure_limit",
                                 srv.str("auth_failure_limit", "20 per 5 minutes", env="AUTH_FAILURE_LIMIT") or ""),
        thresholds_file=Path(thresholds).expanduser() if thresholds else None,
        intake=load_intake_settings(config_file, environ),
        knowledge=KnowledgeSettings.from_settings(Settings.load(config_file, "knowledge", environ)),
    )


def _rate(key: str, text: str) -> str:
    from limits import parse

    try:
        parse(text)
    except ValueError:
        raise ConfigError(f"server.{key}", key, f"expected a rate like '20 per 5 minutes', got {text!r}") from None
    return text


def _collector_thresholds(config_file: str | os.PathLike[str] | None) -> str | None:
    """The collector's thresholds file, when the same settings file serves the central side."""
    if config_file is None:
        return None
    section = read_toml(config_file).get("collector")
    value = section.get("thresholds") if isinstance(section, dict) else None
    if value is not None and not isinstance(value, str):
        raise ConfigError(str(config_file), "collector.thresholds", f"expected a string, got {value!r}")
    return value or None
