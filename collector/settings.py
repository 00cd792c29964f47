"""The collector's settings, built once in `main()` from the config file and the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from collector.predictive import load_predictive
from common.config import ConfigError, Settings, default_data_dir, parse_broker_url
from rules.predict import PredictiveConfig
from telemetry.settings import STORE_KINDS, TelemetrySettings, load_telemetry_settings

__all__ = ["STORE_KINDS", "CollectorSettings", "MqttSettings", "TelemetrySettings", "load_settings"]

DEFAULT_CLIENT_ID = "edgewatch-collector"


@dataclass(frozen=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    client_id: str = DEFAULT_CLIENT_ID
    username: str | None = None
    password: str | None = None
    topic_prefix: str = "edgewatch/v1"
    telegraf_topics: tuple[str, ...] = ("telegraf/#",)
    # How long the broker keeps our session (and queues for it) while we are away.
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    # Run the MQTT client in a child process, so that the network work and the processing each
    # get a core instead of sharing one interpreter lock.
    separate_process: bool = True
    # "5" (session expiry, Receive Maximum) or "3.1.1" for brokers without MQTT 5, such as the
    # embedded Python broker the demo falls back to; both keep a persistent session.
    protocol: str = "5"
    ca_file: Path | None = None  # mqtts:// with a private CA; default: the system's trusted CAs


@dataclass(frozen=True)
class CollectorSettings:
    data_dir: Path
    database_url: str | None = None  # None: SQLite in the data dir (tickets.db decides the name)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    metrics_port: int | None = None  # None: no Prometheus endpoint; 0: a free port
    metrics_host: str = "127.0.0.1"
    thresholds_file: Path | None = None
    thresholds_poll_s: float = 5.0
    batch_size: int = 500
    batch_wait_s: float = 0.005  # how long a batch lingers for more messages once one arrived
    queue_size: int = 5_000
    default_interval_s: float = 10.0
    offline_intervals: float = 3.0
    offline_check_s: float = 2.0
    dead_letter_payload_bytes: int = 2048
    dead_letter_retention_days: float = 90.0  # dead letters received longer ago are deleted; 0 keeps all
    # A device's last-seen time, latest values and stored seq may lag this much (not its alerts).
    registry_flush_s: float = 5.0
    # Predictive warnings ([predictive] section); the file is re-read when it changes.
    predictive: PredictiveConfig = field(default_factory=PredictiveConfig)
    # A device's predictive monitor state and forecasts are written at least this often (and at
    # once with a warning raised or withdrawn); a crash loses at most this much trend history.
    predictive_flush_s: float = 300.0
    # Allocations between the interpreter's youngest garbage collections (0: Python's default).
    gc_threshold: int = 50_000
    config_file: Path | None = None


def parse_mqtt_url(url: str, source: str) -> tuple[str, int, bool]:
    """`mqtt://host:port` or `mqtts://host:port` -> (host, port, tls); a ConfigError naming `source`."""
    try:
        return parse_broker_url(url)
    except ValueError as exc:
        raise ConfigError(source, "url", str(exc)) from None


MQTT_PROTOCOLS = ("5", "3.1.1")


def _protocol(value: str) -> str:
    if value not in MQTT_PROTOCOLS:
        raise ConfigError("EDGEWATCH_MQTT_PROTOCOL / mqtt.protocol", "protocol", f"expected 5 or 3.1.1, got {value!r}")
    return value


def _ca_file(value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError("EDGEWATCH_MQTT_CA_FILE / mqtt.ca_file", "ca_file", f"{path} is not a readable file")
    return path


def load_settings(
    config_file: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> CollectorSettings:
    """Build the settings from `[collector]`, `[mqtt]`, `[database]`, `[telemetry]`, `[predictive]` and
    `EDGEWATCH_*`."""
    col = Settings.load(config_file, "collector", environ)
    mq = Settings.load(config_file, "mqtt", environ)
    db = Settings.load(config_file, "database", environ)

    data_dir = col.path("data_dir", default_data_dir(), env="DATA_DIR")
    url = mq.str("url", "mqtt://127.0.0.1:1883", env="MQTT_URL") or "mqtt://127.0.0.1:1883"
    host, port, tls = parse_mqtt_url(url, "EDGEWATCH_MQTT_URL / mqtt.url")
    mqtt = MqttSettings(
        host=host,
        port=port,
        tls=tls,
        client_id=mq.str("client_id", DEFAULT_CLIENT_ID, env="MQTT_CLIENT_ID") or DEFAULT_CLIENT_ID,
        username=mq.str("username", None, env="MQTT_USERNAME"),
        password=mq.str("password", None, env="MQTT_PASSWORD"),
        topic_prefix=(mq.str("topic_prefix", "edgewatch/v1", env="MQTT_TOPIC_PREFIX") or "").strip("/")
        or "edgewatch/v1",
        telegraf_topics=tuple(mq.list("telegraf_topics", ["telegraf/#"], env="TELEGRAF_TOPICS")),
        session_expiry_s=mq.int("session_expiry_s", 7 * 24 * 3600, minimum=0),
        keepalive_s=mq.int("keepalive_s", 30, minimum=5),
        separate_process=mq.bool("separate_process", True, env="MQTT_SEPARATE_PROCESS"),
        protocol=_protocol(mq.str("protocol", "5", env="MQTT_PROTOCOL") or "5"),
        ca_file=_ca_file(mq.str("ca_file", None, env="MQTT_CA_FILE")),
    )
    telemetry = load_telemetry_settings(config_file, environ, data_dir=data_dir)
    metrics_port: int | None = col.int("metrics_port", -1, env="METRICS_PORT", minimum=-1)
    if metrics_port is not None and metrics_port > 65535:
        raise col.invalid("metrics_port", f"must be at most 65535, got {metrics_port}", env="METRICS_PORT")
    thresholds = col.str("thresholds", None, env="THRESHOLDS")
    return CollectorSettings(
        data_dir=data_dir,
        database_url=db.str("url", None, env="DATABASE_URL"),
        mqtt=mqtt,
        telemetry=telemetry,
        metrics_port=None if metrics_port == -1 else metrics_port,
        metrics_host=col.str("metrics_host", "127.0.0.1", env="METRICS_HOST") or "127.0.0.1",
        thresholds_file=Path(thresholds) if thresholds else None,
        thresholds_poll_s=col.float("thresholds_poll_s", 5.0, positive=True),
        batch_size=col.int("batch_size", 500, minimum=1),
        batch_wait_s=col.float("batch_wait_s", 0.005, positive=True),
        queue_size=col.int("queue_size", 5_000, minimum=10),
        default_interval_s=col.float("default_interval_s", 10.0, env="AGENT_INTERVAL", positive=True),
        offline_intervals=col.float("offline_intervals", 3.0, positive=True),
        offline_check_s=col.float("offline_check_s", 2.0, positive=True),
        dead_letter_payload_bytes=col.int("dead_letter_payload_bytes", 2048, minimum=0),
        dead_letter_retention_days=col.float("dead_letter_retention_days", 90.0, env="DEAD_LETTER_RETENTION_DAYS",
                                             minimum=0),
        registry_flush_s=col.float("registry_flush_s", 5.0, minimum=0),
        predictive=load_predictive(config_file, environ),
        predictive_flush_s=col.float("predictive_flush_s", 300.0, env="PREDICTIVE_FLUSH_S", minimum=0),
        gc_threshold=col.int("gc_threshold", 50_000, minimum=0),
        config_file=Path(config_file) if config_file is not None else None,
    )
