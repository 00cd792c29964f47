"""Schemathesis against the OpenAPI schema: generated requests (valid and not) never make the
server fail, and answers match the documented schema. Runs on a real PostgreSQL database, with an
admin token so every operation is reached past authentication. One test per operation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from server.app import create_app
from server.settings import ServerSettings
from tests.server.harness import Harness, harness, new_database
from tests.support import services
from tickets.db import create_engine_for, session_factory

pytestmark = pytest.mark.postgres
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _operations() -> list[str]:
    engine = create_engine_for("sqlite://")
    app = create_app(ServerSettings(data_dir=Path("/nonexistent"), session_secret="listing-only",
                                    telemetry_path=None), session_factory(engine))
    spec = app.openapi()
    engine.dispose()
    return [f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops]


@pytest.fixture(scope="module")
def fuzzed(postgres_server: services.Postgres, server_pg_template: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Harness, object]]:
    engine = new_database(postgres_server, server_pg_template)
    with harness(session_factory(engine), tmp_path_factory.mktemp("schema")) as h:
        h.add_device("gw-0001", "Acme Power")
        h.raise_alert("gw-0001")
        yield h, schemathesis.openapi.from_asgi("/openapi.json", h.app)
    engine.dispose()


@pytest.mark.parametrize("label", _operations())
def test_no_server_errors_and_answers_match_the_schema(fuzzed: tuple[Harness, object], label: str) -> None:
    h, schema = fuzzed
    method, path = label.split(" ", 1)
    operation = schema[path][method]  # type: ignore[index]
    headers = h.auth("ingest") if path.startswith("/api/v1/ingest/") else h.auth("admin")

    @given(case=operation.as_strategy())
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
