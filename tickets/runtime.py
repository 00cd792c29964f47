"""`TicketRuntime`: the ticket domain's long-running parts, for the central process to host.

The service (used by the collector's batches and the server's actions), the SLA clock scheduler
and the outbox delivery worker, wired together: a commit hands its clocks to the scheduler and
wakes the worker, so a red ticket's contacts are notified the moment it opens. Exactly one
process per database should host a runtime (the collector, or `edgewatch demo`); the server
alone uses a plain `TicketService`, whose clocks the scheduler finds in the `clocks` table at its
next sweep.
"""

from __future__ import annotations

import logging
from types import TracebackType

from sqlalchemy.engine import Engine

from tickets.clock import Clock
from tickets.db import session_factory
from tickets.delivery import OutboxWorker, Send
from tickets.notify.registry import ChannelRegistry
from tickets.scheduler import ClockScheduler
from tickets.service import TicketService
from tickets.settings import TicketSettings

logger = logging.getLogger(__name__)


class TicketRuntime:
    def __init__(
        self,
        engine: Engine,
        settings: TicketSettings | None = None,
        *,
        clock: Clock | None = None,
        send: Send | None = None,
    ) -> None:
        self.settings = settings or TicketSettings()
        self.sessions = session_factory(engine)
        self.service = TicketService(self.settings.policy, clock, public_url=self.settings.public_url,
                                     locale=self.settings.locale, noise=self.settings.noise)
        self._registry: ChannelRegistry | None = None
        if send is None:
            self._registry = ChannelRegistry(self.settings.notify)
            send = self._registry.send
        self.worker = OutboxWorker(self.sessions, send, self.settings.delivery())
        self.scheduler = ClockScheduler(self.sessions, self.service, reconcile_every=self.settings.reconcile_every,
                                        threads=self.settings.scheduler_threads)
        self.service.use_outbox_wakeup(self.worker.wake)

    def start(self) -> None:
        self.scheduler.start()
        self.worker.start()
        logger.info("ticket runtime started: SLA clock scheduler and outbox worker")

    def stop(self) -> None:
        self.worker.stop()
        self.scheduler.shutdown()
        self.service.use_outbox_wakeup(None)
        if self._registry is not None:
            self._registry.close()

    def __enter__(self) -> TicketRuntime:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
