"""The ticket domain's settings: `[tickets]` (links, scheduler, outbox), `[sla]` (the policy) and
the notify engineer's `[notifications]` (channels, back-off, rate limits). Built once in `main()`.

`EDGEWATCH_DATABASE_URL` is read by the component that opens the database (collector, server).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from edgewatch.config import ConfigError, Settings
from tickets.delivery import DeliverySettings
from tickets.notify.registry import NotifySettings
from tickets.policy import SlaPolicy, load_policy

SECTION = "tickets"


@dataclass(frozen=True)
class TicketSettings:
    policy: SlaPolicy = field(default_factory=SlaPolicy)
    notify: NotifySettings = field(default_factory=NotifySettings)
    # Where people open a ticket or answer a survey: the server's address as users reach it.
    public_url: str = "http://localhost:8080"
    reconcile_every: float = 5.0
    scheduler_threads: int = 4
    outbox_batch: int = 200
    outbox_lease: float = 120.0

    def delivery(self) -> DeliverySettings:
        return DeliverySettings(
            backoff=self.notify.backoff, max_attempts=self.notify.max_attempts, limits=dict(self.notify.limits),
            batch=self.outbox_batch, lease=timedelta(seconds=self.outbox_lease),
        )


def load_ticket_settings(
    config_file: str | os.PathLike[str] | None,
    environ: Mapping[str, str] | None = None,
    *,
    data_dir: Path | None = None,
) -> TicketSettings:
    s = Settings.load(config_file, SECTION, environ)
    public_url = s.str("public_url", "http://localhost:8080", env="PUBLIC_URL") or ""
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{config_file or '(defaults)'} [tickets] or EDGEWATCH_PUBLIC_URL", "public_url",
                          f"expected an http(s) URL like https://desk.example.com, got {public_url!r}")
    return TicketSettings(
        policy=load_policy(Settings.load(config_file, "sla", environ)),
        notify=NotifySettings.load(config_file, environ, data_dir=data_dir),
        public_url=public_url.rstrip("/"),
        reconcile_every=s.float("reconcile_seconds", 5.0, env="TICKETS_RECONCILE_SECONDS", positive=True),
        scheduler_threads=s.int("scheduler_threads", 4, env="TICKETS_SCHEDULER_THREADS", minimum=1),
        outbox_batch=s.int("outbox_batch", 200, env="TICKETS_OUTBOX_BATCH", minimum=1),
        outbox_lease=s.float("outbox_lease_seconds", 120.0, env="TICKETS_OUTBOX_LEASE_SECONDS", positive=True),
    )
