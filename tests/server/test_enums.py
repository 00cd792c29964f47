"""The API's enumerations come from tickets.models; their wire values are the contract's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.app import create_app
from server.settings import ServerSettings
from tickets.db import create_engine_for, session_factory


def _spec() -> dict[str, Any]:
    engine = create_engine_for("sqlite://")
    app = create_app(ServerSettings(data_dir=Path("/nonexistent"), session_secret="listing-only",
                                    telemetry_path=None), session_factory(engine))
    spec = app.openapi()
    engine.dispose()
    return spec


def test_ticket_values_on_the_wire_are_the_contracts() -> None:
    schemas = _spec()["components"]["schemas"]
    assert schemas["TicketStatus"]["enum"] == ["received", "dispatched", "in_progress", "resolved", "closed",
                                               "cancelled"]
    assert schemas["Level"]["enum"] == ["red", "yellow", "blue"]
    assert schemas["Severity"]["enum"] == ["orange", "red"]
    assert schemas["DeviceState"]["enum"] == ["online", "offline", "unknown"]
    assert schemas["DeviceHealth"]["enum"] == ["green", "orange", "red", "offline", "unknown"]
    assert schemas["TokenRole"]["enum"] == ["admin", "supervisor", "engineer", "customer", "ingest"]
    contact = schemas["ContactIn"]["properties"]
    assert contact["channel"]["enum"] == ["email", "webhook", "dingtalk", "wecom", "feishu", "sms"]  # not the inbox
    ticket = schemas["TicketOut"]["properties"]
    assert ticket["status"] == {"$ref": "#/components/schemas/TicketStatus"}
    assert {"$ref": "#/components/schemas/Severity"} in ticket["severity"]["anyOf"]


def test_query_filters_take_the_same_values() -> None:
    params = {p["name"]: p for p in _spec()["paths"]["/api/v1/tickets"]["get"]["parameters"]}
    for name, enum in (("status", "TicketStatus"), ("level", "Level"), ("severity", "Severity")):
        found = str(params[name]["schema"])
        assert f"#/components/schemas/{enum}" in found, (name, found)
