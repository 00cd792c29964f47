"""The efficiency board's figures, checked by hand on a small history, on both database backends
(PostgreSQL computes percentiles in SQL, SQLite here), plus the percentile rule itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.kpis import percentile
from tests.server.harness import Harness
from tickets.models import Clock, Customer, Ticket

T = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
S = timedelta(seconds=1)


def add(h: Harness, opened: datetime, *, ack: float | None = None, resolved: float | None = None,
        cancelled: float | None = None, rating: int | None = None, rating_source: str = "customer",
        first_response: tuple[float | None, float | None] | None = None, escalation: bool = False) -> None:
    """A ticket with offsets in seconds from its opening; first_response = (stopped, breached)."""
    status = "cancelled" if cancelled else "resolved" if resolved else "received"
    with h.sessions() as session:
        ticket = Ticket(kind="on_site", level="red", severity="red", priority=1, status=status, title="t",
                        opened_at=opened, updated_at=opened,
                        acknowledged_at=opened + ack * S if ack is not None else None,
                        resolved_at=opened + resolved * S if resolved is not None else None,
                        cancelled_at=opened + cancelled * S if cancelled is not None else None, rating=rating,
                        rating_source=rating_source if rating is not None else None)
        session.add(ticket)
        session.flush()
        if first_response is not None:
            stopped, breached = first_response
            session.add(Clock(ticket_id=ticket.id, name="first_response", started_at=opened,
                              original_due_at=opened + 300 * S, due_at=opened + 300 * S,
                              stopped_at=opened + stopped * S if stopped is not None else None,
                              breached_at=opened + breached * S if breached is not None else None))
        if escalation:  # the internal escalation-chain clock: not an SLA promise, never on the board
            session.add(Clock(ticket_id=ticket.id, name="escalation", started_at=opened, original_due_at=opened,
                              due_at=opened, stopped_at=opened + 30 * S))
        session.commit()


@pytest.fixture(params=["sqlite_api", pytest.param("api", marks=pytest.mark.postgres)])
def board(request: pytest.FixtureRequest) -> Harness:
    h: Harness = request.getfixturevalue(request.param)
    add(h, T(2026, 1, 1, 9))  # still open from before the window
    add(h, T(2026, 1, 3, 10), ack=60, resolved=3600, rating=5, first_response=(60, None), escalation=True)
    add(h, T(2026, 1, 3, 11), ack=120, resolved=7200, rating=3, first_response=(400, 300))
    add(h, T(2026, 1, 3, 12), ack=600, first_response=(None, None))
    add(h, T(2026, 1, 3, 13), cancelled=1800)
    add(h, T(2026, 1, 4, 8), ack=300, resolved=86400)
    return h


@pytest.mark.parametrize("backend", ["sqlite_api", pytest.param("api", marks=pytest.mark.postgres)])
def test_staff_entered_ratings_are_left_out_of_satisfaction(request: pytest.FixtureRequest, backend: str) -> None:
    h: Harness = request.getfixturevalue(backend)
    add(h, T(2026, 1, 3, 10), ack=60, resolved=600, rating=4)
    add(h, T(2026, 1, 3, 11), ack=60, resolved=600, rating=5, rating_source="staff")
    add(h, T(2026, 1, 3, 12), ack=60, resolved=600, rating=1, rating_source="staff")
    body = h.client.get("/api/v1/kpis", params={"start": "2026-01-03", "end": "2026-01-03"},
                        headers=h.auth("supervisor")).json()
    assert (body["totals"]["ratings"], body["totals"]["satisfaction"]) == (1, pytest.approx(80))


def test_daily_figures(board: Harness) -> None:
    answer = board.client.get("/api/v1/kpis", params={"start": "2026-01-03", "end": "2026-01-05"},
                              headers=board.auth("supervisor"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    d1, d2, d3 = body["days"]
    assert [d["day"] for d in body["days"]] == ["2026-01-03", "2026-01-04", "2026-01-05"]
    assert (d1["opened"], d1["resolved"]) == (4, 2)
    assert d1["first_response_p50_s"] == pytest.approx(120)
    assert d1["first_response_p90_s"] == pytest.approx(504)
    assert d1["mtta_s"] == pytest.approx(260)
    assert d1["mttr_s"] == pytest.approx(5400)
    assert d1["resolution_rate"] == pytest.approx(2 / 3)  # the cancelled ticket does not count
    assert (d1["ratings"], d1["satisfaction"]) == (2, pytest.approx(80))
    assert d1["sla"] == [{"clock": "first_response", "settled": 2, "met": 1, "rate": 0.5}]
    assert [d["backlog"] for d in (d1, d2, d3)] == [2, 3, 2]
    assert d3["opened"] == 0 and d3["first_response_p50_s"] is None and d3["resolution_rate"] is None
    totals = body["totals"]
    assert totals["opened"] == 5 and totals["backlog"] == 2
    assert totals["first_response_p50_s"] == pytest.approx(210)
    assert totals["mtta_s"] == pytest.approx(270)


def test_filters_and_window_checks(board: Harness) -> None:
    c, h = board.client, board.auth("supervisor")
    blue = c.get("/api/v1/kpis", params={"start": "2026-01-03", "end": "2026-01-03", "level": "blue"}, headers=h)
    assert blue.json()["totals"]["opened"] == 0
    default = c.get("/api/v1/kpis", headers=h).json()
    assert len(default["days"]) == 14 and default["end"] == "2026-01-05"
    too_long = c.get("/api/v1/kpis", params={"start": "2024-01-01", "end": "2026-01-05"}, headers=h)
    assert too_long.status_code == 422 and "366" in too_long.json()["detail"]
    assert c.get("/api/v1/kpis", headers=board.auth("customer")).status_code == 403


def test_a_stale_board_is_refreshed_from_the_database_in_the_background(board: Harness) -> None:
    """Through the app on both backends: the refresh runs in its own thread with its own session."""
    import time

    cache = board.app.state.ctx.kpi_cache
    now = [0.0]
    cache._clock = lambda: now[0]
    c, h = board.client, board.auth("supervisor")
    params = {"start": "2026-01-03", "end": "2026-01-05"}
    assert c.get("/api/v1/kpis", params=params, headers=h).json()["totals"]["opened"] == 5
    add(board, T(2026, 1, 4, 9))
    now[0] = cache.ttl_s + 1
    assert c.get("/api/v1/kpis", params=params, headers=h).json()["totals"]["opened"] == 5  # stale, served at once
    for _ in range(200):
        if c.get("/api/v1/kpis", params=params, headers=h).json()["totals"]["opened"] == 6:
            break
        time.sleep(0.05)
    assert c.get("/api/v1/kpis", params=params, headers=h).json()["totals"]["opened"] == 6


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0, 0.0, 20.0], 0.9) == pytest.approx(18.0)


def test_cache_serves_a_recent_board_and_expires() -> None:
    from server.kpis import KpiCache

    now = [0.0]
    calls: list[int] = []
    cache = KpiCache(60, max_entries=2, clock=lambda: now[0])
    compute = lambda: calls.append(1) or len(calls)  # noqa: E731
    assert cache.get_or_compute("a", compute) == 1
    assert cache.get_or_compute("a", compute) == 1
    now[0] = 61
    assert cache.get_or_compute("a", compute) == 2
    cache.get_or_compute("b", compute)
    cache.get_or_compute("c", compute)  # evicts "a", the least recently used
    assert cache.get_or_compute("a", compute) == 5
    off = KpiCache(0)
    assert [off.get_or_compute("x", compute) for _ in range(2)] == [6, 7]


def test_a_stale_board_is_served_at_once_and_refreshed_in_the_background() -> None:
    import threading

    from server.kpis import KpiCache

    now = [0.0]
    release, started = threading.Event(), threading.Event()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        if len(calls) > 1:  # the refresh: slow, as a cold board is
            started.set()
            assert release.wait(5)
        return len(calls)

    cache = KpiCache(60, clock=lambda: now[0], stale_s=600)
    assert cache.get_or_compute("a", compute) == 1
    now[0] = 100  # stale: served at once, one refresh starts
    assert cache.get_or_compute("a", compute) == 1
    assert started.wait(5)
    assert cache.get_or_compute("a", compute) == 1  # no second refresh while one runs
    release.set()
    deadline = threading.Event()
    for _ in range(100):
        if cache.get_or_compute("a", compute) == 2:
            break
        deadline.wait(0.05)
    assert cache.get_or_compute("a", compute) == 2 and len(calls) == 2
    now[0] = 100 + 60 + 600  # too old even to serve: computed while the viewer waits
    release.set()
    assert cache.get_or_compute("a", compute) == 3


def test_a_failed_refresh_leaves_the_next_viewer_to_compute(caplog: pytest.LogCaptureFixture) -> None:
    import time

    from server.kpis import KpiCache

    now = [0.0]
    results: list[object] = [1, RuntimeError("database gone"), 3]

    def compute() -> int:
        item = results.pop(0)
        if isinstance(item, Exception):
            raise item
        assert isinstance(item, int)
        return item

    cache = KpiCache(60, clock=lambda: now[0], stale_s=600)
    assert cache.get_or_compute("a", compute) == 1
    now[0] = 100
    assert cache.get_or_compute("a", compute) == 1  # stale; the refresh fails in the background
    for _ in range(100):
        if "refreshing an efficiency board failed" in caplog.text:
            break
        time.sleep(0.05)
    assert cache.get_or_compute("a", compute) == 3


@pytest.fixture(params=["sqlite_api", pytest.param("api", marks=pytest.mark.postgres)])
def empty_board(request: pytest.FixtureRequest) -> Harness:
    h: Harness = request.getfixturevalue(request.param)
    return h


def test_board_matches_a_count_by_hand_over_a_mixed_history(empty_board: Harness) -> None:
    """Every per-day count and the backlog against a plain count over the same tickets: finished before,
    inside and after the window, closed with and without resolving, cancelled, still open, on the
    stroke of midnight, for two customers and levels; on both backends."""
    import random

    from server.kpis import KpiFilter, compute

    h = empty_board
    rng = random.Random(5)
    made: list[dict[str, Any]] = []
    with h.sessions.begin() as session:
        customers = [Customer(name="A"), Customer(name="B")]
        session.add_all(customers)
        session.flush()
        for n in range(120):
            opened = T(2026, 1, 1) + timedelta(seconds=rng.choice((0, 1, 86399)) + 86400 * rng.randrange(10))
            finish = rng.choice((None, "resolved", "closed", "resolve+close", "cancelled"))
            done = opened + timedelta(hours=rng.choice((1, 30, 80)))
            row: dict[str, Any] = dict(
                kind="on_site", level=rng.choice(("red", "blue")), priority=1, title=f"t{n}",
                customer_id=rng.choice(customers).id, opened_at=opened, updated_at=opened,
                acknowledged_at=opened + 90 * S if rng.random() < 0.7 else None,
                status={None: "received", "resolve+close": "closed"}.get(finish, finish),
                resolved_at=done if finish in ("resolved", "resolve+close") else None,
                closed_at=(done if finish == "closed" else done + timedelta(days=2))
                if finish in ("closed", "resolve+close") else None,
                cancelled_at=done if finish == "cancelled" else None,
                rating=rng.choice((None, 4)) if finish else None)
            # Only the customer's own ratings count; staff-entered ones are kept but left out.
            row["rating_source"] = rng.choice(("customer", "staff")) if row["rating"] else None
            ticket = Ticket(**row)
            session.add(ticket)
            session.flush()
            met = rng.random() < 0.5
            session.add(Clock(ticket_id=ticket.id, name="first_response", started_at=opened,
                              original_due_at=opened + 300 * S, due_at=opened + 300 * S,
                              stopped_at=opened + 60 * S if met or rng.random() < 0.5 else None,
                              breached_at=None if met else opened + 300 * S))
            made.append({**row, "met": met})
    for f in (KpiFilter(T(2026, 1, 4).date(), T(2026, 1, 7).date()),
              KpiFilter(T(2026, 1, 2).date(), T(2026, 1, 12).date(), customer_id=customers[1].id, level="red")):
        with h.sessions() as session:
            days, total = compute(session, f)
        assert [d for d, _ in days] == [
            (f.start + timedelta(days=i)).isoformat() for i in range((f.end - f.start).days + 1)]
        scoped = [t for t in made if f.customer_id in (None, t["customer_id"]) and f.level in (None, t["level"])]
        for key, cohort in days:
            day_end = datetime.fromisoformat(key).replace(tzinfo=UTC) + timedelta(days=1)
            on_day = [t for t in scoped if t["opened_at"].date().isoformat() == key]
            finished = [t.get("resolved_at") or t.get("cancelled_at") or t.get("closed_at") for t in scoped]
            still_open = sum(1 for t, done in zip(scoped, finished, strict=True)
                             if t["opened_at"] < day_end and (done is None or done >= day_end))
            assert (cohort.opened, cohort.backlog) == (len(on_day), still_open), key
            assert cohort.cancelled == sum(1 for t in on_day if t["cancelled_at"]), key
            assert cohort.acknowledged == sum(1 for t in on_day if t["acknowledged_at"]), key
            assert cohort.resolved == sum(1 for t in on_day if t["resolved_at"] and not t["cancelled_at"]), key
            assert cohort.ratings == sum(1 for t in on_day if t["rating"] and t["rating_source"] == "customer"), key
            settled_met = cohort.sla.get("first_response", (0, 0))
            assert settled_met[1] == sum(1 for t in on_day if t["met"]), key
        assert total.opened == sum(c.opened for _, c in days) and total.backlog == days[-1][1].backlog
