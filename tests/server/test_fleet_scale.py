"""The fleet list at scale: filters, search, numbered pages with counts per health, groups by customer
and site, the alert index behind them, and the live-update stream (Server-Sent Events)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from edgewatch.bench._big_fleet import BigFleet, fill_fleet, rule_state
from tests.server.harness import Harness, harness
from tickets.db import session_factory
from tickets.models import RuleState

pytestmark = pytest.mark.postgres


@pytest.fixture
def fleet(pg_engine: Engine, tmp_path: Path) -> Iterator[tuple[Harness, BigFleet]]:
    with harness(session_factory(pg_engine), tmp_path, poll_interval_s=0.05) as h:
        yield h, fill_fleet(pg_engine, 2_000)


def events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


def test_numbered_pages_put_problems_first_and_count_every_health(fleet) -> None:
    h, big = fleet
    page = h.client.get("/api/v1/devices", params={"page": 1, "per_page": 50}, headers=h.auth("supervisor")).json()
    assert page["total"] == 2_000 and page["page"] == 1 and len(page["items"]) == 50
    assert page["counts"] == {"red": len(big.red), "orange": len(big.orange), "offline": len(big.offline),
                              "unknown": 0, "green": 2_000 - len(big.red) - len(big.orange) - len(big.offline)}
    healths = [d["health"] for d in page["items"]]
    assert healths[:len(big.red)] == ["red"] * len(big.red) and healths[len(big.red)] == "orange"
    problems = h.client.get("/api/v1/devices", params={"page": 1, "per_page": 1000, "health": ["red", "offline"]},
                            headers=h.auth("supervisor")).json()
    assert problems["total"] == len(big.red) + len(big.offline)
    assert {d["id"] for d in problems["items"]} == set(big.red) | set(big.offline)
    assert problems["counts"] == page["counts"]  # the counts ignore the health filter: the buttons show them all
    last = h.client.get("/api/v1/devices", params={"page": 40, "per_page": 50}, headers=h.auth("supervisor")).json()
    assert len(last["items"]) == 50 and last["items"][-1]["health"] == "green"
    # The cursor pages (the old way) still walk every device by id, with the new filters too.
    walked, cursor = [], None
    while True:
        answer = h.client.get("/api/v1/devices", params={"limit": 1000, "cursor": cursor, "health": "orange"},
                              headers=h.auth("supervisor")).json()
        walked += [d["id"] for d in answer["items"]]
        if not (cursor := answer["next"]):
            break
    assert walked == sorted(big.orange) and answer["total"] is None


def test_search_site_tag_and_customer_filters(fleet) -> None:
    h, big = fleet
    get = lambda **q: h.client.get("/api/v1/devices", params={"page": 1, "per_page": 1000, **q},  # noqa: E731
                                   headers=h.auth("supervisor")).json()
    by_site = get(site="Beta Water site 03")
    assert by_site["total"] > 0 and {d["site"] for d in by_site["items"]} == {"Beta Water site 03"}
    assert get(q="gw-0001")["total"] == len([i for i in range(2000) if f"{i:05d}".startswith("0001") and i % 5])
    assert get(q="华东")["total"] == 200  # the customer's name counts in the search
    assert get(q="100%")["total"] == 0  # the pattern's wildcards are taken literally
    zone = get(tag="zone-3")
    assert zone["total"] == len([i for i in range(2000) if i % 7 == 3])
    assert get(tag="zone")["total"] == 0  # whole tags only
    beta = big.customers["Beta Water"]
    assert get(customer_id=beta)["total"] == 200
    # A customer sees its own devices only, whatever it asks for.
    customer = h.add_token("beta", "customer", beta)
    own = h.client.get("/api/v1/devices", params={"page": 1, "per_page": 1000},
                       headers={"Authorization": f"Bearer {customer}"}).json()
    assert own["total"] == 200 and {d["customer_name"] for d in own["items"]} == {"Beta Water"}
    groups = h.client.get("/api/v1/device-groups", headers={"Authorization": f"Bearer {customer}"}).json()["items"]
    assert len(groups) == 12 and {g["customer_name"] for g in groups} == {"Beta Water"}
    assert sum(g["total"] for g in groups) == 200


def test_groups_by_customer_and_site_with_problems_first(fleet) -> None:
    h, big = fleet
    groups = h.client.get("/api/v1/device-groups", headers=h.auth("supervisor")).json()["items"]
    assert len(groups) == 120 and sum(g["total"] for g in groups) == 2_000
    bad = [g["counts"]["red"] + g["counts"]["orange"] + g["counts"]["offline"] for g in groups]
    assert bad == sorted(bad, reverse=True)
    only_red = h.client.get("/api/v1/device-groups", params={"health": "red"}, headers=h.auth("supervisor")).json()
    assert sum(g["total"] for g in only_red["items"]) == len(big.red)


def test_the_alert_index_follows_rule_state_changes(fleet) -> None:
    h, big = fleet
    healthy = "gw-00001"
    with h.sessions() as session:
        session.add(RuleState(device_id=healthy, state=rule_state("latency_ms", "red"), updated_at=datetime.now(UTC)))
        cleared = session.get(RuleState, big.red[0])
        assert cleared is not None
        cleared.state = {"seq": 101, "instance": None, "device_class": "gateway", "metrics": {}}
        cleared.updated_at = datetime.now(UTC)
        session.commit()
    red = h.client.get("/api/v1/devices", params={"page": 1, "per_page": 1000, "health": "red"},
                       headers=h.auth("supervisor")).json()
    assert {d["id"] for d in red["items"]} == (set(big.red) - {big.red[0]}) | {healthy}


def test_the_event_stream_pushes_changed_devices_and_tickets(fleet) -> None:
    h, big = fleet
    with h.client.stream("GET", "/api/v1/events", headers=h.auth("supervisor")) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        first = events(answer.read().decode())
    hello = [data for name, data in first if name == "hello"]
    assert len(hello) == 1
    version = hello[0]["version"]
    with h.sessions() as session:
        session.add(RuleState(device_id="gw-00002", state=rule_state("cpu_percent", "orange"),
                              updated_at=datetime.now(UTC)))
        session.commit()
    ticket = h.raise_alert("gw-00002", "cpu_percent", "orange", 70.0)
    text = h.client.get("/api/v1/events", headers={**h.auth("supervisor"), "Last-Event-ID": str(version)}).text
    got = dict(events(text))
    assert [d["id"] for d in got["devices"]["items"]] == ["gw-00002"]
    assert got["devices"]["items"][0]["health"] == "orange" and got["devices"]["items"][0]["open_tickets"] == 1
    assert got["devices"]["counts"]["orange"] == len(big.orange) + 1
    assert ticket in got["tickets"]["ids"]
    # Another customer's stream says nothing of it; a stream too far behind is told to reload.
    other = h.add_token("acme", "customer", big.customers["Acme Power"])
    text = h.client.get("/api/v1/events", headers={"Authorization": f"Bearer {other}",
                                                   "Last-Event-ID": str(version)}).text
    assert "gw-00002" not in text and "tickets" not in dict(events(text))
    text = h.client.get("/api/v1/events", headers={**h.auth("supervisor"), "Last-Event-ID": "999999"}).text
    assert "reset" in dict(events(text))
    assert h.client.get("/api/v1/events").status_code == 401


def test_attention_lists_what_needs_doing_first(fleet) -> None:
    h, big = fleet
    red = h.raise_alert(big.red[0], "cpu_percent", "red", 95.0)
    orange = h.raise_alert(big.orange[0], "mem_percent", "orange", 70.0)
    h.client.post(f"/api/v1/tickets/{orange}/acknowledge", headers=h.auth("engineer"), json={})
    a = h.client.get("/api/v1/attention", params={"limit": 10}, headers=h.auth("supervisor")).json()
    assert [t["id"] for t in a["tickets"]][:1] == [red]  # received: the first response is due first
    assert a["tickets"][0]["device_site"] is not None
    waiting = {p["device"]["id"]: p["ticket_id"] for p in a["unacknowledged"]}
    assert a["unacknowledged_total"] == len(big.red) + len(big.orange) - 1  # the acknowledged one is off
    assert len(a["unacknowledged"]) == 10 and all(p["device"]["health"] == "red" for p in a["unacknowledged"])
    assert waiting.get(big.red[0], red) == red and big.orange[0] not in waiting
    assert a["offline_total"] == len(big.offline) and len(a["offline"]) == 10
    beta = h.add_token("beta", "customer", big.customers["Beta Water"])
    own = h.client.get("/api/v1/attention", headers={"Authorization": f"Bearer {beta}"}).json()
    assert {d["customer_name"] for d in own["offline"]} <= {"Beta Water"}
    assert own["offline_total"] == sum(1 for d in big.offline if int(d.split("-")[1]) % 10 == 1)  # Beta's


def test_the_threshold_preview_counts_devices_in_alert(fleet) -> None:
    h, _ = fleet
    now = h.client.post("/api/v1/thresholds/preview", json={"document": {}}, headers=h.auth("engineer")).json()
    assert now["proposed"] == now["current"] and now["current"]["devices"] == 2_000
    # The fill's red devices have CPU 91..99, its orange ones memory 61..80, the rest CPU 5..55.
    assert now["current"]["red"] > 0 and now["current"]["orange"] > 0
    lower = h.client.post("/api/v1/thresholds/preview", headers=h.auth("engineer"), json={
        "document": {"metrics": {"cpu_percent": {"threshold": 30, "red": 50}}}}).json()
    assert lower["proposed"]["red"] > now["current"]["red"] and lower["current"] == now["current"]
    higher = h.client.post("/api/v1/thresholds/preview", headers=h.auth("engineer"), json={
        "document": {"metrics": {"cpu_percent": {"threshold": 99.5, "red": 99.9},
                                 "mem_percent": {"threshold": 99.5, "red": 99.9}}}}).json()
    assert higher["proposed"]["red"] == 0 and higher["proposed"]["orange"] == 0
    bad = h.client.post("/api/v1/thresholds/preview", headers=h.auth("engineer"),
                        json={"document": {"metrics": {"cpu_percent": {"threshold": -5}}}})
    assert bad.status_code == 422 and "cpu_percent" in bad.json()["detail"]
