"""The Notification model and the English texts of each ticket event (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.notify.support import RED_FACTS, red_notification
from tickets.notify import EVENTS, Notification, NotificationError, make_digest, render, render_digest
from tickets.notify.message import human_time, parse_time, quantity


def n(**kw: Any) -> Notification:
    base: dict[str, Any] = {"idempotency_key": "k-1", "channel": "email", "address": "a@b.example",
                            "subject": "s", "text": "t"}
    return Notification(**{**base, **kw})


def test_red_ticket_opened_text_is_exact() -> None:
    facts = {**RED_FACTS, "clocks": [
        {"name": "first_response", "due_at": "2025-11-25T12:05:00Z", "stopped_at": None, "breached": False},
        {"name": "on_site", "due_at": "2025-11-25T13:00:00Z", "stopped_at": None, "breached": False},
        {"name": "acknowledged", "due_at": "2025-11-25T12:05:00Z", "stopped_at": "2025-11-25T12:01:00Z"},
    ]}
    rendered = render("ticket_opened", facts)
    assert rendered.subject == "[edgewatch] RED: gw-0001 cpu_percent 95%, on-site service ticket #42"
    assert rendered.text == (
        "An on-site service ticket was opened for device gw-0001.\n"
        "CPU usage (cpu_percent) is 95%; threshold 60%.\n"
        "Red alert: the value is 58 % over the threshold.\n"
        "\n"
        "Ticket #42 (on-site service, level red) opened at 2025-11-25 12:00:00 UTC.\n"
        "\n"
        "Customer: Acme Water\n"
        "Due: first response by 2025-11-25 12:05:00 UTC\n"
        "Due: on site by 2025-11-25 13:00:00 UTC\n"
        "Ticket: http://127.0.0.1:8080/tickets/42\n"
    )
    assert rendered.data["event"] == "ticket_opened"
    assert rendered.data["ticket_id"] == 42 and rendered.data["links"] == RED_FACTS["links"]


def test_orange_pre_maintenance() -> None:
    r = render("ticket_opened", {**RED_FACTS, "severity": "orange", "kind": "pre_maintenance", "value": 250,
                                 "metric": "latency_ms", "threshold": 200, "level": "yellow"})
    assert r.subject == "[edgewatch] ORANGE: gw-0001 latency_ms 250 ms, pre-maintenance ticket #42"
    assert "Network latency (latency_ms) is 250 ms; threshold 200 ms." in r.text
    assert "Orange alert: the threshold was exceeded on consecutive readings." in r.text


def test_offline_and_predictive() -> None:
    offline = render("ticket_opened", {"ticket_id": 7, "device_id": "rt-9", "kind": "offline",
                                       "opened_at": 1764072000, "last_seen": "2025-11-25T11:55:00+00:00"})
    assert offline.subject == "[edgewatch] OFFLINE: device rt-9 stopped reporting, ticket #7"
    assert "Last seen: 2025-11-25 11:55:00 UTC." in offline.text
    predictive = render("ticket_opened", {"ticket_id": 8, "device_id": "rt-9", "kind": "predictive",
                                          "metric": "mem_percent", "threshold": 60,
                                          "opened_at": "2025-11-25T12:00:00Z",
                                          "predicted_at": "2025-11-26T03:00:00Z"})
    assert predictive.subject.startswith("[edgewatch] PREDICTED: rt-9 mem_percent")
    assert "Expected to cross it at: 2025-11-26 03:00:00 UTC." in predictive.text


@pytest.mark.parametrize(
    ("event", "extra", "subject"),
    [
        ("ticket_escalated", {"previous_severity": "orange"},
         "[edgewatch] ESCALATED to RED: gw-0001 cpu_percent 95%, ticket #42"),
        ("alert_cleared", {"value": 41.5, "cleared_at": "2025-11-25T13:00:00Z"},
         "[edgewatch] RECOVERED: gw-0001 cpu_percent is back to normal, ticket #42"),
        ("sla_warning", {"clock": "resolution", "due_at": "2025-11-25T16:00:00Z", "assignee": "li.wei"},
         "[edgewatch] SLA WARNING: resolution of ticket #42 (gw-0001) due 2025-11-25 16:00:00 UTC"),
        ("sla_breached", {"clock": "first_response", "due_at": "2025-11-25T12:05:00Z"},
         "[edgewatch] SLA BREACHED: first response of ticket #42 (gw-0001)"),
        ("ticket_dispatched", {"group": "senior", "assignee": "li.wei", "note": "bring a spare PSU"},
         "[edgewatch] DISPATCHED (RED): ticket #42 for gw-0001"),
        ("satisfaction_request", {"links": {"rating": "http://127.0.0.1:8080/rate/xyz"}},
         "[edgewatch] How did we do? Ticket #42 (gw-0001) is closed"),
    ],
)
def test_every_event_kind(event: str, extra: dict[str, Any], subject: str) -> None:
    r = render(event, {**RED_FACTS, **extra})
    assert r.subject == subject
    assert r.text.endswith("\n") and r.data["event"] == event


def test_another_monitors_alert_is_told_in_its_own_words() -> None:
    facts = {k: v for k, v in RED_FACTS.items() if k not in ("value", "threshold")}
    facts |= {"metric": "host_high_cpu_load", "source": "alertmanager", "alert": "HostHighCpuLoad",
              "summary": "CPU load over 95 % for 5 minutes"}
    opened = render("ticket_opened", facts)
    assert opened.subject == ("[edgewatch] RED: gw-0001 host_high_cpu_load (Alertmanager alert HostHighCpuLoad), "
                              "on-site service ticket #42")
    assert opened.text.startswith(
        "An on-site service ticket was opened for device gw-0001.\n"
        "Alertmanager alert HostHighCpuLoad is firing on host_high_cpu_load (host_high_cpu_load): "
        "CPU load over 95 % for 5 minutes\n\nTicket #42")
    zabbix = {**facts, "source": "zabbix", "alert": "High CPU", "summary": None, "metric": "cpu_percent"}
    escalated = render("ticket_escalated", zabbix)
    assert escalated.subject == "[edgewatch] ESCALATED to RED: gw-0001 cpu_percent (Zabbix alert High CPU), ticket #42"
    assert "Zabbix alert High CPU is firing on CPU usage (cpu_percent)." in escalated.text
    recurred = render("alert_recurred", zabbix)
    assert recurred.subject == ("[edgewatch] RECURRED: gw-0001 cpu_percent (Zabbix alert High CPU) is firing again, "
                                "ticket #42")
    dispatched = render("ticket_dispatched", {**zabbix, "group": "senior"})
    assert "Zabbix alert High CPU is firing" in dispatched.text


def test_recovery_and_survey_texts() -> None:
    cleared = render("alert_cleared", {**RED_FACTS, "value": 41.5, "clocks": [{"name": "x", "due_at": 0}]})
    assert "The red alert on CPU usage (cpu_percent) of device gw-0001 has cleared." in cleared.text
    assert "Latest value: 41.5%; threshold 60%." in cleared.text
    assert "Due:" not in cleared.text  # the SLA clocks are for the people doing the work
    survey = render("satisfaction_request", {**RED_FACTS, "links": {"rating": "http://x/rate/1"}})
    assert "Please rate our service from 1 (poor) to 5 (excellent):\nhttp://x/rate/1" in survey.text
    dispatched = render("ticket_dispatched", {**RED_FACTS, "group": "mid"})
    assert "was dispatched to the mid-level engineers." in dispatched.text


@pytest.mark.parametrize(
    ("event", "drop", "message"),
    [
        ("ticket_opened", "device_id", "ticket_opened: the fact 'device_id' is missing"),
        ("ticket_opened", "value", "ticket_opened: the fact 'value' is missing"),
        ("ticket_escalated", "ticket_id", "ticket_escalated: the fact 'ticket_id' is missing"),
        ("satisfaction_request", "links", "satisfaction_request: the fact 'links.rating' is missing"),
        ("sla_warning", "clock", "sla_warning: the fact 'clock' is missing"),
        ("ticket_dispatched", "group", "ticket_dispatched: the fact 'group' is missing"),
    ],
)
def test_a_missing_fact_is_named(event: str, drop: str, message: str) -> None:
    facts = {**RED_FACTS, "clock": "resolution", "due_at": "2025-11-25T16:00:00Z", "group": "senior"}
    del facts[drop]
    with pytest.raises(NotificationError, match=message):
        render(event, facts)


def test_unknown_event_and_bad_times() -> None:
    with pytest.raises(NotificationError, match="event: must be one of"):
        render("ticket_exploded", RED_FACTS)
    with pytest.raises(NotificationError, match="ticket_opened: opened_at: not an ISO 8601 time: 'yesterday'"):
        render("ticket_opened", {**RED_FACTS, "opened_at": "yesterday"})
    with pytest.raises(NotificationError, match="expected a time"):
        parse_time([2025], "x")


def test_times_and_quantities() -> None:
    cst = timezone(timedelta(hours=8))
    assert human_time(datetime(2025, 11, 25, 20, 0, tzinfo=cst), "t") == "2025-11-25 12:00:00 UTC"
    assert human_time("2025-11-25T12:00:00", "t") == "2025-11-25 12:00:00 UTC"  # naive means UTC
    assert human_time(1764072000, "t") == "2025-11-25 12:00:00 UTC"
    assert quantity("cpu_percent", 61.25) == "61.25%"
    assert quantity("latency_ms", 300) == "300 ms"
    assert quantity("temperature_c", 71) == "71 °C"  # the unit of the metric catalogue (rules.metrics)
    assert quantity("my_metric", 71) == "71"
    assert quantity("cpu_percent", None) == "None"


def test_datetimes_in_facts_become_iso_strings() -> None:
    opened = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)
    r = render("ticket_opened", {**RED_FACTS, "opened_at": opened})
    assert r.data["opened_at"] == "2025-11-25T12:00:00Z"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "a b"}, "idempotency_key"),
        ({"idempotency_key": "k\r\nBcc: x@y"}, "idempotency_key"),
        ({"idempotency_key": "x" * 201}, "idempotency_key"),
        ({"channel": "pager"}, "channel: must be one of"),
        ({"address": ""}, "address"),
        ({"subject": "two\nlines"}, "subject"),
        ({"created_at": datetime(2025, 1, 1)}, "created_at: must carry a time zone"),
        ({"data": {"x": object()}}, "data: must be JSON-serialisable"),
        ({"data": {"x": float("nan")}}, "data: must be JSON-serialisable"),
    ],
)
def test_notification_is_validated(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(NotificationError, match=message):
        n(**kw)


def test_round_trip_keeps_everything_but_the_secret() -> None:
    original = red_notification("dingtalk", "http://127.0.0.1/robot/send?access_token=t", secret="SECxyz")
    stored = original.to_dict()
    assert "secret" not in stored and "SECxyz" not in repr(original)
    restored = Notification.from_dict(stored, secret="SECxyz")
    assert restored == original
    with pytest.raises(NotificationError, match="subject: missing"):
        Notification.from_dict({k: v for k, v in stored.items() if k != "subject"})


def test_events_list() -> None:
    assert set(EVENTS) == {"ticket_opened", "ticket_escalated", "alert_cleared", "alert_recurred", "sla_warning",
                           "sla_breached",
                           "ticket_dispatched", "satisfaction_request", "rca_report", "digest"}


def test_digest_lists_each_and_carries_every_key() -> None:
    items = [red_notification("wecom", "http://h/x", key=f"k-{i}", ticket_id=i) for i in range(35)]
    digest = make_digest(items)
    assert digest.subject == "[edgewatch] 35 notifications (digest)"
    assert digest.event == "digest"
    assert digest.text.count("[edgewatch] RED:") == 30
    assert "... and 5 more." in digest.text
    assert "1. [edgewatch] RED: gw-0001 cpu_percent 95%, on-site service ticket #0\n" in digest.text
    assert [i["idempotency_key"] for i in digest.data["items"]] == [f"k-{i}" for i in range(35)]
    assert make_digest(items).idempotency_key == digest.idempotency_key  # same items, same key
    assert make_digest(items[:-1]).idempotency_key != digest.idempotency_key
    with pytest.raises(NotificationError, match="at least one"):
        render_digest([])
    with pytest.raises(ValueError, match="one channel and address"):
        make_digest([items[0], red_notification("wecom", "http://h/other")])
