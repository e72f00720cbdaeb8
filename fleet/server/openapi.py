"""The OpenAPI 3.1 document, generated from the route table and the pydantic models.

Request bodies and responses are the models' own JSON Schemas (validation mode for what the
server reads, serialization mode for what it writes); query parameters are the query models'
fields; every error status a route can answer is listed with the wire `ApiError` schema. A
test runs schemathesis against it, so a handler that answers something undocumented fails.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from fleet.server.routes import ROUTES, Route
from fleet.wire import WIRE_VERSION, ApiError

REF = "#/components/schemas/{model}"
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
_REASONS = {200: "OK", 201: "Created", 400: "Malformed request", 401: "Not authenticated",
            403: "Not allowed for this role or region", 404: "Not found",
            409: "Conflicts with the current state", 413: "Body too large",
            422: "Invalid input", 503: "Temporarily unavailable"}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is either absent or a value: drop the `null` branch pydantic adds
    for optional fields."""
    any_of = schema.get("anyOf")
    if any_of:
        rest = [s for s in any_of if s.get("type") != "null"]
        if len(rest) == 1:
            merged = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
            merged.update(rest[0])
            return merged
    return {k: v for k, v in schema.items() if k != "default" or v is not None}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(copy.deepcopy(prop))
        prop.pop("title", None)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop.pop("description")
        params.append(param)
    return params


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    out = []
    for name in route.path_params:
        if name == "alert_id":
            schema: dict[str, Any] = {"type": "integer", "minimum": 1,
                                      "maximum": 999_999_999_999_999_999}
        elif name == "name":
            schema = {"type": "string", "pattern": USER_PATTERN}
        else:
            schema = {"type": "string", "pattern": IDENT_PATTERN}
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


@functools.cache
def openapi_document() -> dict[str, Any]:
    inputs = {r.body for r in ROUTES if r.body is not None}
    outputs = {r.response for r in ROUTES if r.response is not None} | {ApiError}
    keys = [(model, "validation") for model in sorted(inputs, key=lambda m: m.__name__)]
    keys += [(model, "serialization") for model in sorted(outputs, key=lambda m: m.__name__)]
    refs, defs = models_json_schema(keys, ref_template=REF)
    schemas = defs.get("$defs", {})
    error_ref = refs[(ApiError, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        op: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
        }
        params = _path_parameters(route)
        if route.query is not None:
            params += _query_parameters(route.query)
        if params:
            op["parameters"] = params
        if route.auth == "user":
            op["security"] = [{"bearerAuth": []}, {"sessionCookie": []}]
            if route.role != "viewer":
                op["description"] = f"Needs the {route.role} role."
        elif route.auth == "device":
            op["security"] = [{"kioskSignature": []}]
            op["description"] = ("Signed by the kiosk's key: headers Kiosk-Device, "
                                 "Kiosk-Counter, Kiosk-Timestamp, Kiosk-Signature "
                                 "(provisioning/signing.py)"
                                 + ("; or, in a device session, Kiosk-Session and an "
                                    "HMAC-SHA256 in Kiosk-Signature (provisioning/sessions.py)."
                                    if route.device_session else "."))
        else:
            op["security"] = []
        if route.body is not None:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": refs[(route.body, "validation")]}}}
        if route.response is not None:
            ok_schema = refs[(route.response, "serialization")]
        elif route.content_type == "text/plain":
            ok_schema = {"type": "string"}
        else:
            ok_schema = {"type": "object"}
        responses: dict[str, Any] = {str(route.status): {
            "description": _REASONS.get(route.status, "OK"),
            "content": {route.content_type: {"schema": ok_schema}}}}
        for status in route.error_statuses:
            responses[str(status)] = {"description": _REASONS.get(status, "Error"),
                                      "content": {"application/json": {"schema": error_ref}}}
        op["responses"] = responses
        aiohttp_path = route.path
        paths.setdefault(aiohttp_path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Kiosk fleet server",
            "version": f"1.{WIRE_VERSION}",
            "description": "Central monitoring service for the self-service kiosks: enrolment, "
                           "heartbeats, commands (kiosks); kiosks, alerts, statistics, map, "
                           "users (ops). Errors are always an ApiError.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "from POST /api/v1/auth/login"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "fleet_session"},
                "kioskSignature": {"type": "apiKey", "in": "header", "name": "Kiosk-Signature"},
            },
        },
    }
