"""RFC 9457 problem+json responses: the one place where errors become HTTP status codes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds.errors import (
    ArtifactIntegrityError,
    BackendUnavailableError,
    CdsError,
    ConfigurationError,
    ForbiddenError,
    InferenceError,
    InvalidInputError,
    InvalidSpecError,
    MissingDependencyError,
    NotAcceptableError,
    NotAuthenticatedError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    PreconditionFailedError,
    UnsupportedMediaTypeError,
)
from cds.privacy import where
from cds.serving.api.uploads import REFUSALS, audit_refused_upload, upload_kind

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
# Most specific first.
STATUS: tuple[tuple[type[CdsError], int], ...] = (
    (NotAuthenticatedError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (NotAcceptableError, 406),
    (PayloadTooLargeError, 413),
    (UnsupportedMediaTypeError, 415),
    (PreconditionFailedError, 412),
    (ArtifactIntegrityError, 503),
    (InvalidSpecError, 503),
    (InvalidInputError, 422),
    (OverloadedError, 503),
    (BackendUnavailableError, 503),
    (InferenceError, 502),
    (MissingDependencyError, 501),
    (ConfigurationError, 503),  # the deployment lacks what the request needs (a signing key, say)
)
RETRY_AFTER_S = 5


def status_for(error: CdsError) -> int:
    """HTTP status of a cds error."""
    for error_class, status in STATUS:
        if isinstance(error, error_class):
            return status
    return 500


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response with a stable machine-readable ``code``."""
    body = {"type": f"urn:cds:problem:{code}", "title": title, "status": status, "detail": detail, "code": code}
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="cds"'
    return JSONResponse(body | extra, status_code=status, media_type=PROBLEM, headers=headers)


async def _audit_upload(request: Request, reason: str, **detail: Any) -> None:
    """Audit an upload route's refusal of its input (:func:`cds.serving.api.uploads.audit_refused_upload`)."""
    route = str(getattr(request.scope.get("route"), "path", request.url.path))
    if upload_kind(request.method, route) is None:
        return
    principal = getattr(request.state, "principal", None)
    await run_in_threadpool(audit_refused_upload, request.app.state.cds, request.method, route, request.headers,
                            reason, principal.actor if principal is not None else None, **detail)


def install(app: FastAPI, routers: Sequence[APIRouter] = ()) -> None:
    """Register the handlers on ``app``; a 405 lists in ``Allow`` every method the ``routers`` serve on its path."""
    served = [(route.path_regex, route.methods or set()) for router in routers for route in router.routes
              if isinstance(route, APIRoute)]  # fmt: skip

    @app.exception_handler(CdsError)
    async def cds_error(request: Request, exc: CdsError) -> JSONResponse:
        status = status_for(exc)
        if isinstance(exc, REFUSALS):
            await _audit_upload(request, exc.code)
        return problem(status, exc.code, type(exc).__name__, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "the request does not match its schema"
        fields = sorted({".".join(str(part) for part in e["loc"]) for e in errors})
        await _audit_upload(request, "invalid_request", fields=fields)  # e.g. a file name of a type not read
        return problem(422, "invalid_request", "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = problem(exc.status_code, code, "HTTP error", str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:  # Starlette names the methods of one route; a path may have several
            allowed = {m for regex, methods in served if regex.match(request.url.path) for m in methods}
            if allowed:
                response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.exception_handler(SQLAlchemyError)
    async def database_error(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("database error: %s", type(exc).__name__)  # no statement or parameters: they may hold PHI
        return problem(503, "database_unavailable", "Database unavailable", "the result store cannot be reached; "
                       "nothing was released")  # fmt: skip

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s", where(exc))  # type and place only: the message may hold request values
        return problem(500, "internal_error", "Internal error", "an unexpected error occurred; it was logged")
