"""Noise control: the decision (pure), window evaluation (pure), and the ticket service on SQLite and
PostgreSQL: windows, failed parents, mass-event incidents, and the invariant that every active alert
has an open ticket or is explained by a window, a failed parent or an incident."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.noise_world import World
from tickets import registry, suppression, windows
from tickets.clock import ManualClock
from tickets.core import facts
from tickets.errors import InvalidInput
from tickets.models import AlertHold, OutboxStatus, Ticket
from tickets.notify.message import render
from tickets.policy import NoiseSettings
from tickets.service import TicketService
from tickets.suppression import Facts, Verdict, decide

# ---------------------------------------------------------------- the decision


@given(kind=st.sampled_from(["offline", "latency_ms", "packet_loss_percent", "cpu_percent"]),
       window=st.one_of(st.none(), st.integers(1, 5)), ancestor=st.one_of(st.none(), st.just("gw")),
       group=st.one_of(st.none(), st.just("site:north")), incident=st.one_of(st.none(), st.integers(1, 9)),
       recent=st.integers(0, 30), minimum=st.integers(0, 20))
def test_the_decision_follows_its_order(kind: str, window: int | None, ancestor: str | None, group: str | None,
                                        incident: int | None, recent: int, minimum: int) -> None:
    verdict = decide(Facts(kind, window, ancestor, group, incident, recent, minimum))
    if window is not None:
        assert verdict == Verdict.WINDOW
    elif ancestor is not None and kind in suppression.PARENT_KINDS:
        assert verdict == Verdict.PARENT
    elif group is None or minimum == 0:
        assert verdict == Verdict.OWN_TICKET
    elif incident is not None:
        assert verdict == Verdict.JOIN_INCIDENT
    else:
        assert verdict == (Verdict.NEW_INCIDENT if recent + 1 >= minimum else Verdict.OWN_TICKET)


def test_a_failed_parent_explains_only_connectivity_alerts() -> None:
    assert decide(Facts("cpu_percent", failed_ancestor="gw")) == Verdict.OWN_TICKET
    assert decide(Facts("offline", failed_ancestor="gw")) == Verdict.PARENT


# ---------------------------------------------------------------- windows


def _window(**kw: object) -> windows.Window:
    base: dict[str, object] = dict(id=1, name="w", starts_at=datetime(2026, 1, 3, 18, 0, tzinfo=UTC),
                                   ends_at=datetime(2026, 1, 3, 20, 0, tzinfo=UTC), timezone="UTC",
                                   recurrence=None, scope={"device_ids": ["a"]})
    base.update(kw)
    return windows.Window(**base)  # type: ignore[arg-type]


def test_a_one_time_window_runs_from_its_start_to_its_end() -> None:
    w = _window()
    assert windows.occurrence_at(w, datetime(2026, 1, 3, 17, 59, tzinfo=UTC)) is None
    assert windows.occurrence_at(w, datetime(2026, 1, 3, 18, 0, tzinfo=UTC)) is not None
    assert windows.occurrence_at(w, datetime(2026, 1, 3, 20, 0, tzinfo=UTC)) is None


def test_a_weekly_window_follows_the_wall_clock_of_its_time_zone() -> None:
    # Saturdays 02:00-04:00 in Shanghai (UTC+8) is Friday 18:00-20:00 UTC.
    fields = windows.checked({"name": "saturday firmware", "starts_at": "2026-01-03T02:00:00",
                              "ends_at": "2026-01-03T04:00:00", "timezone": "Asia/Shanghai",
                              "recurrence": "FREQ=WEEKLY;BYDAY=SA", "scope": {"sites": ["north"]}})
    w = windows.Window(id=1, **fields)
    assert w.starts_at == datetime(2026, 1, 2, 18, 0, tzinfo=UTC)
    friday = datetime(2026, 1, 16, 19, 0, tzinfo=UTC)  # Saturday 03:00 in Shanghai
    start, end = windows.occurrence_at(w, friday) or (None, None)
    assert (start, end) == (datetime(2026, 1, 16, 18, 0, tzinfo=UTC), datetime(2026, 1, 16, 20, 0, tzinfo=UTC))
    assert windows.occurrence_at(w, friday + timedelta(hours=1, seconds=1)) is None
    assert windows.occurrence_at(w, friday + timedelta(days=1)) is None


def test_a_daily_window_keeps_local_time_across_a_daylight_saving_change() -> None:
    w = _window(starts_at=datetime(2026, 3, 1, 2, 0, tzinfo=UTC), ends_at=datetime(2026, 3, 1, 3, 0, tzinfo=UTC),
                timezone="Europe/Berlin", recurrence="FREQ=DAILY")  # 03:00-04:00 Berlin (winter)
    assert windows.occurrence_at(w, datetime(2026, 4, 1, 1, 30, tzinfo=UTC)) is not None  # 03:30 summer time
    assert windows.occurrence_at(w, datetime(2026, 4, 1, 2, 30, tzinfo=UTC)) is None


def test_scope_matches_every_criterion_given() -> None:
    router = windows.DeviceFacts("r1", customer_id=3, site="north", device_class="router", tags=("fiber",))
    assert windows.in_scope({"sites": ["north"], "device_classes": ["router"]}, router)
    assert not windows.in_scope({"sites": ["north"], "device_classes": ["gateway"]}, router)
    assert windows.in_scope({"tags": ["copper", "fiber"]}, router)
    assert windows.in_scope({"customer_id": 3}, router)
    assert not windows.in_scope({"customer_id": 4, "device_ids": ["r1"]}, router)
    assert not windows.in_scope({}, router)


@pytest.mark.parametrize(("fields", "key"), [
    ({"scope": {}}, "scope"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"recurrence": "FREQ=SOMETIMES"}, "recurrence"),
    ({"ends_at": "2026-01-03T01:00:00"}, "ends_at"),
    ({"scope": {"racks": ["7"]}}, "scope.racks"),
])
def test_a_bad_window_is_refused_naming_the_field(fields: dict[str, object], key: str) -> None:
    base: dict[str, object] = {"name": "w", "starts_at": "2026-01-03T02:00:00", "ends_at": "2026-01-03T04:00:00",
                               "timezone": "UTC", "scope": {"device_ids": ["a"]}}
    with pytest.raises(InvalidInput) as caught:
        windows.checked({**base, **fields})
    assert caught.value.field == key


# ---------------------------------------------------------------- through the ticket service


@pytest.fixture
def world(sessions: sessionmaker[Session], clock: ManualClock) -> World:
    service = TicketService(clock=clock, public_url="http://desk.example.test",
                            noise=NoiseSettings(incident_min_devices=10, incident_window=timedelta(seconds=60)))
    return World(sessions, clock, service)


def _add_window(world: World, starts: datetime, ends: datetime, scope: dict[str, object], **more: object) -> int:
    with world.sessions.begin() as s:
        fields = {"name": "maintenance", "starts_at": starts, "ends_at": ends, "timezone": "UTC", "scope": scope}
        row = windows.create(s, {**fields, **more}, actor="test", at=world.clock.now())
        return row.id


def test_a_window_silences_a_device_and_its_ticket_opens_when_it_ends(world: World) -> None:
    world.add("rt-1")
    now = world.clock.now()
    _add_window(world, now - timedelta(minutes=1), now + timedelta(minutes=30), {"device_ids": ["rt-1"]})
    world.red("rt-1")
    assert world.open_tickets() == []
    assert world.outbox_count() == 0  # nobody told
    assert world.held() == {"rt-1/latency_ms": "window"}
    assert world.unexplained() == []
    world.advance(10 * 60)
    world.sweep()
    assert world.open_tickets() == []  # still inside
    world.advance(21 * 60)
    world.sweep()
    assert world.open_keys() == {"rt-1/latency_ms"}
    assert world.held() == {}
    assert world.customer_messages("ticket_opened")  # a red ticket: the customer is told now


def test_an_alert_that_cleared_inside_the_window_opens_nothing(world: World) -> None:
    world.add("rt-1")
    now = world.clock.now()
    _add_window(world, now, now + timedelta(minutes=30), {"device_ids": ["rt-1"]})
    world.red("rt-1")
    world.offline("rt-1")
    world.good("rt-1")
    world.online("rt-1")
    assert world.held() == {}
    world.advance(31 * 60)
    world.sweep()
    assert world.open_tickets() == []


def test_a_device_offline_through_a_weekly_window_gets_its_ticket_when_it_ends(world: World) -> None:
    world.add("gw", tags=["firmware-ring-1"])
    now = world.clock.now()  # Monday 09:00 UTC: the window runs Mondays 08:00-10:00 UTC, 16:00-18:00 Shanghai
    _add_window(world, now - timedelta(days=7, hours=1), now - timedelta(days=7) + timedelta(hours=1),
                {"tags": ["firmware-ring-1"]}, recurrence="FREQ=WEEKLY;BYDAY=MO", timezone="Asia/Shanghai")
    world.offline("gw")
    assert world.held() == {"gw/offline": "window"} and world.open_tickets() == []
    world.advance(3600 - 1)
    world.sweep()
    assert world.open_tickets() == []
    world.advance(1)
    world.sweep()
    assert world.open_keys() == {"gw/offline"}


def test_a_gateway_offline_with_twenty_routers_behind_it_is_one_ticket(world: World) -> None:
    world.add("gw")
    for i in range(20):
        world.add(f"rt-{i}", parent="gw")
    world.offline("gw")
    for i in range(20):
        world.offline(f"rt-{i}")
        world.red(f"rt-{i}")  # latency red too: also explained by the parent
    assert world.open_keys() == {"gw/offline"}
    gw_ticket = world.open_tickets()[0]
    with world.sessions() as s:
        listed = suppression.related(s, gw_ticket.id)
        assert {h.device_id for h in listed} == {f"rt-{i}" for i in range(20)}
        ticket = s.get(Ticket, gw_ticket.id)
        assert ticket is not None
        told = facts(world.service.ctx, s, ticket)
        assert told["affected_devices"] == 40  # offline and latency of each router
    assert world.unexplained() == []
    # The gateway comes back; three routers are still offline: they get their own tickets at once.
    for i in range(3, 20):
        world.online(f"rt-{i}")
        world.good(f"rt-{i}")
    world.online("gw")
    assert world.open_keys() == {"gw/offline", "rt-0/offline", "rt-1/offline", "rt-2/offline",
                                 "rt-0/latency_ms", "rt-1/latency_ms", "rt-2/latency_ms"}
    assert world.held() == {}


def test_children_tickets_opened_just_before_their_parent_are_folded_into_its_ticket(world: World) -> None:
    world.add("gw")
    world.add("rt-1", parent="gw")
    world.offline("rt-1")  # the router's silence was noticed first
    world.advance(5)
    world.offline("gw")
    assert world.open_keys() == {"gw/offline"}
    assert world.held() == {"rt-1/offline": "parent"}


def test_a_chain_router_gateway_uplink_lists_everything_on_the_uplinks_ticket(world: World) -> None:
    world.add("up")
    world.add("gw", parent="up")
    world.add("rt", parent="gw")
    world.offline("up")
    world.offline("gw")
    world.offline("rt")
    assert world.open_keys() == {"up/offline"}
    with world.sessions() as s:
        assert {h.device_id for h in s.scalars(select(AlertHold).where(AlertHold.active_key.is_not(None)))} == {
            "gw", "rt"}
        assert all(h.parent_id == "up" for h in s.scalars(select(AlertHold)))
    world.online("up")  # the gateway stays down: it gets its ticket, the router is now explained by it
    assert world.open_keys() == {"up/offline", "gw/offline"}
    assert world.held() == {"rt/offline": "parent"}
    assert world.unexplained() == []


def test_a_loop_in_parents_is_refused(world: World) -> None:
    world.add("a")
    world.add("b", parent="a")
    with world.sessions.begin() as s, pytest.raises(InvalidInput, match="loop"):
        registry.update(s, "a", {"parent_id": "b"}, actor="test", at=world.clock.now())


def test_a_mass_event_inside_one_collector_batch_is_one_incident(world: World, caplog: pytest.LogCaptureFixture) -> None:
    """The collector hands a whole batch over at once: tickets opened earlier in the batch count, and
    the batch goes through as one (not rolled back and replayed change by change)."""
    devices = [f"cpe-{i:02}" for i in range(30)]
    for device in devices:
        world.add(device, site="west")
    with caplog.at_level(logging.INFO, logger="tickets"):
        world.red_in_one_batch(devices)
    assert "rolled back" not in caplog.text
    tickets = world.open_tickets()
    assert [t.kind for t in tickets] == ["incident"]
    with world.sessions() as s:
        assert len(suppression.related(s, tickets[0].id)) == 30
    assert world.unexplained() == []


def test_fifty_devices_of_one_site_are_one_incident_and_one_customer_message(world: World) -> None:
    for i in range(50):
        world.add(f"rt-{i:02}", site="north")
    for i in range(50):
        world.red(f"rt-{i:02}")
        world.advance(0.5)
    tickets = world.open_tickets()
    assert [t.kind for t in tickets] == ["incident"]
    incident = tickets[0]
    with world.sessions() as s:
        assert len(suppression.related(s, incident.id)) == 50
    opened = [m for m in world.customer_messages() if m.status == OutboxStatus.PENDING.value]
    assert [m.event for m in opened] == ["ticket_opened"]
    assert opened[0].ticket_id == incident.id
    assert "10 devices of site north" in opened[0].payload["subject"]
    assert world.unexplained() == []
    # Resolved while 5 devices are still red: those get their own tickets at once, no new incident.
    for i in range(45):
        world.good(f"rt-{i:02}")
    with world.sessions.begin() as s:
        world.service.start(s, incident.id, "wang")
        world.service.resolve(s, incident.id, "wang", "upstream fixed")
    world.sweep()
    assert world.open_keys() == {f"rt-{i:02}/latency_ms" for i in range(45, 50)}
    assert world.unexplained() == []


def test_with_a_customer_wait_the_incident_is_the_customers_only_message(
        sessions: sessionmaker[Session], clock: ManualClock) -> None:
    world = World(sessions, clock, TicketService(clock=clock, noise=NoiseSettings(customer_wait=timedelta(seconds=5))))
    for i in range(12):
        world.add(f"rt-{i:02}", site="north")
    for i in range(12):
        world.red(f"rt-{i:02}")
    messages = world.customer_messages()
    pending = [m for m in messages if m.status == OutboxStatus.PENDING.value]
    assert [(m.event, m.ticket_id) for m in pending] == [("ticket_opened", world.open_tickets()[0].id)]
    withdrawn = [m for m in messages if m.status == OutboxStatus.DIGESTED.value and m.last_error
                 and m.last_error.startswith("withdrawn")]
    assert len(withdrawn) == 9  # the own tickets of the first nine, folded into the incident


def test_one_site_shared_by_two_customers_makes_no_incident_of_both(world: World) -> None:
    other = world.add_customer("Beta Water")
    for i in range(12):
        world.add(f"rt-{i:02}", site="north", customer=other if i % 2 else None)
    for i in range(12):
        world.red(f"rt-{i:02}")
    assert all(t.kind == "on_site" for t in world.open_tickets())  # 6 of each: under 10 per customer


def test_devices_spread_over_time_open_their_own_tickets(world: World) -> None:
    for i in range(12):
        world.add(f"rt-{i:02}", site="north")
    for i in range(12):
        world.red(f"rt-{i:02}")
        world.advance(10)  # 6 per minute: never 10 within 60 s
    assert len(world.open_keys()) == 12
    assert all(t.kind == "on_site" for t in world.open_tickets())


def test_the_invariant_holds_on_a_random_walk(world: World) -> None:
    """No active alert outside a window and without a failed parent or incident is left without an
    open ticket: checked after every step of a seeded random walk, and every hold's reason still
    holds after each sweep."""
    rng = random.Random(15)
    devices = ["gw", *[f"rt-{i}" for i in range(8)]]
    world.add("gw", site="north")
    for d in devices[1:]:
        world.add(d, parent="gw" if rng.random() < 0.7 else None, site="north")
    window_id: int | None = None
    for step in range(160):
        action = rng.choice(["red", "good", "offline", "online", "window", "unwindow", "advance", "sweep", "resolve"])
        device = rng.choice(devices)
        if action == "red":
            world.red(device)
        elif action == "good":
            world.good(device)
        elif action == "offline":
            world.offline(device)
        elif action == "online":
            world.online(device)
        elif action == "window" and window_id is None:
            now = world.clock.now()
            window_id = _add_window(world, now, now + timedelta(seconds=rng.choice([30, 120, 600])),
                                    {"device_ids": rng.sample(devices, 3)})
        elif action == "unwindow" and window_id is not None:
            with world.sessions.begin() as s:
                row = s.get(windows.MaintenanceWindow, window_id)
                if row is not None:
                    windows.delete(s, row, actor="test", at=world.clock.now())
            window_id = None
        elif action == "advance":
            world.advance(rng.choice([1, 20, 90, 700]))
        elif action == "resolve":
            incidents = [t for t in world.open_tickets() if t.kind == "incident"]
            if incidents:
                with world.sessions.begin() as s:
                    if incidents[0].status == "received":
                        world.service.start(s, incidents[0].id, "wang")
                    world.service.resolve(s, incidents[0].id, "wang", "done")
        else:
            world.sweep()
            with world.sessions() as s:
                now = world.clock.now()
                all_windows = windows.all_windows(s)
                for row in s.scalars(select(AlertHold).where(AlertHold.active_key.is_not(None))):
                    assert suppression._valid(world.service.ctx, s, row, now, all_windows), (step, row.active_key)
        assert world.unexplained() == [], (step, action, device)


def test_a_parents_messages_say_how_many_devices_are_affected() -> None:
    told = render("sla_warning", {"ticket_id": 7, "device_id": "gw", "clock": "first_response",
                                  "due_at": "2026-01-05T10:00:00+00:00", "affected_devices": 20})
    assert "Devices affected: 20" in told.text
    incident = render("ticket_opened", {"ticket_id": 8, "kind": "incident", "scope": "site north", "level": "red",
                                        "opened_at": "2026-01-05T09:00:00+00:00", "affected_devices": 12,
                                        "devices": ["rt-01", "rt-02"]})
    assert incident.subject.endswith("INCIDENT: 12 devices of site north affected, ticket #8")
    assert "Devices: rt-01, rt-02 …" in incident.text
