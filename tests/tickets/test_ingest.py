"""The collector's rows beside tickets (device registry, rule and predictive snapshots, dead letters),
written by `tickets.ingest` through upserts built from the table definitions: the same outcome on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from tickets import ingest
from tickets.ingest import Rejected, SeenDevice
from tickets.models import DeadLetter, Device, PredictiveState, RuleState
from tickets.upsert import Upsert

T0 = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)


def test_a_device_heard_from_is_registered_online_with_its_latest_facts(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ingest.record_seen(session, [
            SeenDevice("gw-1", T0, "1.2.0", 10.0, "host-a", 7, 1764072000.5, {"cpu_percent": 37.5}, "gateway"),
            SeenDevice("gw-2", T0, latest_ts=None),
        ])
    with sessions() as session:
        gw1 = session.get(Device, "gw-1")
        assert gw1 is not None
        assert (gw1.state, gw1.first_seen_at, gw1.last_seen_at, gw1.offline_since) == ("online", T0, T0, None)
        assert (gw1.agent_version, gw1.interval_s, gw1.instance) == ("1.2.0", 10.0, "host-a")
        assert (gw1.latest_seq, gw1.latest_ts, gw1.latest, gw1.device_class) == \
            (7, 1764072000.5, {"cpu_percent": 37.5}, "gateway")
        gw2 = session.get(Device, "gw-2")
        assert gw2 is not None and gw2.state == "online" and gw2.latest is None


def test_seen_again_keeps_what_the_new_facts_do_not_say_and_the_registrys_class(
        sessions: sessionmaker[Session]) -> None:
    later = T0 + timedelta(seconds=30)
    with sessions.begin() as session:
        ingest.record_seen(session, [SeenDevice("gw-1", T0, "1.2.0", 10.0, "host-a", 7, 1764072000.5,
                                                {"cpu_percent": 37.5}, "gateway")])
    with sessions.begin() as session:
        row = session.get(Device, "gw-1")
        assert row is not None
        row.device_class = "router"  # set by people in the registry
        ingest.mark_offline(session, "gw-1", T0 + timedelta(seconds=10))
    with sessions.begin() as session:
        # A status message: no version, interval or sample of its own.
        ingest.record_seen(session, [SeenDevice("gw-1", later, device_class="gateway")])
    with sessions() as session:
        row = session.get(Device, "gw-1")
        assert row is not None
        assert (row.state, row.offline_since, row.first_seen_at, row.last_seen_at) == ("online", None, T0, later)
        assert (row.agent_version, row.interval_s, row.instance) == ("1.2.0", 10.0, "host-a")
        assert (row.latest_seq, row.latest_ts, row.latest) == (7, 1764072000.5, {"cpu_percent": 37.5})
        assert row.device_class == "router"
    with sessions.begin() as session:
        ingest.record_seen(session, [SeenDevice("gw-1", later, "1.3.0", None, None, 9, 1764072060.0,
                                                {"cpu_percent": 80.0})])
    with sessions() as session:
        row = session.get(Device, "gw-1")
        assert row is not None
        assert (row.agent_version, row.latest_seq, row.latest_ts, row.latest) == \
            ("1.3.0", 9, 1764072060.0, {"cpu_percent": 80.0})


def test_a_device_registered_before_it_was_heard_from_is_first_seen_then(sessions: sessionmaker[Session]) -> None:
    # Imported or added by hand: no first_seen_at until a sample comes; the first one sets it, later ones keep it.
    with sessions.begin() as session:
        session.add(Device(id="gw-9", state="offline", device_class="gateway"))
    later = T0 + timedelta(minutes=5)
    for at in (T0, later):
        with sessions.begin() as session:
            ingest.record_seen(session, [SeenDevice("gw-9", at, latest_ts=None)])
    with sessions() as session:
        row = session.get(Device, "gw-9")
        assert row is not None
        assert (row.state, row.first_seen_at, row.last_seen_at) == ("online", T0, later)


def test_offline_registers_an_unknown_device_and_online_brings_it_back(sessions: sessionmaker[Session]) -> None:
    since = T0 + timedelta(minutes=1)
    with sessions.begin() as session:
        ingest.mark_offline(session, "gw-9", since)
        ingest.mark_online(session, "never-seen")  # nothing to update, nothing registered
    with sessions() as session:
        row = session.get(Device, "gw-9")
        assert row is not None and (row.state, row.offline_since) == ("offline", since)
        assert session.get(Device, "never-seen") is None
    with sessions.begin() as session:
        ingest.mark_online(session, "gw-9")
    with sessions() as session:
        row = session.get(Device, "gw-9")
        assert row is not None and (row.state, row.offline_since) == ("online", None)


def test_snapshots_are_inserted_then_replaced(sessions: sessionmaker[Session]) -> None:
    later = T0 + timedelta(seconds=5)
    with sessions.begin() as session:
        ingest.store_rule_states(session, [("gw-1", {"seq": 1, "metrics": {}}), ("gw-2", {"seq": 4})], T0)
        ingest.store_predictive_states(session, [("gw-1", {"v": 1}, {"cpu_percent": {"eta_s": 60}})], T0)
    with sessions.begin() as session:
        ingest.store_rule_states(session, [("gw-1", {"seq": 2, "metrics": {"cpu_percent": [3, "orange", 0]}})],
                                 later)
        ingest.store_predictive_states(session, [("gw-1", {"v": 2}, {})], later)
    with sessions() as session:
        states = {r.device_id: (r.state, r.updated_at) for r in session.scalars(sa.select(RuleState))}
        assert states == {"gw-1": ({"seq": 2, "metrics": {"cpu_percent": [3, "orange", 0]}}, later),
                          "gw-2": ({"seq": 4}, T0)}
        predicted = session.get(PredictiveState, "gw-1")
        assert predicted is not None and (predicted.state, predicted.forecasts, predicted.updated_at) == \
            ({"v": 2}, {}, later)


def test_dead_letters_keep_a_nul_as_its_escape_and_are_pruned_oldest_first(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ingest.insert_dead_letters(session, [
            Rejected(T0 + timedelta(days=i), "edgewatch/v1/gw-1/telemetry", "gw-1", "invalid_json", "a\x00b",
                     "{\x00", 2) for i in range(3)
        ])
    with sessions.begin() as session:
        assert ingest.prune_dead_letters(session, T0 + timedelta(days=1, hours=1), batch=10) == 2
    with sessions() as session:
        [left] = session.scalars(sa.select(DeadLetter)).all()
        assert (left.received_at, left.detail, left.payload) == (T0 + timedelta(days=2), "a\\x00b", "{\\x00")


def test_an_upsert_must_name_every_column_with_a_default() -> None:
    # Device.state has a Python-side default that a statement sent to the driver would not apply.
    with pytest.raises(ValueError, match="give state"):
        Upsert(ingest.DEVICES, ("id", "offline_since"))
    with pytest.raises(ValueError, match="no column 'nope'"):
        Upsert(ingest.DEVICES, ("id", "nope"))
