"""FastAPI dependencies: the app state and the authenticated principal with its roles.

Failed authentication (401) and missing roles (403) are written to the audit trail before the error is raised.
Handlers open their own short transactions (``with state.database.session()``) and commit before they return:
a transaction never outlives the thread that runs it, so a full thread pool cannot wait on a lock that only a
dependency teardown would release.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BeforeValidator

from cds.errors import ForbiddenError, JobNotFoundError, NotAuthenticatedError
from cds.interop.fhir_observations import PATIENT_REFERENCE
from cds.results.jobs import JobRecord
from cds.services.engine import Engine
from cds.serving.api.auth import Principal, Role, verify_api_key
from cds.serving.api.state import AppState
from cds.store.audit import Actor, AuditAction, AuditOutcome, record_event
from cds.store.referrals import is_referred
from cds.store.sites import visible_sites


def get_state(request: Request) -> AppState:
    """The service state."""
    state: AppState = request.app.state.cds
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_engine(request: Request) -> Engine:
    """The engine the use cases run on."""
    engine: Engine = request.app.state.cds.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def _route(request: Request) -> str:
    return str(getattr(request.scope.get("route"), "path", request.url.path))


def audit_denial(state: AppState, request: Request, actor: Actor, reason: str) -> None:
    """Record a refused request (401/403, or 404 for another site's data) in its own committed transaction."""
    with state.database.session() as session:
        record_event(session, AuditAction.ACCESS_DENIED, actor, f"{request.method} {_route(request)}",
                     outcome=AuditOutcome.DENIED, detail={"reason": reason})


def authenticate(request: Request, state: StateDep) -> Principal:
    """The caller, from ``Authorization: Bearer <jwt>`` or ``X-API-Key``.

    Raises:
        NotAuthenticatedError: No or invalid credentials (audited).
    """
    header = request.headers.get("authorization", "")
    api_key = request.headers.get("x-api-key")
    try:
        if header.lower().startswith("bearer "):
            principal = state.authenticator.verify_token(header[7:].strip())
        elif api_key:
            with state.database.session() as session:
                principal = replace(verify_api_key(session, api_key), site=state.settings.site)  # keys are the site's
        else:
            raise NotAuthenticatedError("credentials required: a bearer token or an API key",
                                        code="missing_credentials")  # fmt: skip
    except NotAuthenticatedError as exc:
        audit_denial(state, request, Actor("anonymous", ""), exc.code)
        raise
    request.state.principal = principal  # for the error handlers' audit of a refused upload
    return principal


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency that admits callers holding any of ``roles`` (403, audited, otherwise)."""
    allowed = frozenset(roles)

    def dependency(
        request: Request, state: StateDep, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Principal:
        if not principal.roles & allowed:
            audit_denial(state, request, principal.actor, "role")
            raise ForbiddenError(
                f"this action needs one of the roles {', '.join(sorted(r.value for r in allowed))}",
                code="role_required",
            )
        return principal

    dependency.roles = allowed  # type: ignore[attr-defined]  # read by the route-guard test over every route
    return dependency


def enforce_patient_scope(state: AppState, request: Request, principal: Principal, subject: str) -> None:
    """Refuse (403, audited) a patient-scoped token access to another patient's data (``subject``, a reference)."""
    if principal.patient is not None and principal.patient != subject:
        audit_denial(state, request, principal.actor, "patient_scope")
        raise ForbiddenError("this token is limited to another patient", code="patient_scope")


def site_job(state: AppState, request: Request, principal: Principal, job: JobRecord) -> JobRecord:
    """``job``, if it is the caller's site's or was referred to it.

    Another site's job answers 404 as an unknown one (audited as denied: ``other_site``).
    """
    if job.site in visible_sites(principal.site, state.settings.site):
        return job
    with state.database.session() as session:
        referred = is_referred(session, job.id, principal.site)
    if not referred:
        audit_denial(state, request, principal.actor, "other_site")
        raise JobNotFoundError(f"no job {job.id}", code="job_not_found")
    return job


def patient_job(state: AppState, request: Request, principal: Principal, job: JobRecord) -> JobRecord:
    """``job``, if the caller's site holds it and they may see its patient (403, audited).

    A patient-scoped token reads only its own patient's.
    """
    site_job(state, request, principal, job)
    if job.subject or principal.patient is not None:
        enforce_patient_scope(state, request, principal, job.subject)
    return job


def refuse_patient_scoped(state: AppState, request: Request, principal: Principal, what: str) -> None:
    """Refuse (403, audited) a patient-scoped token access to ``what``, which holds many patients' data."""
    if principal.patient is not None:
        audit_denial(state, request, principal.actor, "patient_scope")
        raise ForbiddenError(f"this token is limited to one patient; {what} holds many patients' data",
                             code="patient_scope")


def scoped_patient_id(principal: Principal) -> str | None:
    """The patient ID a patient-scoped caller is limited to (``Patient/<id>`` without its prefix); ``None`` if any."""
    return principal.patient.removeprefix("Patient/") if principal.patient is not None else None


ALL_ROLES = tuple(Role)


PatientRef = Annotated[str, Query(pattern=PATIENT_REFERENCE, description="Patient/<id>")]


def window_start(since: dt.datetime | None, default: dt.timedelta) -> dt.datetime:
    """Where a time-series read starts: ``since`` (naive taken as UTC), or ``default`` ago."""
    start = since or dt.datetime.now(dt.UTC) - default
    return start if start.tzinfo else start.replace(tzinfo=dt.UTC)


def _iso(pattern: str, example: str) -> BeforeValidator:
    """Only ISO 8601 text (not a bare number, which pydantic would take as seconds since 1970)."""
    matcher = re.compile(pattern)

    def check(value: object) -> object:
        if isinstance(value, str) and not matcher.match(value):
            raise ValueError(f"expected ISO 8601, e.g. {example}")
        return value

    return BeforeValidator(check)


IsoDateTime = Annotated[dt.datetime, _iso(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", "2026-12-01T08:00:00Z")]
IsoDate = Annotated[dt.date, _iso(r"^\d{4}-\d{2}-\d{2}$", "2026-12-01")]
