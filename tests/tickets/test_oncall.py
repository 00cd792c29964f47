"""On-call rotas (pure): weekly turns at a local hand-over time, daylight saving, overrides,
schedules, and what `parse` refuses."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickets.oncall import Override, Rota, RotaError, parse

SHANGHAI = "Asia/Shanghai"
MONDAY_9_SHANGHAI = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)  # Monday 09:00 +08:00


def rota(**kw: object) -> Rota:
    base: dict[str, object] = {"member_ids": (1, 2, 3), "starts_at": MONDAY_9_SHANGHAI, "timezone": SHANGHAI}
    return Rota(**{**base, **kw})  # type: ignore[arg-type]


def test_members_take_weekly_turns_from_the_first_hand_over() -> None:
    r = rota()
    assert r.on_call(MONDAY_9_SHANGHAI - timedelta(seconds=1)) is None
    assert r.rotation_member(MONDAY_9_SHANGHAI) == 1
    assert r.rotation_member(MONDAY_9_SHANGHAI + timedelta(days=6, hours=23)) == 1
    assert r.rotation_member(MONDAY_9_SHANGHAI + timedelta(days=7)) == 2
    assert r.rotation_member(MONDAY_9_SHANGHAI + timedelta(days=14)) == 3
    assert r.rotation_member(MONDAY_9_SHANGHAI + timedelta(days=21)) == 1
    shift = r.on_call(MONDAY_9_SHANGHAI + timedelta(days=9))
    assert shift is not None and (shift.member_id, shift.starts_at, shift.ends_at) == (
        2, MONDAY_9_SHANGHAI + timedelta(days=7), MONDAY_9_SHANGHAI + timedelta(days=14))


def test_the_hand_over_keeps_its_local_time_across_daylight_saving() -> None:
    # Berlin: Monday 09:00 CET (08:00 UTC) in March, CEST (07:00 UTC) after the last Sunday of March.
    start = datetime(2026, 3, 16, 8, 0, tzinfo=UTC)
    r = Rota((1, 2), start, "Europe/Berlin")
    assert r.handover(1) == datetime(2026, 3, 23, 8, 0, tzinfo=UTC)
    assert r.handover(2) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert r.rotation_member(datetime(2026, 3, 30, 7, 30, tzinfo=UTC)) == 1  # third turn: back to the first
    assert r.rotation_member(datetime(2026, 3, 30, 6, 59, tzinfo=UTC)) == 2


def test_an_override_wins_for_its_window_and_shortens_the_turn_around_it() -> None:
    holiday = Override(3, MONDAY_9_SHANGHAI + timedelta(days=2), MONDAY_9_SHANGHAI + timedelta(days=4), "swap")
    r = rota(overrides=(holiday,))
    before = r.on_call(MONDAY_9_SHANGHAI + timedelta(days=1))
    assert before is not None and before.member_id == 1 and before.ends_at == holiday.starts_at
    during = r.on_call(MONDAY_9_SHANGHAI + timedelta(days=3))
    assert during is not None and (during.member_id, during.override) == (3, True)
    after = r.on_call(MONDAY_9_SHANGHAI + timedelta(days=5))
    assert after is not None and after.member_id == 1
    later = Override(2, holiday.starts_at, holiday.ends_at)
    assert rota(overrides=(holiday, later)).on_call(MONDAY_9_SHANGHAI + timedelta(days=3)).member_id == 2  # type: ignore[union-attr]


def test_a_schedule_lists_consecutive_shifts_with_overrides() -> None:
    holiday = Override(3, MONDAY_9_SHANGHAI + timedelta(days=2), MONDAY_9_SHANGHAI + timedelta(days=4))
    shifts = rota(overrides=(holiday,)).schedule(MONDAY_9_SHANGHAI - timedelta(days=1), 5)
    assert [(s.member_id, s.override) for s in shifts] == [(1, False), (3, True), (1, False), (2, False), (3, False)]
    for a, b in itertools.pairwise(shifts):
        assert a.ends_at == b.starts_at


@given(st.integers(min_value=0, max_value=3 * 365 * 24), st.sampled_from(["UTC", SHANGHAI, "Europe/Berlin",
                                                                          "America/New_York"]))
def test_exactly_one_member_is_on_call_at_any_hour_after_the_start(hours: int, zone: str) -> None:
    r = Rota((4, 5, 6), MONDAY_9_SHANGHAI, zone)
    at = MONDAY_9_SHANGHAI + timedelta(hours=hours)
    shift = r.on_call(at)
    assert shift is not None and shift.starts_at <= at < shift.ends_at
    assert shift.ends_at - shift.starts_at in (timedelta(days=7), timedelta(days=7, hours=1),
                                               timedelta(days=7, hours=-1))


def test_parse_round_trips_and_names_what_is_wrong() -> None:
    raw = {"member_ids": [1, 2], "starts_at": "2026-01-05T09:00:00+08:00", "timezone": SHANGHAI,
           "overrides": [{"member_id": 2, "starts_at": "2026-01-06T00:00:00Z", "ends_at": "2026-01-07T00:00:00Z",
                          "note": "王芳 covers"}]}
    parsed = parse(raw, [1, 2])
    assert parse(parsed.to_json()) == parsed
    assert parsed.starts_at == MONDAY_9_SHANGHAI
    cases = [
        ({**raw, "starts_at": "2026-01-05T09:00:00"}, "rota.starts_at"),
        ({**raw, "timezone": "Mars/Olympus"}, "rota.timezone"),
        ({**raw, "period_days": 0}, "rota.period_days"),
        ({**raw, "member_ids": [1, 1]}, "rota.member_ids"),
        ({**raw, "member_ids": ["a"]}, "rota.member_ids[0]"),
        ({**raw, "colour": "red"}, "rota.colour"),
        ({**raw, "overrides": [{"member_id": 1, "starts_at": "2026-01-07T00:00:00Z",
                                "ends_at": "2026-01-06T00:00:00Z"}]}, "rota.overrides[0].ends_at"),
    ]
    for bad, field in cases:
        with pytest.raises(RotaError) as caught:
            parse(bad)
        assert caught.value.field == field, bad
    with pytest.raises(RotaError, match="staff 2 is not a member"):
        parse(raw, [1])
