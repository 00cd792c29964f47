"""The ticket runtime (SLA clock scheduler, outbox worker) hosted by whichever shared collector leads.

The bus source (`collector.bus.source`) holds the `leader` lease for one collector at a time and
calls `lead(True)` when this one gains it, `lead(False)` when it gives it up or can no longer renew
it: the runtime stops before the lease can expire on the server, so two never run at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger(__name__)


class Runtime(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class RuntimeHost:
    """Starts a fresh runtime from `make` on each leadership gained; stops it when it ends."""

    def __init__(self, make: Callable[[], Runtime]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self.runtime: Runtime | None = None
        self.terms = 0  # times this collector became the leader

    def lead(self, leading: bool) -> None:
        with self._lock:
            if leading and self.runtime is None:
                runtime = self._make()
                runtime.start()
                self.runtime = runtime
                self.terms += 1
            elif not leading and self.runtime is not None:
                runtime, self.runtime = self.runtime, None
                runtime.stop()
                logger.info("ticket runtime stopped: no longer the leader")
