"""Back-off, rate limits, digests and the retry loop: pure, with an injected clock."""

from __future__ import annotations

from collections import Counter, deque

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.notify.support import NOW, Receiver, Reply, Request, fixed_clock, red_notification
from tickets.notify import (
    BackoffPolicy,
    DeliveryResult,
    Digester,
    DingTalkChannel,
    Notification,
    RateLimit,
    RateLimiter,
    backoff,
    deliver_with_retries,
    members,
    retry_delay,
)
from tickets.notify.policy import DEFAULT_LIMITS


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- back-off


def test_backoff_doubles_up_to_the_cap_with_full_jitter() -> None:
    policy = BackoffPolicy(base=5, factor=2, cap=60)
    assert [backoff(a, policy, lambda: 1.0) for a in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert backoff(3, policy, lambda: 0.5) == 10
    assert backoff(3, policy, lambda: 0.0) == 0
    assert backoff(10_000, policy, lambda: 1.0) == 60  # no overflow


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="attempt: counts from 1"):
        backoff(0)
    with pytest.raises(ValueError, match="backoff: need"):
        BackoffPolicy(base=10, cap=5)


def test_retry_after_wins_when_longer_but_never_beyond_the_cap() -> None:
    policy = BackoffPolicy(base=1, cap=100)
    asked = DeliveryResult.retry("429", retry_after=30.0)
    assert retry_delay(1, asked, policy, lambda: 1.0) == 30
    assert retry_delay(1, DeliveryResult.retry("429", retry_after=3600), policy, lambda: 1.0) == 100
    assert retry_delay(1, DeliveryResult.retry("503"), policy, lambda: 1.0) == 1


# ---------------------------------------------------------------- rate limiter


def test_token_bucket_burst_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(clock, {"dingtalk": RateLimit(per_minute=10, burst=10), "inbox": None})
    assert [limiter.try_acquire("dingtalk", "robot-a") for _ in range(11)] == [True] * 10 + [False]
    assert limiter.try_acquire("dingtalk", "robot-b")  # each address has its own bucket
    assert limiter.available_at("dingtalk", "robot-a") == pytest.approx(6.0)
    clock.now = 5.9
    assert not limiter.try_acquire("dingtalk", "robot-a")
    clock.now = 6.0
    assert limiter.try_acquire("dingtalk", "robot-a")
    assert all(limiter.try_acquire("inbox", "x") for _ in range(1000))
    assert limiter.available_at("inbox", "x") == 6.0
    assert limiter.available_at("dingtalk", "robot-c") == 6.0


def test_idle_buckets_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(clock, {"webhook": RateLimit(per_minute=60, burst=2)})
    limiter.max_tracked = 100
    for i in range(100):
        limiter.try_acquire("webhook", f"http://h/{i}")
    clock.now = 10.0  # all refilled
    limiter.try_acquire("webhook", "http://h/new")
    assert len(limiter._buckets) == 1


def test_rate_limit_checks_its_values() -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit(per_minute=0, burst=1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), min_size=1, max_size=200))
def test_robot_defaults_never_exceed_20_a_minute(arrivals: list[float]) -> None:
    """Whatever the arrival pattern, a robot gets at most 20 messages in any 60 s window, and every
    notification is delivered exactly once (alone or inside a digest)."""
    clock = Clock()
    digester = Digester(RateLimiter(clock, DEFAULT_LIMITS))
    sent: list[tuple[float, Notification]] = []
    items = [red_notification("dingtalk", "http://robot/a", key=f"k-{i}") for i in range(len(arrivals))]
    for at, item in sorted(zip(arrivals, items, strict=True), key=lambda pair: pair[0]):
        clock.now = at
        sent += [(at, n) for n in digester.due() + digester.offer(item)]
    while (due_at := digester.next_due_at()) is not None:
        clock.now = due_at
        sent += [(due_at, n) for n in digester.due()]
    times = [at for at, _ in sent]
    window: deque[float] = deque()
    for at in times:
        window.append(at)
        while window[0] <= at - 60:
            window.popleft()
        assert len(window) <= 20
    delivered = Counter(key for _, n in sent for key in members(n))
    assert delivered == {item.idempotency_key: 1 for item in items}


# ---------------------------------------------------------------- digests


def test_digester_sends_then_holds_then_folds() -> None:
    clock = Clock()
    digester = Digester(RateLimiter(clock, {"wecom": RateLimit(per_minute=10, burst=2)}))
    items = [red_notification("wecom", "http://robot/a", key=f"k-{i}") for i in range(6)]
    assert digester.offer_all(items[:2]) == items[:2]
    assert digester.offer(items[2]) == []
    assert digester.offer(items[2]) == []  # offered again while waiting: kept once
    assert digester.offer_all(items[3:]) == []
    assert digester.pending() == 4
    assert digester.due() == []
    assert digester.next_due_at() == pytest.approx(6.0)
    clock.now = 6.0
    [digest] = digester.due()
    assert members(digest) == ["k-2", "k-3", "k-4", "k-5"]
    assert digester.pending() == 0 and digester.next_due_at() is None
    clock.now = 12.0
    lone = red_notification("wecom", "http://robot/a", key="k-6")
    assert digester.offer(lone) == [lone]


def test_a_single_waiting_notification_goes_out_as_itself() -> None:
    clock = Clock()
    digester = Digester(RateLimiter(clock, {"email": RateLimit(per_minute=60, burst=1)}))
    first, second = (red_notification("email", "a@b.example", key=k) for k in ("k-1", "k-2"))
    assert digester.offer(first) == [first]
    assert digester.offer(second) == []
    clock.now = 1.0
    assert digester.due() == [second]


def test_a_waiting_address_gets_the_new_one_in_its_digest() -> None:
    clock = Clock()
    digester = Digester(RateLimiter(clock, {"feishu": RateLimit(per_minute=60, burst=1)}))
    a, b, c = (red_notification("feishu", "http://bot", key=k) for k in ("a", "b", "c"))
    digester.offer_all([a, b])
    clock.now = 1.0
    [digest] = digester.offer(c)  # b waited; c joins it behind b
    assert members(digest) == ["b", "c"]


def test_digests_are_capped_in_size() -> None:
    clock = Clock()
    digester = Digester(RateLimiter(clock, {"dingtalk": RateLimit(per_minute=60, burst=1)}), max_items=3)
    items = [red_notification("dingtalk", "http://robot", key=f"k-{i}") for i in range(8)]
    digester.offer_all(items)
    clock.now = 1.0
    [first] = digester.due()
    clock.now = 2.0
    [second] = digester.due()
    clock.now = 3.0
    [third] = digester.due()
    assert [members(d) for d in (first, second, third)] == [["k-1", "k-2", "k-3"], ["k-4", "k-5", "k-6"], ["k-7"]]
    with pytest.raises(ValueError, match="max_items"):
        Digester(RateLimiter(clock), max_items=1)


def test_a_burst_to_a_real_robot_stays_under_its_limit(http: httpx.Client) -> None:
    """30 alerts at once to a DingTalk robot that answers 130101 past 20 messages a minute:
    10 go out alone, the other 20 in one digest six seconds later, and the robot never refuses."""
    accepted: list[dict[str, object]] = []

    def robot(request: Request) -> Reply:
        if len(accepted) >= 20:
            return Reply(200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
        accepted.append(request.json())
        return Reply(200, {"errcode": 0, "errmsg": "ok"})

    clock = Clock(NOW)
    digester = Digester(RateLimiter(clock, DEFAULT_LIMITS))
    with Receiver(robot) as receiver:
        channel = DingTalkChannel(http, clock=fixed_clock())
        items = [red_notification("dingtalk", receiver.url(), key=f"ticket-{i}.opened", ticket_id=i)
                 for i in range(30)]
        results = [channel.send(n) for n in digester.offer_all(items)]
        clock.now += 6.0
        results += [channel.send(n) for n in digester.due()]
    assert [r.ok for r in results] == [True] * 11
    assert len(accepted) == 11
    digest_text = str(accepted[-1]["markdown"])
    assert "[edgewatch] 20 notifications (digest)" in digest_text
    assert "on-site service ticket #29" in digest_text


# ---------------------------------------------------------------- the reference retry loop


class Scripted:
    kind = "webhook"

    def __init__(self, *results: DeliveryResult) -> None:
        self.results = list(results)
        self.sent = 0

    def send(self, n: Notification) -> DeliveryResult:
        self.sent += 1
        return self.results.pop(0)

    def close(self) -> None:
        pass


def test_retries_stop_at_a_permanent_failure() -> None:
    channel = Scripted(DeliveryResult.retry("503"), DeliveryResult.failed("404"), DeliveryResult.delivered())
    slept: list[float] = []
    report = deliver_with_retries(channel, red_notification("webhook", "http://x"), sleep=slept.append,
                                  rand=lambda: 1.0)
    assert report.result.detail == "404" and channel.sent == 2 and slept == [5.0]


def test_retries_stop_after_max_attempts() -> None:
    channel = Scripted(*[DeliveryResult.retry("503")] * 5)
    slept: list[float] = []
    report = deliver_with_retries(channel, red_notification("webhook", "http://x"), sleep=slept.append,
                                  max_attempts=3, rand=lambda: 0.5)
    assert report.result.retryable and len(report.attempts) == 3 and slept == [2.5, 5.0]
    with pytest.raises(ValueError, match="max_attempts"):
        deliver_with_retries(channel, red_notification("webhook", "http://x"), sleep=slept.append, max_attempts=0)
