"""The service-efficiency board: daily KPIs computed in the database.

Tickets are counted in the cohort of the UTC day they were opened: that day's first-response
percentiles, MTTA (acknowledged - opened), MTTR (resolved - opened), resolution rate (resolved /
opened, cancelled tickets left out), satisfaction (mean of the customers' own ratings, 5 = 100) and
SLA attainment per clock (met / settled, where a clock is settled once stopped or breached). The backlog is the number
of tickets still open (not resolved, closed or cancelled) at the end of each day.

Aggregation happens in SQL so a board over 100 000 tickets ships a few dozen rows, not the tickets.
PostgreSQL computes the percentiles too (`percentile_cont`); SQLite has no such function, so there
the first-response durations of the window are fetched and ranked here. Every query is bounded by
the window through an index (migration 0005): tickets by `opened_at`, the backlog by the finishing
time, so a cold board costs what its days hold, not what the whole history holds.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Date, and_, case, cast, func, null, select, union_all
from sqlalchemy.orm import Session

from tickets.errors import DatabaseUnavailable
from tickets.models import Clock, RatingSource, Ticket
from tickets.policy import SLA_CLOCKS  # the escalation chain is an internal clock, not an SLA promise

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class KpiFilter:
    start: date
    end: date  # inclusive
    customer_id: int | None = None
    level: str | None = None


@dataclass
class Cohort:
    opened: int = 0
    cancelled: int = 0
    acknowledged: int = 0
    mtta_s: float | None = None
    resolved: int = 0
    mttr_s: float | None = None
    ratings: int = 0
    mean_rating: float | None = None
    p50_s: float | None = None
    p90_s: float | None = None
    sla: dict[str, tuple[int, int]] = field(default_factory=dict)  # clock -> (settled, met)
    backlog: int = 0
    ids: tuple[int, int] | None = None  # the lowest and highest ticket id of the cohort


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (what PostgreSQL's percentile_cont computes)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class _Sql:
    """The few expressions that differ between PostgreSQL and SQLite."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def day(self, column: Any) -> ColumnElement[Any]:
        """The UTC day of a time; read it back with `key`. A date, not text: formatting and grouping
        text per row (`to_char`, `strftime`) cost PostgreSQL and SQLite two to three times more."""
        if self.postgres:
            return cast(func.timezone("UTC", column), Date)
        return func.date(column)  # SQLite stores UTC without a zone: its date is the UTC day

    @staticmethod
    def key(day: Any) -> str:
        return day.isoformat() if isinstance(day, date) else str(day)

    def seconds(self, later: Any, earlier: Any) -> ColumnElement[Any]:
        if self.postgres:
            # date_part is a float; EXTRACT is numeric since PostgreSQL 14 and averages slower.
            return func.date_part("epoch", later - earlier)
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _bounds(f: KpiFilter) -> tuple[datetime, datetime]:
    return (
        datetime.combine(f.start, time(), tzinfo=UTC),
        datetime.combine(f.end + timedelta(days=1), time(), tzinfo=UTC),
    )


def _opened_between(start: datetime, end: datetime, f: KpiFilter) -> ColumnElement[bool]:
    return and_(Ticket.opened_at >= start, Ticket.opened_at < end, *_scope(f))  # ix_tickets_opened_at


def _finished_at() -> ColumnElement[Any]:
    """When a ticket stopped being open. Spelt as ix_tickets_finished_at is (migration 0005), which
    SQLite needs in order to use that index."""
    return func.coalesce(Ticket.resolved_at, Ticket.cancelled_at, Ticket.closed_at)


def _scope(f: KpiFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.customer_id is not None:
        conditions.append(Ticket.customer_id == f.customer_id)
    if f.level is not None:
        conditions.append(Ticket.level == f.level)
    return conditions


def compute(session: Session, f: KpiFilter) -> tuple[list[tuple[str, Cohort]], Cohort]:
    """One Cohort per day of the window (oldest first) and one for the whole window.

    Three queries: the window's tickets by opening day (PostgreSQL adds the total row with ROLLUP),
    their clocks, and tickets by the day they were finished, for the backlog. The first two read
    the window through the opening-time index; the backlog reads the tickets still open and those
    finished since the window began through the finishing-time index.
    """
    sql = _Sql(session.get_bind().dialect.name)
    start, end = _bounds(f)
    in_window = _opened_between(start, end, f)
    day = sql.day(Ticket.opened_at).label("day")
    ack_s = sql.seconds(Ticket.acknowledged_at, Ticket.opened_at)
    res_s = sql.seconds(Ticket.resolved_at, Ticket.opened_at)
    not_cancelled = Ticket.cancelled_at.is_(None)
    customer_rating = case((Ticket.rating_source == RatingSource.CUSTOMER.value, Ticket.rating))

    measures: list[Any] = [
        func.count(),
        func.count(Ticket.cancelled_at),
        func.count(Ticket.acknowledged_at),
        func.avg(ack_s),
        func.count(case((and_(Ticket.resolved_at.is_not(None), not_cancelled), 1))),
        func.avg(res_s),
        # Only the customer's own ratings: a rating staff entered for them is kept but not counted.
        func.count(customer_rating),
        func.avg(customer_rating),
        func.min(Ticket.id),
        func.max(Ticket.id),
    ]
    days: dict[str, Cohort] = defaultdict(Cohort)
    if sql.postgres:
        measures += [func.percentile_cont(0.5).within_group(ack_s), func.percentile_cont(0.9).within_group(ack_s)]
        total = Cohort()
        for row in session.execute(select(day, *measures).where(in_window).group_by(func.rollup(day))):
            if row[0] is None:
                total = _cohort(row[1:])
            else:
                days[sql.key(row[0])] = _cohort(row[1:])
    else:
        for row in session.execute(select(day, *measures).where(in_window).group_by(day)):
            days[sql.key(row[0])] = _cohort(row[1:])
        total = _combined(list(days.values()))
        durations: dict[str, list[float]] = defaultdict(list)
        for d, seconds in session.execute(select(day, ack_s).where(in_window, Ticket.acknowledged_at.is_not(None))):
            durations[sql.key(d)].append(float(seconds))
        for d, values in durations.items():
            days[d].p50_s, days[d].p90_s = percentile(values, 0.5), percentile(values, 0.9)
        everything = [v for values in durations.values() for v in values]
        total.p50_s, total.p90_s = percentile(everything, 0.5), percentile(everything, 0.9)

    _sla(session, sql, f, start, end, days, total)
    _backlog(session, sql, f, start, end, days)
    ordered = []
    for offset in range((f.end - f.start).days + 1):
        key = (f.start + timedelta(days=offset)).isoformat()
        ordered.append((key, days.get(key) or Cohort()))
    _carry_backlog(ordered, days)
    total.backlog = ordered[-1][1].backlog if ordered else 0
    return ordered, total


def _combined(cohorts: list[Cohort]) -> Cohort:
    """The window's figures from its days' (SQLite; PostgreSQL's ROLLUP row gives them directly)."""

    def mean(pairs: list[tuple[float | None, int]]) -> float | None:
        weight = sum(n for m, n in pairs if m is not None)
        return sum(m * n for m, n in pairs if m is not None) / weight if weight else None

    return Cohort(
        opened=sum(c.opened for c in cohorts),
        cancelled=sum(c.cancelled for c in cohorts),
        acknowledged=sum(c.acknowledged for c in cohorts),
        mtta_s=mean([(c.mtta_s, c.acknowledged) for c in cohorts]),
        resolved=sum(c.resolved for c in cohorts),
        mttr_s=mean([(c.mttr_s, c.resolved) for c in cohorts]),
        ratings=sum(c.ratings for c in cohorts),
        mean_rating=mean([(c.mean_rating, c.ratings) for c in cohorts]),
        ids=(min(c.ids[0] for c in cohorts if c.ids), max(c.ids[1] for c in cohorts if c.ids))
        if any(c.ids for c in cohorts) else None,
    )


def _sla(session: Session, sql: _Sql, f: KpiFilter, start: datetime, end: datetime, days: dict[str, Cohort],
         total: Cohort) -> None:
    settled = case((Clock.stopped_at.is_not(None) | Clock.breached_at.is_not(None), 1))
    met = case((and_(Clock.stopped_at.is_not(None), Clock.breached_at.is_(None)), 1))
    if total.ids is None:
        return  # no ticket opened in the window
    low, high = total.ids
    window = _opened_between(start, end, f)
    day = sql.day(Ticket.opened_at).label("day")
    query = (
        select(day, Clock.name, func.count(settled), func.count(met))
        .join(Ticket, Clock.ticket_id == Ticket.id)
        # The id range adds nothing to the join's answer; it lets the clocks' ticket_id index
        # serve the window instead of a scan of every clock.
        .where(window, Clock.ticket_id.between(low, high), Clock.name.in_(SLA_CLOCKS))
    )
    for d, name, n_settled, n_met in session.execute(query.group_by(day, Clock.name)):
        days[sql.key(d)].sla[name] = (n_settled, n_met)
        old = total.sla.get(name, (0, 0))
        total.sla[name] = (old[0] + n_settled, old[1] + n_met)


def _cohort(row: Sequence[Any]) -> Cohort:
    cohort = Cohort(
        opened=int(row[0]),
        cancelled=int(row[1]),
        acknowledged=int(row[2]),
        mtta_s=_float(row[3]),
        resolved=int(row[4]),
        mttr_s=_float(row[5]),
        ratings=int(row[6]),
        mean_rating=_float(row[7]),
    )
    if row[8] is not None:
        cohort.ids = (int(row[8]), int(row[9]))
    if len(row) > 10:
        cohort.p50_s, cohort.p90_s = _float(row[10]), _float(row[11])
    return cohort


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _backlog(
    session: Session, sql: _Sql, f: KpiFilter, start: datetime, end: datetime, days: dict[str, Cohort]
) -> None:
    """Open at the start of the window, plus opened minus finished day by day.

    Only tickets still open or finished since `start` can count, and the finishing-time index
    finds both: one index range each (a UNION ALL, since SQLite would otherwise prefer the
    opening-time index for `opened_at < end` and read the whole history before the window).
    """
    done_at = _finished_at()
    opened = [Ticket.opened_at < end, *_scope(f)]
    before = (Ticket.opened_at < start).label("before")
    still_open = select(null().label("done_day"), before).where(done_at.is_(None), *opened)
    finished = select(case((done_at < end, sql.day(done_at))).label("done_day"), before).where(
        done_at >= start, *opened)
    both = union_all(still_open, finished).subquery()
    rows = session.execute(select(both.c.done_day, both.c.before, func.count()).group_by(both.c.done_day,
                                                                                         both.c.before))
    base = 0
    for finished_on, opened_before, count in rows:
        if opened_before:
            base += int(count)  # still open when the window starts
        if finished_on is not None:
            days[sql.key(finished_on)].backlog -= int(count)  # made a running total by _carry_backlog
    days["__base__"].backlog = base


def _carry_backlog(ordered: list[tuple[str, Cohort]], days: dict[str, Cohort]) -> None:
    running = days["__base__"].backlog
    for _key, cohort in ordered:
        running += cohort.opened + cohort.backlog  # cohort.backlog holds minus the tickets finished that day
        cohort.backlog = running


class KpiCache:
    """Recent boards by filter, kept `ttl_s` seconds: the board is a daily figure, and a minute-old
    answer spares the database three scans per viewer. `ttl_s = 0` turns it off.

    With `stale_s`, a board older than `ttl_s` but not by more than `stale_s` is still served at
    once while a background thread computes the fresh one for the next viewer (stale while
    revalidate): a viewer then waits for a computation only for a filter nobody asked for lately."""

    def __init__(self, ttl_s: float, max_entries: int = 64, clock: Callable[[], float] = monotonic,
                 stale_s: float = 0.0) -> None:
        self.ttl_s = ttl_s
        self.stale_s = stale_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._refreshing: set[Hashable] = set()
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, compute: Callable[[], T], refresh: Callable[[], T] | None = None) -> T:
        """The board for `key`: `compute` runs in the caller's thread; `refresh` (default: `compute`)
        in a background thread, so it must not use the caller's request-scoped resources."""
        if self.ttl_s <= 0:
            return compute()
        now = self._clock()
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                age = now - found[0]
                if age < self.ttl_s + self.stale_s:
                    self._entries.move_to_end(key)
                    if age >= self.ttl_s and key not in self._refreshing:
                        self._refreshing.add(key)
                        threading.Thread(target=self._refresh, args=(key, refresh or compute), daemon=True,
                                         name="edgewatch-kpi-refresh").start()
                    value: T = found[1]
                    return value
        value = compute()  # outside the lock: a slow board must not block other viewers' cached ones
        self._store(key, now, value)
        return value

    def _refresh(self, key: Hashable, compute: Callable[[], Any]) -> None:
        try:
            started = self._clock()
            self._store(key, started, compute())
        except DatabaseUnavailable as exc:
            with self._lock:
                self._entries.pop(key, None)
            logger.warning("refreshing an efficiency board waits for the database (%s); the next viewer computes it",
                           exc.reason)
        except Exception:
            with self._lock:  # dropped before the log says so, so that the log line is true when read
                self._entries.pop(key, None)
            logger.exception("refreshing an efficiency board failed; the next viewer computes it")
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _store(self, key: Hashable, at: float, value: Any) -> None:
        with self._lock:
            self._entries[key] = (at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
