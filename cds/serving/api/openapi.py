"""The OpenAPI document says everything the service may answer, not only its happy path.

FastAPI documents each route's success response and its own 422. On top of that, every operation gets:

* its security: a user's bearer JWT or ``X-API-Key`` for routes behind :func:`~cds.serving.api.deps.authenticate`,
  an EHR-signed JWT for CDS Hooks calls (``hook_client``), with 401 and 403;
* 404 where the path names something, 413 where there is a body, 415 where the body is not JSON, 503 (database or
  queue unavailable) everywhere, and 422 as the problem+json it really is;
* a ``default`` response: any other error status, as RFC 9457 ``application/problem+json``.

Each error response documents the problem+json schema (:func:`~cds.serving.api.errors.problem`). Strings that
parameters and body fields take, and the names of an object's properties, say that they hold no NUL character (the
service refuses one anywhere, 422 ``nul_character``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from cds.serving.api.deps import authenticate
from cds.serving.api.errors import PROBLEM
from cds.serving.api.routes.cds_hooks import hook_client

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "title", "status", "detail", "code"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "code": {"type": "string", "description": "machine-readable reason"}},
}  # fmt: skip
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "a user's token from the identity provider (CDS_JWT_JWKS_FILE)"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "a service account's key"},
    "ehr": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "CDS Hooks: a JWT the EHR signs for each call (CDS_HOOKS_CLIENTS_FILE)"},
}  # fmt: skip
REASONS = {401: "Not authenticated (audited)", 403: "Not allowed for this role or patient (audited)",
           404: "Not found", 413: "Body over its cap", 415: "Body of a media type this route does not take",
           422: "Invalid request or input (the code says which)", 503: "Database, queue or backend unavailable",
           "default": "Any other error"}  # fmt: skip


NO_NUL = "^[^\\x00]*$"
ANY_WITHOUT_NUL = "AnyWithoutNul"
ANY_WITHOUT_NUL_SCHEMA: dict[str, Any] = {
    "description": "Any JSON value with no NUL character in any string or key (a property the service ignores)",
    "anyOf": [
        {"type": "string", "pattern": NO_NUL}, {"type": "number"}, {"type": "boolean"}, {"type": "null"},
        {"type": "array", "items": {"$ref": f"#/components/schemas/{ANY_WITHOUT_NUL}"}},
        {"type": "object", "propertyNames": {"pattern": NO_NUL},
         "additionalProperties": {"$ref": f"#/components/schemas/{ANY_WITHOUT_NUL}"}},
    ],
}


def _without_nul(schema: Any) -> None:
    """Give string schemas without a pattern or format of their own, and objects' property names, :data:`NO_NUL`.

    Objects that ignore unknown properties document them as :data:`ANY_WITHOUT_NUL`. Changes ``schema`` in place.
    """
    if isinstance(schema, dict):
        if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
            schema.setdefault("propertyNames", {"pattern": NO_NUL})
            if schema.get("additionalProperties", True) is True:  # unknown properties: ignored, but never a NUL
                schema["additionalProperties"] = {"$ref": f"#/components/schemas/{ANY_WITHOUT_NUL}"}
        if schema.get("type") == "string" and "pattern" not in schema and "format" not in schema \
                and "enum" not in schema and "const" not in schema:  # fmt: skip
            schema["pattern"] = NO_NUL
        for value in schema.values():
            _without_nul(value)
    elif isinstance(schema, list):
        for value in schema:
            _without_nul(value)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _problem(status: int | str) -> dict[str, Any]:
    return {"description": REASONS[status], "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _statuses(route: APIRoute, operation: dict[str, Any]) -> list[int | str]:
    calls = set(_calls(route.dependant))
    statuses: list[int | str] = [422, 503, "default"]
    if authenticate in calls or hook_client in calls or route.path.startswith("/cds-services/"):
        statuses += [401, 403]
    if route.dependant.path_params:
        statuses.append(404)
    body = operation.get("requestBody")
    if body is not None:
        statuses.append(413)
        if any(not media.startswith("application/json") for media in body.get("content", {})):
            statuses.append(415)
    return statuses


def _security(route: APIRoute) -> list[dict[str, list[str]]] | None:
    calls = set(_calls(route.dependant))
    if hook_client in calls or route.path.startswith("/cds-services/"):
        return [{"ehr": []}]
    if authenticate in calls:
        return [{"bearer": []}, {"apiKey": []}]
    return None


def install(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """Make ``app.openapi()`` answer the completed document (built once) for the operations of ``routers``."""

    def document() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = FastAPI.openapi(app)
        components = spec.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        components["securitySchemes"] = SECURITY_SCHEMES
        for route in (r for router in routers for r in router.routes):
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            for method in route.methods or ():
                operation = spec["paths"].get(route.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                for status in _statuses(route, operation):
                    responses[str(status)] = _problem(status)
                security = _security(route)
                if security is not None:
                    operation["security"] = security
        spec["components"]["schemas"].pop("HTTPValidationError", None)
        spec["components"]["schemas"].pop("ValidationError", None)
        _without_nul(spec["paths"])
        _without_nul({k: v for k, v in spec["components"]["schemas"].items() if k != "Problem"})
        spec["components"]["schemas"][ANY_WITHOUT_NUL] = ANY_WITHOUT_NUL_SCHEMA
        app.openapi_schema = spec
        return spec

    app.openapi = document  # type: ignore[method-assign]
