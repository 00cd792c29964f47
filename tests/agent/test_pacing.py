"""Backoff with jitter, the publish rate limit and the sampling grid, driven by explicit times."""

from __future__ import annotations

import random
import statistics

from agent.pacing import Backoff, Schedule, TokenBucket


def test_backoff_grows_to_its_cap_with_full_jitter() -> None:
    backoff = Backoff(1.0, 60.0, rng=random.Random(1))
    windows = []
    for _ in range(10):
        windows.append(backoff.window())
        assert 0.0 <= backoff.next_delay() <= windows[-1]
    assert windows == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]


def test_jitter_spreads_agents_that_failed_together() -> None:
    delays = [Backoff(1.0, 60.0, rng=random.Random(seed)).next_delay() for seed in range(1000)]
    # Not in lockstep: spread over the whole first window.
    assert min(delays) < 0.05 and max(delays) > 0.95
    assert 0.4 < statistics.mean(delays) < 0.6
    assert len({round(d, 3) for d in delays}) > 600


def test_backoff_resets_only_after_a_stable_connection() -> None:
    backoff = Backoff(1.0, 60.0, stable_after=30.0, rng=random.Random(2))
    for _ in range(4):
        backoff.next_delay()
    backoff.connection_ended(lasted=5.0)  # accepted, then dropped at once: keep backing off
    assert backoff.window() == 32
    backoff.connection_ended(lasted=45.0)
    assert backoff.failures == 1 and backoff.window() == 2


def test_backoff_never_overflows() -> None:
    backoff = Backoff(1.0, 300.0)
    backoff.failures = 10_000
    assert backoff.window() == 300.0


def test_token_bucket_limits_the_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=5.0, now=0.0)
    assert sum(bucket.take(0.0) for _ in range(20)) == 5  # the burst
    assert bucket.wait_time(0.0) == 0.1
    assert not bucket.take(0.05)
    assert bucket.take(0.1)
    # Over 10 s: the burst plus 10 per second, never more.
    taken = sum(bucket.take(0.1 + i * 0.001) for i in range(10_000))
    assert 99 <= taken <= 101
    assert bucket.wait_time(100.0) == 0.0


def test_schedule_keeps_the_grid_and_skips_missed_slots() -> None:
    schedule = Schedule(10.0, start=1.0)
    schedule.advance(1.2)
    assert schedule.due == 11.0
    schedule.advance(47.0)  # three slots missed while busy: not made up in a burst
    assert schedule.due == 51.0
