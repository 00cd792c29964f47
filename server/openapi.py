"""The OpenAPI document: error answers described as they are really sent (`{"detail": ...}`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from server.policy import RULES
from server.schemas import ErrorOut

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
STANDARD = {
    401: "no valid token or session",
    403: "the caller's role may not do this (or a missing CSRF header with a session cookie)",
    422: "a bad parameter or body; `detail` says which and why",
}


def install(app: FastAPI, version: str, routes: list[APIRoute]) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorOut"] = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        secured = {route.path_format: route.name for route in routes}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                codes = [422] + ([401, 403] if secured.get(path) in RULES else [])
                for code in codes:
                    responses.setdefault(str(code), {"description": STANDARD[code]})
                for code, answer in responses.items():
                    if code.startswith(("4", "5")):
                        answer["content"] = {"application/json": {"schema": ERROR_REF}}
                if secured.get(path) in RULES:
                    operation["security"] = [{"bearer": []}, {"session": []}]
        schema["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "an API token"},
            "session": {"type": "apiKey", "in": "cookie", "name": "ew_session",
                        "description": "browser session from POST /api/v1/auth/login (send X-CSRF-Token too)"},
        }
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
