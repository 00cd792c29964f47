"""`ClockScheduler`: SLA clocks fire at their instants, and the `clocks` table is the schedule.

Each clock row's `next_fire_at` (indexed) is when it next needs attention: a warning, its due
time, an escalation step. APScheduler 3, through its public API with its jobs in memory, holds a
single job, the sweep, armed at the earliest of those instants. A sweep fires every clock that
is due (`TicketService.fire_clock` re-reads and locks the row, so a clock stopped or fired
meanwhile, by this process or another, does nothing), then arms the job again at the next instant
the table holds, and at most `reconcile_every` seconds ahead.

- After a commit in this process, `TicketService.after_commit` hands the clocks over
  (`schedule`): an instant earlier than the armed one brings the sweep forward. Nothing is written.
- Clocks set by other processes (the server, collectors without the ticket runtime) are found by
  the next sweep, at most `reconcile_every` later: its queries are the due clocks and the earliest
  instant, both read through the index, whatever the number of clocks.
- At start the job is armed from the table; instants missed while no process ran the scheduler
  are due at once.
- The database unavailable: the sweep is counted (`unavailable`) and tried again `RETRY_AFTER` later.

Why one job rather than one per clock: the table already orders the clocks by instant. A job per
clock is a second copy of the schedule, rebuilt at every start and compared with the table by a
full scan to notice clocks moved elsewhere; one job needs only the earliest instant.

The scheduler runs inside the process hosting the ticket runtime (the collector, or `edgewatch demo`).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tickets.errors import DatabaseUnavailable
from tickets.models import Clock as ClockRow
from tickets.service import TicketService

logger = logging.getLogger(__name__)

SWEEP = "sla-clock-sweep"
RETRY_AFTER = timedelta(seconds=5)
BATCH = 500  # due clocks read per query


class ClockScheduler:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        service: TicketService,
        *,
        reconcile_every: float = 5.0,
        threads: int = 4,
    ) -> None:
        """`reconcile_every`: the longest a sweep waits (how soon clocks set elsewhere are seen);
        `threads`: clocks fired at the same time when several are due together."""
        self._sessions = sessions
        self._service = service
        self._every = timedelta(seconds=reconcile_every)
        self._threads = threads
        self._aps = BackgroundScheduler(
            executors={"default": JobExecutor(2)},
            # A sweep late for any reason still runs, once; see `_sweep` for the two instances.
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 2},
            timezone=UTC,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._sweep_lock = threading.Lock()
        self._armed: datetime | None = None  # the instant the sweep is armed for; None while starting or sweeping
        self._handed: datetime | None = None  # the earliest instant handed over while not armed
        self._backoff: dict[int, datetime] = {}  # clocks whose firing failed -> not again before
        self._started = False
        self._stopping = False
        self._outage = False
        self._release_at: datetime | None = None  # when held alerts are looked at next (None: at once)
        # (instant, fired) of recent firings: the benchmark reads lateness from them.
        self.firings: deque[tuple[datetime, datetime]] = deque(maxlen=100_000)
        self.errors = 0  # firings that failed (each clock tried again after RETRY_AFTER)
        self.unavailable = 0  # sweeps that found the database unavailable (tried again after RETRY_AFTER)

    # ------------------------------------------------------------ life

    def start(self) -> None:
        """Arm the sweep from the `clocks` table and start; due clocks fire at once."""
        with self._lock:
            if self._started:
                raise RuntimeError("this clock scheduler has already been started")
            self._started = True
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="sla-clock")
        self._service.use_scheduler(self)  # from here on, hand-overs are kept for the arming below
        now = self._now()
        try:
            with self._sessions() as session:
                count, earliest = session.execute(
                    select(func.count(), func.min(ClockRow.next_fire_at)).where(ClockRow.next_fire_at.is_not(None))
                ).one()
            logger.info("SLA clock scheduler: %d clocks with instants to come, the earliest at %s", count,
                        earliest.isoformat() if earliest is not None else "-")
        except DatabaseUnavailable as exc:
            earliest = now  # the first sweep finds out when it is back
            self._unavailable(exc)
        except BaseException:
            self._service.use_scheduler(None)
            raise
        self._aps.start(paused=True)
        with self._lock:
            first = self._next(now, earliest)
            self._aps.add_job(self._sweep, IntervalTrigger(seconds=self._every.total_seconds(), timezone=UTC),
                              id=SWEEP, name="SLA clock sweep", next_run_time=self._wall(first))
            self._armed, self._handed = first, None
        self._aps.resume()

    def shutdown(self, wait: bool = True) -> None:
        """Stop; a sweep in progress fires no further clock. Clocks stay in the table for the next start."""
        self._service.use_scheduler(None)
        with self._lock:
            if not self._started or self._stopping:
                return
            self._stopping = True  # from here on nobody calls APScheduler but this method
            self._armed = None
        # APScheduler, stopped while handing out a due job, logs an error (its executor refuses
        # new work): with no job left there is nothing to hand out.
        self._aps.remove_all_jobs()
        if self._aps.running:  # not when start() failed before it
            self._aps.shutdown(wait=wait)
        if self._pool is not None:
            self._pool.shutdown(wait=wait)

    def __enter__(self) -> ClockScheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------ hand-over

    def schedule(self, clock_id: int, at: datetime | None) -> None:
        """A clock of a committed transaction next needs attention at `at` (None: never again):
        brings the sweep forward when that is earlier than it is armed for. Returns at once."""
        if at is None:
            return  # a stopped clock needs nothing: its row says so when the sweep looks
        with self._lock:
            if self._stopping:
                return
            if self._armed is None:  # starting or sweeping: the arming that follows takes it
                self._handed = at if self._handed is None else min(self._handed, at)
                return
            if at < self._armed:
                self._arm(at)

    @property
    def next_due(self) -> datetime | None:
        """The instant the sweep is armed for (None while it runs)."""
        with self._lock:
            return self._armed

    def pending(self) -> int:
        """Clocks with an instant still to come, counted in the table."""
        with self._sessions() as session:
            count = session.scalar(select(func.count()).select_from(ClockRow)
                                   .where(ClockRow.next_fire_at.is_not(None)))
        return int(count or 0)

    # ------------------------------------------------------------ the sweep

    def _sweep(self) -> None:
        # One sweep at a time. The job may be handed out again while a sweep is returning (its
        # last act is to arm the job, possibly for an instant already come); two instances are
        # allowed so that this hand-out is not skipped, and this lock makes the second wait.
        with self._sweep_lock:
            with self._lock:
                if self._stopping:
                    return
                self._aps.pause_job(SWEEP)  # held back while the sweep runs
                self._armed, self._handed = None, None
            earliest: datetime | None = self._now() + RETRY_AFTER
            try:
                earliest = self._fire_until_none_due()
                window_end = self._release_held()
                if window_end is not None and (earliest is None or window_end < earliest):
                    earliest = window_end
                self._recovered()
            except DatabaseUnavailable as exc:
                self._unavailable(exc)
            except Exception:
                with self._lock:
                    self.errors += 1
                logger.exception("SLA clock sweep failed; trying again in %g s", RETRY_AFTER.total_seconds())
            finally:
                now = self._now()
                with self._lock:
                    if not self._stopping:
                        self._arm(self._next(now, earliest))

    def _fire_until_none_due(self) -> datetime | None:
        """Fire what is due until nothing is; the earliest instant left in the table."""
        while True:
            self._fire_due()
            earliest = self._earliest()
            if earliest is None or earliest > self._now() or self._stopping:
                return earliest

    def _fire_due(self) -> None:
        """Fire the clocks due now (up to `BATCH`), earliest first, `threads` at a time."""
        assert self._pool is not None
        now = self._now()
        with self._lock:
            self._backoff = {cid: at for cid, at in self._backoff.items() if at > now}
            waiting = list(self._backoff)
        query = (select(ClockRow.id, ClockRow.next_fire_at).where(ClockRow.next_fire_at <= now)
                 .order_by(ClockRow.next_fire_at).limit(BATCH))
        if waiting:
            query = query.where(ClockRow.id.not_in(waiting))
        with self._sessions() as session:
            due = [(clock_id, at) for clock_id, at in session.execute(query)]
        reached = list(self._pool.map(self._fire, due))  # every firing finished, before the next query
        if not all(reached):
            raise DatabaseUnavailable("firing due clocks failed to reach the database")

    def _fire(self, due: tuple[int, datetime]) -> bool:
        """Fire one clock; False when the database was unavailable."""
        clock_id, instant = due
        if self._stopping:
            return True
        try:
            with self._sessions.begin() as session:
                following = self._service.fire_clock(session, clock_id)
        except DatabaseUnavailable:
            self._service.after_rollback()
            return False
        except Exception:
            self._service.after_rollback()
            with self._lock:
                self.errors += 1
                self._backoff[clock_id] = self._now() + RETRY_AFTER
            logger.exception("clock %s: firing failed; trying again in %g s", clock_id, RETRY_AFTER.total_seconds())
            return True
        self.firings.append((instant, datetime.now(UTC)))
        self._service.after_commit()
        if following is not None and following <= instant:
            # Firing moves a clock past the instant it fired for; one that stayed would be swept
            # again and again.
            with self._lock:
                self._backoff[clock_id] = self._now() + RETRY_AFTER
            logger.warning("clock %s still due at %s after firing; trying again in %g s", clock_id,
                           following.isoformat(), RETRY_AFTER.total_seconds())
        return True

    def _release_held(self) -> datetime | None:
        """Held alerts whose reason ended open their tickets (maintenance windows, parents, incidents:
        tickets.suppression), every `reconcile_every` and at the end of a window holding alerts (the
        instant returned). Sweeps for clock instants in between skip it; with nothing held (the usual
        case) one read, no write transaction."""
        now = self._now()
        if self._release_at is not None and now < self._release_at:
            return self._release_at
        following: datetime | None = None
        with self._sessions() as session:
            held = self._service.holds_alerts(session)
        if held:
            try:
                with self._sessions.begin() as session:
                    following = self._service.release_held(session)
            except BaseException:
                self._service.after_rollback()
                raise
            self._service.after_commit()
        self._release_at = min(now + self._every, following) if following is not None else now + self._every
        return self._release_at if held else None

    def _earliest(self) -> datetime | None:
        """The earliest instant in the table, leaving out clocks waiting after a failed firing."""
        with self._lock:
            waiting = list(self._backoff)
        query = select(func.min(ClockRow.next_fire_at))  # (NULLs are skipped: one index lookup on SQLite too)
        if waiting:
            query = query.where(ClockRow.id.not_in(waiting))
        with self._sessions() as session:
            earliest: datetime | None = session.scalar(query)
        logger.debug("SLA clock sweep done; earliest instant in the table: %s", earliest)
        return earliest

    # ------------------------------------------------------------ arming (with the lock held)

    def _next(self, now: datetime, earliest: datetime | None) -> datetime:
        """When the sweep runs next: the earliest known instant, and no later than `reconcile_every`."""
        candidates = [now + self._every, *self._backoff.values()]
        candidates += [at for at in (earliest, self._handed) if at is not None]
        return min(candidates)

    def _arm(self, at: datetime) -> None:
        self._aps.modify_job(SWEEP, next_run_time=self._wall(at))
        self._armed, self._handed = at, None

    def _now(self) -> datetime:
        return self._service.clock.now()

    def _wall(self, at: datetime) -> datetime:
        """APScheduler waits on the system clock; the instants are on the service's clock."""
        return datetime.now(UTC) + (at - self._now())

    # ------------------------------------------------------------ outages

    def _unavailable(self, exc: DatabaseUnavailable) -> None:
        with self._lock:
            self.unavailable += 1
            first, self._outage = not self._outage, True
        if first:
            logger.warning("SLA clocks wait for the ticket database (%s); trying again every %g s", exc.reason,
                           RETRY_AFTER.total_seconds())
        else:
            logger.debug("SLA clocks still wait for the ticket database (%s)", exc.reason)

    def _recovered(self) -> None:
        with self._lock:
            was, self._outage = self._outage, False
        if was:
            logger.info("SLA clocks: the ticket database is back; due clocks fired")
