"""`[bus]`: shared collectors on NATS JetStream (`edgewatch collector --bus nats://host:4222,...`)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from common.config import ConfigError, Settings

SOURCE = "EDGEWATCH_BUS_URL / bus.url"


@dataclass(frozen=True)
class BusSettings:
    servers: tuple[str, ...]  # nats://host:port, one per cluster node the collector may use
    name: str  # this collector among those sharing the fleet (unique)
    partitions: int = 16  # must equal the N of the server's partition(N, ...) mapping
    stream: str = "EDGEWATCH"
    replicas: int = 1  # copies of the stream and the lease bucket (3 on a 3-node cluster)
    retention_days: float = 7.0  # how long the stream keeps samples (a collector away longer loses them)
    lease_ttl_s: float = 8.0  # a dead collector's partitions are free after this

    @property
    def renew_s(self) -> float:
        return self.lease_ttl_s / 8

    @property
    def hold_s(self) -> float:
        """How long after sending a renewal a lease counts as ours: half the TTL, so a collector that
        cannot renew stops acting well before the lease can expire on the server."""
        return self.lease_ttl_s / 2


def parse_servers(value: str, source: str = SOURCE) -> tuple[str, ...]:
    """`nats://a:4222,nats://b:4222` -> the URLs; a ConfigError naming `source` for anything else."""
    servers = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        url = urlsplit(item)
        try:
            port = url.port
        except ValueError:
            port = None
        if url.scheme not in ("nats", "tls") or not url.hostname or port is None:
            raise ConfigError(source, "url", f"expected nats://host:port[,nats://host:port...], got {item!r}")
        servers.append(item)
    if not servers:
        raise ConfigError(source, "url", "no server given")
    return tuple(servers)


def load_bus_settings(config_file: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None,
                      url: str | None = None) -> BusSettings | None:
    """The `[bus]` settings, or None when no bus is configured (`url` from `--bus` wins)."""
    bus = Settings.load(config_file, "bus", environ)
    value = url or bus.str("url", None, env="BUS_URL")
    if not value:
        return None
    return BusSettings(
        servers=parse_servers(value, "--bus" if url else SOURCE),
        name=bus.str("name", None, env="BUS_NAME") or f"{socket.gethostname()}-{os.getpid()}",
        partitions=bus.int("partitions", 16, minimum=1),
        stream=bus.str("stream", "EDGEWATCH") or "EDGEWATCH",
        replicas=bus.int("replicas", 1, minimum=1),
        retention_days=bus.float("retention_days", 7.0, positive=True),
        lease_ttl_s=bus.float("lease_ttl_s", 8.0, minimum=2),
    )
