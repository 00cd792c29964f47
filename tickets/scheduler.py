"""`ClockScheduler`: SLA clocks fire at their exact instant (APScheduler jobs, not a poll).

One job per clock, at the clock's next instant (a warning or the due time), kept in a persistent
job store (the ticket database on PostgreSQL, a file next to it on SQLite). When a job fires it
re-reads the clock row, does what is due (`TicketService.fire_clock`), and schedules the clock's
next instant. The database stays the
truth: `resync()` at start schedules every clock that still has something to do, and missed
instants fire at once; a reconciliation pass every few seconds schedules clocks that another
process (the server, a second collector) created or moved, as a safety net only — the process
that changed a clock schedules it itself through `TicketService.after_commit`.

The scheduler runs inside the long-running central process (the collector, or `edgewatch demo`).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tickets.db import create_engine_for
from tickets.models import Clock as ClockRow
from tickets.service import TicketService

logger = logging.getLogger(__name__)

JOB_TABLE = "scheduler_jobs"
RETRY_AFTER = timedelta(seconds=5)

# APScheduler keeps a job as a textual reference to a module-level function plus its arguments,
# so a job loaded from the store after a restart finds its live scheduler here, by name.
_RUNNING: dict[str, ClockScheduler] = {}
_RUNNING_LOCK = threading.Lock()


class _Scheduler(BackgroundScheduler):  # type: ignore[misc]  # APScheduler 3 is untyped
    """APScheduler's background scheduler whose job-processing passes can be closed for good.

    Its loop, caught in the middle of a pass by `shutdown()`, dies on the jobs it is handing out
    (once stopped it looks them up among "pending" jobs, and the executor refuses new work).
    Closing the passes first, waiting for one in progress, makes shutdown orderly.
    """

    def __init__(self, **options: Any) -> None:
        self._pass_lock = threading.Lock()
        self._passes_closed = False
        super().__init__(**options)

    def close_passes(self) -> None:
        with self._pass_lock:
            self._passes_closed = True

    def _process_jobs(self) -> float | None:
        with self._pass_lock:
            if self._passes_closed:
                return None
            wait: float | None = super()._process_jobs()
            return wait


def jobstore_engine(engine: Engine) -> Engine:
    """Where the job store lives: the ticket database on PostgreSQL; on SQLite a file next to it.

    SQLite lets one writer in at a time. Thousands of job writes (a storm of new tickets) would
    queue behind the collector's batches on the same file, and those behind them; the job store
    is only a copy of what the `clocks` table says, so it gets a file of its own.
    """
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return engine
    database = url.database or ""
    if database in ("", ":memory:") or "mode=memory" in str(url):
        return create_engine_for("sqlite://")
    path = Path(database)
    return create_engine_for(f"sqlite:///{path.with_name(path.stem + '-scheduler' + path.suffix)}")


def _job_id(clock_id: int, at: datetime) -> str:
    # One id per (clock, instant): a firing job schedules the clock's next instant while
    # APScheduler is still removing the finished one, so the two must never share an id.
    return f"clock-{clock_id}-{round(at.timestamp() * 1_000_000)}"


def fire_clock_job(scheduler_name: str, clock_id: int, instant: float | None = None) -> None:
    """The job function stored in the job store."""
    with _RUNNING_LOCK:
        scheduler = _RUNNING.get(scheduler_name)
    if scheduler is None:
        logger.warning("clock %s: no running scheduler %r in this process; job skipped", clock_id, scheduler_name)
        return
    scheduler.fire(clock_id, datetime.fromtimestamp(instant, UTC) if instant is not None else None)


class ClockScheduler:
    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        service: TicketService,
        *,
        name: str = "edgewatch",
        reconcile_every: float = 5.0,
        threads: int = 4,
        persistent: bool = True,
    ) -> None:
        """`persistent`: keep the jobs in the database (see `jobstore_engine`), else in memory."""
        self.name = name
        self._engine = engine
        self._sessions = sessions
        self._service = service
        self._reconcile_every = reconcile_every
        self._store_engine: Engine | None = None
        store: Any = MemoryJobStore()
        if persistent:
            self._store_engine = jobstore_engine(engine)
            store = SQLAlchemyJobStore(engine=self._store_engine, tablename=JOB_TABLE)
        self._aps = _Scheduler(
            jobstores={"default": store, "local": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(threads)},
            # Never drop a late job: a deadline missed while down must still fire, once.
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self._scheduled: dict[int, datetime] = {}
        self._lock = threading.Lock()
        # (due instant, fired instant) of recent firings: the benchmark and /metrics read lateness.
        self.firings: deque[tuple[datetime, datetime]] = deque(maxlen=100_000)
        self.errors = 0
        self._queue: queue.Queue[tuple[int, datetime | None] | None] = queue.Queue()
        self._feeder: threading.Thread | None = None
        self._stopping = False
        self.last_resync = (0, 0)  # (clocks scheduled, jobs written to the store) at the last resync

    # ------------------------------------------------------------ life

    def start(self) -> None:
        with _RUNNING_LOCK:
            if self.name in _RUNNING:
                raise RuntimeError(f"a clock scheduler named {self.name!r} already runs in this process")
            _RUNNING[self.name] = self
        # Paused until resync is done: a stored job due since before the restart must not be
        # handed out while resync, not seeing it in the store any more, schedules it again.
        self._aps.start(paused=True)
        self._feeder = threading.Thread(target=self._feed, name=f"clock-feeder-{self.name}", daemon=True)
        self._feeder.start()
        self._service.use_scheduler(self)
        self.resync()
        self._aps.add_job(self.reconcile, "interval", seconds=self._reconcile_every, jobstore="local",
                          id="reconcile", replace_existing=True)
        self._aps.resume()

    def shutdown(self, wait: bool = True) -> None:
        self._service.use_scheduler(None)
        if self._feeder is not None:
            self._queue.put(None)  # clocks handed over before this are still written
            self._feeder.join(timeout=30)
            self._feeder = None
        with self._lock:
            # APScheduler's shutdown holds its job store lock while it waits for running jobs; a
            # job then adding its clock's next instant would wait for that lock forever. From here
            # on jobs leave the job store alone (the next start reschedules from the database).
            self._stopping = True
        self._aps.close_passes()
        with contextlib.suppress(Exception):
            self._aps.shutdown(wait=wait)
        if self._store_engine is not None and self._store_engine is not self._engine:
            self._store_engine.dispose()
        with _RUNNING_LOCK:
            if _RUNNING.get(self.name) is self:
                del _RUNNING[self.name]

    def __enter__(self) -> ClockScheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------ scheduling

    def schedule(self, clock_id: int, at: datetime | None) -> None:
        """Hand over a clock to (re)schedule at `at` (None: remove its job). Returns at once: the
        job store write happens on the scheduler's feeder thread, never on the caller's."""
        self._queue.put((clock_id, at))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every handed-over clock is scheduled; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def _feed(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._apply(*item)
            except OperationalError as exc:  # the database is busy or away: keep the clock, retry
                logger.warning("scheduling clock %s failed (%s); retrying", item[0] if item else None, exc)
                self._queue.put(item)
                time.sleep(0.5)
            except Exception:
                logger.exception("scheduling clock %s failed; the reconciliation pass will retry", item)
            finally:
                self._queue.task_done()

    def _apply(self, clock_id: int, at: datetime | None) -> None:
        """(Re)schedule the clock's job at `at`; None forgets it.

        A job for an instant that is no longer the clock's is never removed: APScheduler's own loop
        may be handing it to the executor right now and would die on a job that vanished under it.
        Left alone, it fires once, finds the clock's row says otherwise, and does nothing.
        """
        with self._lock:
            if self._stopping:
                return
            if self._scheduled.get(clock_id) == at:
                return
            if at is None:
                self._scheduled.pop(clock_id, None)
                return
            self._scheduled[clock_id] = at
            self._aps.add_job(fire_clock_job, DateTrigger(run_date=at, timezone=UTC),
                              args=[self.name, clock_id, at.timestamp()], id=_job_id(clock_id, at),
                              replace_existing=True)

    def resync(self) -> int:
        """Schedule every clock with something left to do, from the database; returns how many."""
        with self._sessions() as session:
            due = list(session.execute(select(ClockRow.id, ClockRow.next_fire_at)
                                       .where(ClockRow.next_fire_at.is_not(None))))
        # Jobs still in the persistent store from before a restart are kept when they are right:
        # rewriting tens of thousands of them would make every start slow.
        stored = {job.id for job in self._aps.get_jobs(jobstore="default")}
        wanted = set()
        changed = 0
        with self._lock:
            self._scheduled.clear()
        for clock_id, at in due:
            if at is None:
                continue
            job_id = _job_id(clock_id, at)
            wanted.add(job_id)
            if job_id in stored:
                with self._lock:
                    self._scheduled[clock_id] = at
                continue
            self._apply(clock_id, at)
            changed += 1
        # Stored jobs no longer wanted are left to fire once and do nothing (see `_apply`).
        self.last_resync = (len(due), changed)
        logger.info("clock scheduler %s: %d clocks scheduled from the database (%d jobs written)",
                    self.name, len(due), changed)
        return len(due)

    def reconcile(self) -> int:
        """Schedule clocks whose next instant differs from what this scheduler holds (set elsewhere)."""
        with self._sessions() as session:
            result = session.execute(select(ClockRow.id, ClockRow.next_fire_at)
                                     .where(ClockRow.next_fire_at.is_not(None)))
            due = {cid: at for cid, at in result}
        with self._lock:
            stale = [(cid, at) for cid, at in due.items() if self._scheduled.get(cid) != at]
            gone = [cid for cid in self._scheduled if cid not in due]
        for cid, at in stale:
            self._apply(cid, at)
        for cid in gone:
            # Stopped elsewhere: the job would find nothing to do; drop it now.
            self._apply(cid, None)
        if stale:
            logger.info("clock scheduler %s: reconciled %d clocks set by another process", self.name, len(stale))
        return len(stale)

    # ------------------------------------------------------------ firing

    def fire(self, clock_id: int, instant: datetime | None = None) -> None:
        """Run what is due on one clock now (called by its job, scheduled for `instant`)."""
        with self._lock:
            current = self._scheduled.get(clock_id)
            # A job for an instant the clock has moved away from is stale: it still looks (the
            # row decides) but does not count as a firing and keeps the current job's place.
            stale = instant is not None and current is not None and abs((current - instant).total_seconds()) > 1e-3
            target = None if stale else self._scheduled.pop(clock_id, None)
        started = time.monotonic()
        try:
            with self._sessions.begin() as session:
                following = self._service.fire_clock(session, clock_id)
        except Exception:
            self.errors += 1
            self._service.after_rollback()
            logger.exception("clock %s: firing failed; trying again in %s", clock_id, RETRY_AFTER)
            self._apply(clock_id, datetime.now(UTC) + RETRY_AFTER)
            return
        if target is not None:
            self.firings.append((target, datetime.now(UTC)))
        self._service.after_commit()
        if following is not None:
            self._apply(clock_id, following)
        logger.debug("clock %s fired in %.1f ms", clock_id, (time.monotonic() - started) * 1000)

    def pending(self) -> int:
        with self._lock:
            return len(self._scheduled)
