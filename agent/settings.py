"""The agent's settings: `[agent]` and `[mqtt]` of the config file, overridden by `EDGEWATCH_*`.

Built once by `load_settings()` in `main()` and passed down as immutable named tuples (lighter to
import than dataclasses). Every mistake is a `ConfigError` naming the file key or environment variable to fix.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from agent.contract import DEVICE_ID_PATTERN
from agent.proxy.config import ProxyTarget, parse_proxy
from common.config import ENV_PREFIX, ConfigError, Settings, default_data_dir, parse_broker_url

DEVICE_CLASSES = ("gateway", "router")


class Target(NamedTuple):
    """A latency target: `tcp` (connect time to host:port) or `icmp` (echo to host)."""

    kind: str
    host: str
    port: int | None = None

    @property
    def name(self) -> str:
        return f"tcp://{_join_host(self.host)}:{self.port}" if self.kind == "tcp" else f"icmp://{self.host}"


class MqttSettings(NamedTuple):
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive: int = 60
    connect_timeout: float = 5.0

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{_join_host(self.host)}:{self.port}"


class AgentSettings(NamedTuple):
    device_id: str
    interval: float
    data_dir: Path
    mqtt: MqttSettings
    targets: tuple[Target, ...]
    device_class: str | None = None
    probe_count: int = 3
    tcp_probe_count: int = 1
    probe_timeout: float = 1.0
    spool_max_samples: int = 50_000
    publish_rate: float = 20.0
    max_inflight: int = 10
    reconnect_min: float = 1.0
    reconnect_max: float = 120.0
    stop_timeout: float = 3.0
    log_level: str = "INFO"
    proxy: tuple[ProxyTarget, ...] = ()  # agentless neighbours polled by this agent

    @property
    def spool_path(self) -> Path:
        return self.data_dir / "agent-spool.sqlite3"


def _join_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _Origin(NamedTuple):
    """Where a section's values come from, to name the exact key or variable in an error."""

    source: str
    section: str
    environ: Mapping[str, str]

    def error(self, key: str, env: str | None, reason: str) -> ConfigError:
        name = ENV_PREFIX + env if env else ""
        if name and self.environ.get(name):
            return ConfigError(name, "value", reason)
        return ConfigError(self.source, f"{self.section}.{key}", reason)


def parse_target(text: str, broker: MqttSettings) -> Target:
    """`tcp://host:port`, `icmp://host`, `host:port` (TCP), `host` (ICMP) or `broker` (TCP to the broker)."""
    spec = text.strip()
    if spec == "broker":
        return Target("tcp", broker.host, broker.port)
    if "://" not in spec:
        if spec.count(":") > 1 and not spec.startswith("["):
            spec = f"[{spec}]"  # a bare IPv6 address: no port
        has_port = spec.count(":") == 1 or "]:" in spec
        spec = ("tcp://" if has_port else "icmp://") + spec
    parts = urlsplit(spec)
    if parts.scheme not in ("tcp", "icmp") or not parts.hostname or parts.path or parts.query:
        raise ValueError(f"expected tcp://host:port, icmp://host, host:port or host, got {text!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid port in {text!r}") from None
    if parts.scheme == "tcp":
        if port is None:
            raise ValueError(f"a TCP target needs a port: {text!r}")
        return Target("tcp", parts.hostname, port)
    if port is not None:
        raise ValueError(f"an ICMP target has no port: {text!r}")
    return Target("icmp", parts.hostname)


def _load_mqtt(settings: Settings, origin: _Origin) -> MqttSettings:
    url = settings.str("url", "mqtt://127.0.0.1:1883", env="MQTT_URL") or ""
    try:
        host, port, tls = parse_broker_url(url)
    except ValueError as exc:
        raise origin.error("url", "MQTT_URL", str(exc)) from None
    password = settings.str("password", None, env="MQTT_PASSWORD")
    password_file = settings.path("password_file", Path(), env="MQTT_PASSWORD_FILE")
    if password is None and password_file != Path():
        try:
            password = password_file.read_text(encoding="utf-8").strip("\r\n")
        except OSError as exc:
            raise origin.error("password_file", "MQTT_PASSWORD_FILE", f"cannot read: {exc.strerror}") from None
    files: dict[str, Path | None] = {}
    for key, env in (("ca_file", "MQTT_CA_FILE"), ("cert_file", "MQTT_CERT_FILE"), ("key_file", "MQTT_KEY_FILE")):
        path = settings.path(key, Path(), env=env)
        if path == Path():
            files[key] = None
            continue
        if not os.access(path, os.R_OK) or not path.is_file():
            raise origin.error(key, env, f"{path} is not a readable file")
        if not tls:
            raise origin.error(key, env, "TLS files need an mqtts:// broker url")
        files[key] = path
    if (files["cert_file"] is None) != (files["key_file"] is None):
        present, missing = ("cert_file", "key_file") if files["key_file"] is None else ("key_file", "cert_file")
        raise origin.error(present, f"MQTT_{present.upper()}", f"a client certificate needs {missing} as well")
    return MqttSettings(
        host=host,
        port=port,
        tls=tls,
        username=settings.str("username", None, env="MQTT_USERNAME"),
        password=password,
        ca_file=files["ca_file"],
        cert_file=files["cert_file"],
        key_file=files["key_file"],
        keepalive=settings.int("keepalive", 60, env="MQTT_KEEPALIVE", minimum=5),
        connect_timeout=settings.float("connect_timeout", 5.0, env="MQTT_CONNECT_TIMEOUT", positive=True),
    )


def load_settings(config: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> AgentSettings:
    """Read the agent's settings from `config` (TOML, optional) and the environment."""
    env = os.environ if environ is None else environ
    if config is None and env.get("EDGEWATCH_CONFIG"):
        config = env["EDGEWATCH_CONFIG"]
    source = str(config) if config is not None else "(defaults)"
    agent = Settings.load(config, "agent", environ=env)
    mqtt = _load_mqtt(Settings.load(config, "mqtt", environ=env), _Origin(source, "mqtt", env))
    origin = _Origin(source, "agent", env)
    configured = agent.str("device_id", None, env="DEVICE_ID")
    device_id = configured or socket.gethostname().split(".")[0]
    if DEVICE_ID_PATTERN.fullmatch(device_id) is None:
        got = repr(device_id) if configured else f"the host name {device_id!r}; set device_id"
        raise origin.error("device_id", "DEVICE_ID", f"must be 1-64 characters of A-Za-z0-9._-, got {got}")
    device_class = agent.str("device_class", None, env="DEVICE_CLASS")
    if device_class is not None and device_class not in DEVICE_CLASSES:
        raise origin.error("device_class", "DEVICE_CLASS",
                    f"must be one of {', '.join(DEVICE_CLASSES)}, got {device_class!r}")
    targets: list[Target] = []
    for text in agent.list("targets", ["broker"], env="AGENT_TARGETS"):
        try:
            targets.append(parse_target(text, mqtt))
        except ValueError as exc:
            raise origin.error("targets", "AGENT_TARGETS", str(exc)) from None
    if not targets:
        raise origin.error("targets", "AGENT_TARGETS", "needs at least one target (the default is the broker)")
    reconnect_min = agent.float("reconnect_min", 1.0, env="AGENT_RECONNECT_MIN", positive=True)
    reconnect_max = agent.float("reconnect_max", 120.0, env="AGENT_RECONNECT_MAX", positive=True)
    if reconnect_max < reconnect_min:
        raise origin.error("reconnect_max", "AGENT_RECONNECT_MAX",
                    f"must be at least reconnect_min ({reconnect_min}), got {reconnect_max}")
    log_level = (agent.str("log_level", "INFO", env="AGENT_LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise origin.error("log_level", "AGENT_LOG_LEVEL",
                    f"must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
    interval = agent.float("interval", 10.0, env="AGENT_INTERVAL", positive=True)
    proxy = parse_proxy(source, agent.tables("proxy"), interval=interval, gateway_id=device_id,
                        device_classes=DEVICE_CLASSES)
    return AgentSettings(
        device_id=device_id,
        interval=interval,
        data_dir=agent.path("data_dir", default_data_dir(), env="DATA_DIR"),
        mqtt=mqtt,
        targets=tuple(targets),
        device_class=device_class,
        probe_count=agent.int("probe_count", 3, env="AGENT_PROBE_COUNT", minimum=1),
        tcp_probe_count=agent.int("tcp_probe_count", 1, env="AGENT_TCP_PROBE_COUNT", minimum=1),
        probe_timeout=agent.float("probe_timeout", 1.0, env="AGENT_PROBE_TIMEOUT", positive=True),
        spool_max_samples=agent.int("spool_max_samples", 50_000, env="AGENT_SPOOL_MAX_SAMPLES", minimum=1),
        publish_rate=agent.float("publish_rate", 20.0, env="AGENT_PUBLISH_RATE", positive=True),
        max_inflight=agent.int("max_inflight", 10, env="AGENT_MAX_INFLIGHT", minimum=1),
        reconnect_min=reconnect_min,
        reconnect_max=reconnect_max,
        stop_timeout=agent.float("stop_timeout", 3.0, env="AGENT_STOP_TIMEOUT", minimum=0),
        log_level=log_level,
        proxy=proxy,
    )
