"""Redelivery after a receiver outage, on a manual clock against a real HTTP receiver: while it is down a
message is tried at most a minute apart (a ticket level may have a ceiling of its own), so it arrives within
a minute of the receiver's return; a receiver's Retry-After is honoured up to its own ceiling; and however many
messages wait for one receiver, the attempts against it stay within its rate limit, the rest going as a digest."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.notify.support import Receiver, Reply, Request
from tests.tickets.conftest import rows
from tests.tickets.test_delivery import _point_webhook, _registry
from tests.tickets.test_service import transition
from tickets.clock import ManualClock
from tickets.delivery import DeliverySettings, OutboxWorker
from tickets.models import OutboxMessage
from tickets.notify.policy import BackoffPolicy, RateLimit
from tickets.service import TicketService


def webhook_rows(sessions: sessionmaker[Session]) -> list[OutboxMessage]:
    with sessions() as s:
        return [m for m in rows(s, OutboxMessage) if m.channel == "webhook"]


def worker_for(sessions: sessionmaker[Session], send: Callable[..., object], clock: ManualClock,
               settings: DeliverySettings) -> OutboxWorker:
    # The rate limiter reads the manual clock too, so simulated minutes refill its tokens.
    return OutboxWorker(sessions, send, settings, clock=clock,  # type: ignore[arg-type]
                        monotonic=lambda: clock.now().timestamp())


def switchable(down: threading.Event, when_down: Reply, seen: list[datetime], clock: ManualClock
               ) -> Callable[[Request], Reply]:
    def app(request: Request) -> Reply:
        seen.append(clock.now())
        return when_down if down.is_set() else Reply(200, {"ok": True})
    return app


def open_red(sessions: sessionmaker[Session], service: TicketService, metric: str = "cpu_percent") -> None:
    with sessions.begin() as s:
        service.on_transition(s, transition("raised", "red", 95.0, metric=metric))


def gaps_while_down(sessions: sessionmaker[Session], worker: OutboxWorker, clock: ManualClock, passes: int
                    ) -> list[float]:
    """Seconds from each failed attempt to the next one, following the one webhook row."""
    gaps = []
    for _ in range(passes):
        worker.run_once()
        [row] = webhook_rows(sessions)
        assert row.status == "pending"
        gap = (row.next_attempt_at - clock.now()).total_seconds()
        gaps.append(gap)
        clock.advance(timedelta(seconds=gap))
    return gaps


def test_a_red_message_is_tried_at_most_a_minute_apart_and_arrives_within_a_minute_of_the_return(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    down, seen = threading.Event(), []
    down.set()
    with Receiver(switchable(down, Reply(503, {"error": "maintenance"}), seen, clock)) as hook, \
            _registry() as registry:
        _point_webhook(sessions, hook.url())
        open_red(sessions, service)
        worker = worker_for(sessions, registry.send, clock, DeliverySettings())
        gaps = gaps_while_down(sessions, worker, clock, passes=20)  # about 15 minutes down
        assert max(gaps) <= 60.0, gaps
        assert min(gaps[5:]) >= 30.0, gaps  # equal jitter: at the ceiling, never sooner than half of it
        worker.run_once()  # one more failure ...
        back = clock.now() + timedelta(seconds=1)  # ... and the receiver returns a second later
        clock.advance(timedelta(seconds=1))
        down.clear()
        while webhook_rows(sessions)[0].status == "pending":
            clock.advance(timedelta(seconds=1))
            worker.run_once()
            assert clock.now() - back <= timedelta(seconds=60), "not delivered within a minute of the return"
    [row] = webhook_rows(sessions)
    assert row.status == "delivered" and row.attempts == len(seen) == 22


def test_a_ticket_level_may_have_a_ceiling_of_its_own(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    settings = DeliverySettings(level_caps={"red": 20.0, "blue": 900.0})
    assert settings.backoff_for("red").cap == 20.0 and settings.backoff_for("blue").cap == 900.0
    assert settings.backoff_for("yellow") == settings.backoff_for(None) == settings.backoff
    down, seen = threading.Event(), []
    down.set()
    with Receiver(switchable(down, Reply(503), seen, clock)) as hook, _registry() as registry:
        _point_webhook(sessions, hook.url())
        open_red(sessions, service)
        gaps = gaps_while_down(sessions, worker_for(sessions, registry.send, clock, settings), clock, passes=10)
    assert max(gaps) <= 20.0 and min(gaps[3:]) >= 10.0, gaps


@pytest.mark.parametrize(("asked", "waited"), [(600, 600.0), (3600, 900.0)])
def test_a_receivers_retry_after_is_honoured_up_to_its_own_ceiling(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int],
    asked: int, waited: float,
) -> None:
    down, seen = threading.Event(), []
    down.set()
    busy = Reply(429, {"error": "slow down"}, {"Retry-After": str(asked)})
    with Receiver(switchable(down, busy, seen, clock)) as hook, _registry() as registry:
        _point_webhook(sessions, hook.url())
        open_red(sessions, service)
        [gap] = gaps_while_down(sessions, worker_for(sessions, registry.send, clock, DeliverySettings()), clock, 1)
    assert gap == pytest.approx(waited)


def test_many_messages_for_one_receiver_stay_within_its_rate_limit_and_arrive_as_a_digest(
    sessions: sessionmaker[Session], service: TicketService, clock: ManualClock, fleet: dict[str, int]
) -> None:
    down, seen = threading.Event(), []
    down.set()
    limit = RateLimit(per_minute=1, burst=1)  # three red messages, each due every 30-60 s, against one a minute
    settings = DeliverySettings(backoff=BackoffPolicy(base=5, cap=60), limits={"webhook": limit, "email": None})
    with Receiver(switchable(down, Reply(503), seen, clock)) as hook, _registry() as registry:
        _point_webhook(sessions, hook.url())
        for metric in ("cpu_percent", "mem_percent", "latency_ms"):
            open_red(sessions, service, metric)
        worker = worker_for(sessions, registry.send, clock, settings)
        start = clock.now()
        while clock.now() - start < timedelta(minutes=10):
            worker.run_once()
            clock.advance(timedelta(seconds=1))
        attempts_down = list(seen)
        down.clear()
        while any(m.status == "pending" for m in webhook_rows(sessions)):
            worker.run_once()
            clock.advance(timedelta(seconds=1))
            assert clock.now() - start < timedelta(minutes=13), "not delivered within a few minutes of the return"
    for minute in range(10):
        window = [t for t in attempts_down if timedelta(minutes=minute) <= t - start < timedelta(minutes=minute + 1)]
        assert len(window) <= limit.burst + limit.per_minute, (minute, len(window))
    assert {m.status for m in webhook_rows(sessions)} <= {"delivered", "digested"}
    assert "digested" in {m.status for m in webhook_rows(sessions)}
