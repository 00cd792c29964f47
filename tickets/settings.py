"""The ticket domain's settings: `[tickets]` (links, scheduler, outbox), `[sla]` (the policy) and
the notify engineer's `[notifications]` (channels, back-off, rate limits). Built once in `main()`.

`EDGEWATCH_DATABASE_URL` is read by the component that opens the database (collector, server).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from common.config import HTTP_DEFAULT_HOST, HTTP_DEFAULT_PORT, ConfigError, Settings, server_address
from tickets.delivery import DeliverySettings
from tickets.notify.locale import ENGLISH_UTC, LANGUAGES, Locale, known_zone
from tickets.notify.registry import NotifySettings
from tickets.policy import NoiseSettings, SlaPolicy, load_policy

SECTION = "tickets"
# Listening on every interface says nothing about the name people reach the server by.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


@dataclass(frozen=True)
class TicketSettings:
    policy: SlaPolicy = field(default_factory=SlaPolicy)
    notify: NotifySettings = field(default_factory=NotifySettings)
    # Where people open a ticket or answer a survey: the server's address as users reach it.
    public_url: str = f"http://{HTTP_DEFAULT_HOST}:{HTTP_DEFAULT_PORT}"
    # The language and time zone of whoever has none set (nor their customer).
    locale: Locale = ENGLISH_UTC
    reconcile_every: float = 5.0
    scheduler_threads: int = 4
    outbox_batch: int = 200
    outbox_lease: float = 120.0
    noise: NoiseSettings = field(default_factory=NoiseSettings)

    def delivery(self) -> DeliverySettings:
        return DeliverySettings(
            backoff=self.notify.backoff, level_caps=dict(self.notify.level_caps), max_attempts=self.notify.max_attempts,
            limits=dict(self.notify.limits),
            batch=self.outbox_batch, lease=timedelta(seconds=self.outbox_lease),
        )


def load_ticket_settings(
    config_file: str | os.PathLike[str] | None,
    environ: Mapping[str, str] | None = None,
    *,
    data_dir: Path | None = None,
) -> TicketSettings:
    s = Settings.load(config_file, SECTION, environ)
    return TicketSettings(
        policy=load_policy(Settings.load(config_file, "sla", environ)),
        notify=NotifySettings.load(config_file, environ, data_dir=data_dir),
        public_url=read_public_url(s, *server_address(config_file, environ)),
        locale=read_locale(s),
        reconcile_every=s.float("reconcile_seconds", 5.0, env="TICKETS_RECONCILE_SECONDS", positive=True),
        scheduler_threads=s.int("scheduler_threads", 4, env="TICKETS_SCHEDULER_THREADS", minimum=1),
        outbox_batch=s.int("outbox_batch", 200, env="TICKETS_OUTBOX_BATCH", minimum=1),
        outbox_lease=s.float("outbox_lease_seconds", 120.0, env="TICKETS_OUTBOX_LEASE_SECONDS", positive=True),
        noise=NoiseSettings(
            incident_min_devices=s.int("incident_min_devices", 10, env="TICKETS_INCIDENT_MIN_DEVICES", minimum=0),
            incident_window=timedelta(seconds=s.float("incident_window_seconds", 60.0,
                                                      env="TICKETS_INCIDENT_WINDOW_SECONDS", positive=True)),
            customer_wait=timedelta(seconds=s.float("incident_customer_wait_seconds", 0.0,
                                                    env="TICKETS_INCIDENT_CUSTOMER_WAIT_SECONDS", minimum=0.0)),
        ),
    )


def load_public_url(
    config_file: str | os.PathLike[str] | None,
    environ: Mapping[str, str] | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
) -> str:
    """`[tickets] public_url` (EDGEWATCH_PUBLIC_URL), checked; unset, the server's own address.

    `host` and `port` are where the server listens when the caller knows better than the settings
    (`edgewatch server --host/--port`).
    """
    if host is None or port is None:
        configured_host, configured_port = server_address(config_file, environ)
        host = configured_host if host is None else host
        port = configured_port if port is None else port
    return read_public_url(Settings.peek(config_file, SECTION, environ), host, port)


def load_locale(config_file: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> Locale:
    """`[tickets] default_language` and `default_timezone` (EDGEWATCH_DEFAULT_LANGUAGE, _TIMEZONE), checked."""
    return read_locale(Settings.peek(config_file, SECTION, environ))


def read_locale(s: Settings) -> Locale:
    """The install's default language (`en`) and IANA time zone (`UTC`) of a `[tickets]` section."""
    language = s.str("default_language", "en", env="DEFAULT_LANGUAGE") or "en"
    if language not in LANGUAGES:
        raise s.invalid("default_language", f"must be one of {', '.join(LANGUAGES)}, got {language!r}",
                        env="DEFAULT_LANGUAGE")
    timezone = s.str("default_timezone", "UTC", env="DEFAULT_TIMEZONE") or "UTC"
    if not known_zone(timezone):
        raise s.invalid("default_timezone", f"unknown time zone {timezone!r}; expected an IANA name like "
                        f"Asia/Shanghai", env="DEFAULT_TIMEZONE")
    return Locale(language, timezone)


def read_public_url(s: Settings, host: str, port: int) -> str:
    """The `public_url` of a `[tickets]` section, checked, without a trailing slash."""
    derived = server_url(host, port)
    value = s.str("public_url", derived, env="PUBLIC_URL") or derived
    try:
        return check_public_url(value)
    except ValueError as exc:
        if value == derived:
            raise ConfigError("EDGEWATCH_PUBLIC_URL / tickets.public_url", "public_url",
                              f"unset, and the server's own address {derived!r} cannot serve as one ({exc}): "
                              f"set it to the address people open the dashboard at") from None
        raise s.invalid("public_url", str(exc), env="PUBLIC_URL") from None


def server_url(host: str, port: int) -> str:
    """The server's own address: `http://<host>:<port>`, with a wildcard host (0.0.0.0, ::) replaced by
    this machine's fully qualified name."""
    name = host.strip()
    if name in WILDCARD_HOSTS:
        name = socket.getfqdn() or socket.gethostname() or "localhost"
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"  # an IPv6 address
    return f"http://{name}:{port}"


def check_public_url(value: str) -> str:
    """An absolute http(s) URL, optionally with a path prefix; ValueError with the reason otherwise.

    Returned without a trailing slash, ready for `/tickets/N` to be appended.
    """
    example = "like https://desk.example.com or https://ops.example.com/edgewatch"
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL with a host name, {example}, got {value!r}")
    if any(c.isspace() for c in text):
        raise ValueError(f"must not contain spaces, got {value!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"must not carry a user name or password, got {value!r}")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(f"must not have a query (?) or fragment (#): links are appended to it, got {value!r}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ValueError(f"has an invalid port, got {value!r}") from None
    if not parts.hostname:
        raise ValueError(f"has no host name, got {value!r}")
    return text.rstrip("/")
