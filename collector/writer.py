"""The store writer: telemetry batched off the hot path, with a bounded buffer and retries.

The processing thread hands over each committed batch's points with a callback that acknowledges
the batch's MQTT messages. The callback runs once the points are durable in the store, so a crash
before that means redelivery, not loss. While the store is unreachable, or so slow that a batch
has waited `max_ack_delay_s`, the callback runs at once (the ticket database already holds the
batch's effects) and the points wait in a bounded buffer,
retried with exponential back-off; when the buffer is full the oldest points are dropped and
counted. Rule evaluation never waits for the store.

A batch the store refuses for its data (PointsRefused, or any error other than StoreUnavailable)
is written again in halves until the refused points are found: each is handed to `on_refused`
(the collector keeps it as a dead letter) and the rest of the batch is written, so one poison
point never stalls the stream or takes good points with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from telemetry.errors import PointsRefused, StoreUnavailable
from telemetry.model import Point, TelemetryStore

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    points: list[Point]
    on_safe: Callable[[], object] | None
    queued_at: float = field(default=0.0)

    def release(self) -> None:
        # Called with the writer's lock held, on purpose: jobs are released by two threads (the
        # writer, and `submit` while the store is degraded), and the lock keeps their
        # acknowledgements in the order the messages came, as MQTT asks of PUBACKs. The callback
        # only hands ids to the MQTT process, whose reader thread never blocks on this side.
        if self.on_safe is not None:
            callback, self.on_safe = self.on_safe, None
            try:
                callback()
            except Exception:
                logger.exception("acknowledging a batch failed")


@dataclass(slots=True)
class WriterStats:
    written: int = 0
    dropped: int = 0
    refused: int = 0
    failures: int = 0


class StoreWriter:
    """Owns the store from its own thread. `submit` never blocks on the store."""

    def __init__(
        self,
        store: TelemetryStore,
        *,
        max_points: int = 200_000,
        flush_points: int = 5_000,
        flush_interval_s: float = 0.2,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        max_ack_delay_s: float = 2.0,
        on_written: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
        on_refused: Callable[[Point, Exception], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._max_points = max_points
        self._flush_points = flush_points
        self._flush_interval = flush_interval_s
        self._retry_initial, self._retry_max = retry_initial_s, retry_max_s
        self._on_written = on_written or (lambda n: None)
        self._on_dropped = on_dropped or (lambda n: None)
        self._on_refused = on_refused or _log_refused
        self._clock = clock
        self._max_ack_delay = max_ack_delay_s
        self._jobs: deque[_Job] = deque()
        self._points = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._retry_at = 0.0  # while in the future the store is considered down
        self._backoff = retry_initial_s
        self._thread: threading.Thread | None = None
        self.stats = WriterStats()

    # -- called from other threads -------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Points waiting to be written."""
        return self._points

    @property
    def degraded(self) -> bool:
        return self._retry_at > self._clock()

    def submit(self, points: list[Point], on_safe: Callable[[], object] | None = None) -> None:
        job = _Job(points, on_safe, self._clock())
        with self._cond:
            if self._stopping and self._thread is None:
                raise RuntimeError("the store writer is stopped")
            self._jobs.append(job)
            self._points += len(points)
            if self.degraded:
                job.release()
            elif job.queued_at - self._jobs[0].queued_at > self._max_ack_delay:
                # The store is up but slow: do not let the broker's in-flight window, and with it
                # rule evaluation, wait for it; the points stay buffered like during an outage.
                for waiting in self._jobs:
                    waiting.release()
            self._drop_overflow()
            self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="edgewatch-store-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what can be written within `timeout`; unwritten, unacknowledged points are redelivered."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("store writer still busy after %.1f s; %d points not written", timeout, self._points)
        self._store.close()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted point is written (for tests and orderly shutdown)."""
        deadline = self._clock() + timeout
        with self._cond:
            self._cond.notify()
            while self._jobs:
                left = deadline - self._clock()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # -- the writer thread ---------------------------------------------------------------------

    def _drop_overflow(self) -> None:
        while self._points > self._max_points and len(self._jobs) > 1:
            old = self._jobs.popleft()
            old.release()
            self._points -= len(old.points)
            self.stats.dropped += len(old.points)
            self._on_dropped(len(old.points))
            logger.warning("telemetry buffer full: dropped %d points", len(old.points))

    def _ready(self, now: float) -> bool:
        if not self._jobs or now < self._retry_at:
            return False
        return self._stopping or self._points >= self._flush_points or \
            now - self._jobs[0].queued_at >= self._flush_interval or not self._jobs[0].points

    def _take(self) -> list[_Job]:
        taken: list[_Job] = []
        count = 0
        for job in self._jobs:
            if taken and count + len(job.points) > self._flush_points:
                break
            taken.append(job)
            count += len(job.points)
        return taken

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = self._clock()
                    if self._ready(now):
                        break
                    if self._stopping and (not self._jobs or now < self._retry_at):
                        return
                    wait = self._flush_interval
                    if self._retry_at > now:
                        wait = min(wait, self._retry_at - now)
                    self._cond.wait(wait)
                jobs = self._take()
            points = [p for job in jobs for p in job.points]
            try:
                refused = self._write(points) if points else 0
            except StoreUnavailable as exc:
                self._failed(exc)
                continue
            with self._cond:
                for _ in jobs:
                    self._jobs.popleft().release()
                self._points -= len(points)
                self._backoff = self._retry_initial
                self._retry_at = 0.0
                self.stats.written += len(points) - refused
                self.stats.refused += refused
                self._cond.notify_all()
            self._on_written(len(points) - refused)

    def _write(self, points: list[Point]) -> int:
        """Write `points`; when the store refuses the data, narrow it down by halves to the points it
        refuses, report each and write the rest. Returns how many were refused."""
        try:
            return self._store.write(points)
        except StoreUnavailable:
            raise
        except Exception as exc:  # PointsRefused, or a store's bug on these values: never retried as they are
            if not isinstance(exc, PointsRefused):
                logger.warning("telemetry store failed on %d points (%s: %s); writing them apart",
                               len(points), type(exc).__name__, exc)
            if len(points) == 1:
                self._on_refused(points[0], exc)
                return 1
            middle = len(points) // 2
            return self._write(points[:middle]) + self._write(points[middle:])

    def _failed(self, exc: Exception) -> None:
        with self._cond:
            self.stats.failures += 1
            if self._stopping:
                # Shutting down: leave the rest unacknowledged, the broker redelivers it.
                self._retry_at = float("inf")
                return
            logger.warning("telemetry store unavailable (%s); retrying in %.1f s, %d points buffered",
                           exc, self._backoff, self._points)
            self._retry_at = self._clock() + self._backoff
            self._backoff = min(self._backoff * 2, self._retry_max)
            # The ticket database holds these batches' effects: let the broker move on.
            for job in self._jobs:
                job.release()
            self._cond.notify_all()


def _log_refused(point: Point, exc: Exception) -> None:
    logger.error("telemetry store refused %s seq %s (ts %s): %s; metrics %s", point.device_id, point.seq, point.ts,
                 exc, dict(point.metrics))
