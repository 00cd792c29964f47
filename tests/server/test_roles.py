"""The role matrix: every route of the app (found by introspection) called by every role.

The expectations are written out here, independently of server/policy.py, so that a new endpoint
without a row in EXPECTED fails this test, and a change of who may do what shows up in review.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from server.app import api_routes, create_app
from server.settings import ServerSettings
from tests.server.harness import Harness, harness, new_database
from tests.support import services
from tickets.db import create_engine_for, session_factory

pytestmark = pytest.mark.postgres

ALL = {"admin", "supervisor", "engineer", "customer"}  # every person's role; an ingest token is in none of these
INGEST = {"ingest"}
STAFF = {"admin", "supervisor", "engineer"}
MANAGERS = {"admin", "supervisor"}
PUBLIC = "public"

EXPECTED: dict[str, set[str] | str] = {
    "whoami": ALL,
    "list_devices": ALL, "list_device_groups": ALL, "live_events": ALL, "attention": ALL,
    "get_device": ALL, "device_history": ALL, "device_forecast": ALL, "update_device": MANAGERS,
    "list_alerts": ALL, "metrics_catalog": ALL,
    "list_tickets": ALL, "get_ticket": ALL, "create_ticket": MANAGERS, "ticket_action": STAFF, "add_note": ALL,
    "attach_rca": STAFF,
    "rate_ticket": ALL, "list_notifications": ALL,
    "get_thresholds": STAFF, "put_thresholds": MANAGERS, "preview_thresholds": STAFF,
    "list_customers": ALL, "create_customer": MANAGERS, "list_contacts": ALL, "create_contact": MANAGERS,
    "list_tokens": {"admin"}, "create_token": {"admin"}, "revoke_token": {"admin"},
    "list_dead_letters": STAFF, "get_kpis": STAFF, "monthly_report": ALL,
    "list_staff": STAFF, "get_staff": STAFF, "create_staff": MANAGERS, "update_staff": MANAGERS,
    "delete_staff": MANAGERS,
    "list_staff_groups": STAFF, "get_staff_group": STAFF, "create_staff_group": MANAGERS,
    "update_staff_group": MANAGERS, "delete_staff_group": MANAGERS,
    "list_users": {"admin"}, "get_user": {"admin"}, "create_user": {"admin"}, "update_user": {"admin"},
    "delete_user": {"admin"}, "change_own_password": ALL,
    "update_customer": MANAGERS, "delete_customer": MANAGERS, "update_contact": MANAGERS, "delete_contact": MANAGERS,
    "import_devices": MANAGERS,
    "ingest_alertmanager": INGEST, "ingest_zabbix": INGEST,
    "list_knowledge": ALL, "get_knowledge": ALL, "create_knowledge": STAFF, "update_knowledge": STAFF,
    "publish_knowledge": MANAGERS, "review_knowledge": MANAGERS, "retire_knowledge": MANAGERS,
    "use_knowledge": STAFF, "ticket_knowledge": STAFF,
    "list_maintenance_windows": STAFF, "create_maintenance_window": MANAGERS,
    "update_maintenance_window": MANAGERS, "delete_maintenance_window": MANAGERS,
    "login": PUBLIC, "logout": PUBLIC, "submit_survey": PUBLIC, "healthz": PUBLIC, "metrics": PUBLIC,
    "dashboard": PUBLIC, "survey_page": PUBLIC, "ticket_page": PUBLIC, "knowledge_page": PUBLIC, "messages": PUBLIC,
}

_unique = itertools.count()


def body_for(route: APIRoute) -> dict | None:
    name = route.name
    if name == "ticket_action":
        return {}
    return {
        "update_device": {"device_class": "gateway"},
        "add_note": {"text": "checked remotely"},
        "create_ticket": {"device_id": "gw-a", "title": "cabinet door broken", "level": "blue"},
        "attach_rca": {"symptom": "s", "investigation": "i", "responsibility": "r"},
        "rate_ticket": {"rating": 4},
        "put_thresholds": {"document": {}},
        "create_customer": {"name": f"Customer {next(_unique)}"},
        "create_contact": {"name": "Ops", "channel": "email", "address": "ops@example.com"},
        "create_token": {"role": "engineer"},
        "create_staff": {"name": f"Engineer {next(_unique)}"},
        "update_staff": {"tags": ["north"]},
        "create_staff_group": {"name": f"Team {next(_unique)}", "level": "red"},
        "update_staff_group": {"member_ids": []},
        "create_user": {"username": f"user{next(_unique)}", "password": "long enough password", "role": "engineer"},
        "update_user": {"role": "engineer"},
        "change_own_password": {"current_password": "x", "new_password": "long enough password"},
        "update_customer": {"language": "en"},
        "update_contact": {"language": "zh-CN"},
        "login": {"token": "not-a-token"},
        "submit_survey": {"rating": 5},
        "ingest_alertmanager": {"version": "4", "alerts": []},
        "ingest_zabbix": {"event_id": "1", "event_value": "1", "event_update_status": "1", "event_name": "x"},
        "create_knowledge": {"title": "Fan seized", "symptom": "CPU hot", "steps": "Replace the fan"},
        "update_knowledge": {"risks": "Power down first"},
        "use_knowledge": {"ticket_id": 1},
        "create_maintenance_window": {"name": "firmware", "starts_at": "2026-12-05T02:00:00",
                                      "ends_at": "2026-12-05T04:00:00", "timezone": "Asia/Shanghai",
                                      "scope": {"device_ids": ["gw-a"]}},
        "update_maintenance_window": {"name": "firmware upgrade"},
    }.get(name)


def _routes() -> list[tuple[str, APIRoute]]:
    """(method, route) of every route, read from an app built only for listing them."""
    engine = create_engine_for("sqlite://")
    settings = ServerSettings(data_dir=Path("/nonexistent"), session_secret="listing-only", telemetry_path=None)
    app = create_app(settings, session_factory(engine))
    found = [(method, route) for route in api_routes(app) for method in sorted(route.methods or ())]
    engine.dispose()
    return found


ROUTES = _routes()


@pytest.fixture(scope="module")
def world(postgres_server: services.Postgres, server_pg_template: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Harness, dict[str, str]]]:
    engine = new_database(postgres_server, server_pg_template)
    with harness(session_factory(engine), tmp_path_factory.mktemp("roles")) as h:
        h.add_device("gw-a", "Acme Power")
        ticket = h.raise_alert("gw-a")
        throwaway = h.add_token("throwaway", "engineer")
        assert throwaway
        member = h.client.post("/api/v1/staff", json={"name": "王芳"}, headers=h.auth("admin")).json()
        group = h.client.post("/api/v1/staff-groups", json={"name": "Red", "level": "red",
                                                            "member_ids": [member["id"]]},
                              headers=h.auth("admin")).json()
        values = {"ticket_id": str(ticket), "device_id": "gw-a", "customer_id": str(h.customers["Acme Power"]),
                  "token_id": str(h.token_ids["throwaway"]), "token": "no-such-survey-token",
                  "staff_id": str(member["id"]), "group_id": str(group["id"])}
        user = h.client.post("/api/v1/users", json={"username": "wang", "password": "long enough password",
                                                    "role": "engineer"}, headers=h.auth("admin")).json()
        contact = h.client.post(f"/api/v1/customers/{values['customer_id']}/contacts", headers=h.auth("admin"),
                                json={"name": "Ops", "channel": "email", "address": "ops@acme.test"}).json()
        entry = h.client.post("/api/v1/knowledge", headers=h.auth("admin"),
                              json={"title": "Fan seized", "symptom": "CPU hot", "steps": "Replace the fan"}).json()
        window = h.client.post("/api/v1/maintenance-windows", headers=h.auth("admin"),
                               json=body_for(next(r for _, r in ROUTES if r.name == "create_maintenance_window")))
        values |= {"user_id": str(user["id"]), "contact_id": str(contact["id"]), "entry_id": str(entry["id"]),
                   "window_id": str(window.json()["id"])}
        yield h, values
    engine.dispose()


def test_every_route_has_an_expectation() -> None:
    missing = sorted({route.name for _, route in ROUTES} - set(EXPECTED))
    assert missing == [], f"routes without a row in the role matrix: {missing}"


@pytest.mark.parametrize("role", ["anonymous", *sorted(ALL | INGEST)])
@pytest.mark.parametrize(("method", "route"), ROUTES, ids=[f"{m} {r.path}" for m, r in ROUTES])
def test_role_matrix(world: tuple[Harness, dict[str, str]], method: str, route: APIRoute, role: str) -> None:
    h, values = world
    expected = EXPECTED.get(route.name)
    assert expected is not None, f"{route.name} has no row in EXPECTED"
    path = route.path_format.format(**{p: values[p] for p in route.param_convertors})
    headers = h.auth(role) if role != "anonymous" else {}
    h.client.cookies.clear()
    answer = h.client.request(method, path, json=body_for(route), headers=headers)
    assert answer.status_code < 500, answer.text
    if expected == PUBLIC:
        assert answer.status_code != 403, answer.text
    elif role == "anonymous":
        assert answer.status_code == 401, answer.text
        assert answer.json()["detail"]
    elif role in expected:
        assert answer.status_code not in (401, 403), f"{role} refused: {answer.text}"
    else:
        assert answer.status_code == 403, f"{role} let in: {answer.status_code} {answer.text}"
        assert role in answer.json()["detail"]
