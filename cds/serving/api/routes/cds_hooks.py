"""CDS Hooks 2.0: discovery, the ``patient-view`` risk service, and card feedback.

Callers are CDS Clients (EHRs) authenticated by their signed JWT (:mod:`cds.serving.api.hooks_auth`), not by user
tokens. The use cases are :mod:`cds.services.cds_hooks`: every card's score is stored and audited before the
response is sent.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from cds.errors import NotAuthenticatedError, NotFoundError
from cds.interop.card_language import negotiate
from cds.interop.cds_hooks import PREFETCH, Feedback, HookRequest, HookResponse
from cds.services import cds_hooks
from cds.services.cds_hooks import CLIENT_ROLE, SERVICE_ID, client_actor
from cds.serving.api.deps import EngineDep, StateDep
from cds.serving.api.hooks_auth import HookClient
from cds.store.audit import Actor, AuditAction, AuditOutcome, record_event

router = APIRouter(tags=["cds-hooks"])
SERVICE = {
    "hook": "patient-view",
    "id": SERVICE_ID,
    "title": "Chronic-disease risk (cardiovascular, diabetes, kidney)",
    "description": "Cardiovascular (PREVENT / Pooled Cohort; secondary prevention for established ASCVD), diabetes "
    "(Chinese Diabetes Risk Score / FINDRISC) and kidney (CKD-EPI 2021 + KDIGO) risk from the patient's record, with "
    "the inputs that drove each score; cards in Simplified Chinese or English (Accept-Language). Not for diagnostic "
    "use.",
    "prefetch": PREFETCH,
    "usageRequirements": "Send Patient, Observations (LOINC), the complete active Conditions and active "
    "MedicationRequests (ATC-coded) as prefetch, or fhirServer with fhirAuthorization (patient/*.read). Absent "
    "diabetes and antihypertensive/statin entries are read as 'no' only from these complete lists.",
}


def base_url(request: Request, state: StateDep) -> str:
    """The service's external base URL: configured (``CDS_PUBLIC_URL``); as requested only in dev mode."""
    settings = state.settings
    return (settings.public_url or (str(request.base_url) if settings.dev_mode else "")).rstrip("/")


def _denied(request: Request, state: StateDep, exc: NotAuthenticatedError) -> None:
    with state.database.session() as denial:
        record_event(denial, AuditAction.ACCESS_DENIED, Actor("cds-client:unknown", CLIENT_ROLE),
                     f"POST {request.url.path}", outcome=AuditOutcome.DENIED, detail={"reason": exc.code})


def verified_client(request: Request, state: StateDep) -> HookClient:
    """The verified CDS Client of this call (401 otherwise, audited); its ``jti`` is not recorded yet."""
    header = request.headers.get("authorization", "")
    audience = base_url(request, state) + request.url.path
    try:
        if not header.lower().startswith("bearer "):
            raise NotAuthenticatedError("CDS Client JWT required", code="missing_credentials")
        return state.hook_verifier.verify(header[7:].strip(), audience)
    except NotAuthenticatedError as exc:
        _denied(request, state, exc)
        raise


Verified = Annotated[HookClient, Depends(verified_client)]


def _use_up(request: Request, state: StateDep, client: HookClient) -> None:
    """Record the call's ``jti`` now (401 ``token_replayed``, audited, when it was used before)."""
    try:
        state.database.write(functools.partial(state.hook_verifier.remember, client=client))
    except NotAuthenticatedError as exc:
        _denied(request, state, exc)
        raise


def hook_client(request: Request, state: StateDep, client: Verified) -> HookClient:
    """The verified CDS Client of this call, its ``jti`` recorded at once."""
    _use_up(request, state, client)
    return client


Client = Annotated[HookClient, Depends(hook_client)]


def _service(service_id: str) -> None:
    if service_id != SERVICE_ID:
        raise NotFoundError(f"no CDS service {service_id!r}; available: {SERVICE_ID}", code="service_not_found")


@router.get("/cds-services")
def discovery() -> dict[str, list[dict[str, Any]]]:
    """The CDS Hooks discovery document."""
    return {"services": [SERVICE]}


@router.post("/cds-services/{service_id}", response_model_exclude_none=True)
def call_service(service_id: str, body: HookRequest, request: Request, state: StateDep, engine: EngineDep,
                 client: Verified) -> HookResponse:  # fmt: skip
    """Cards for the patient in context: one per topic, with score and band, or what is missing.

    The call's ``jti`` is recorded in the transaction that releases its cards (a replay racing it is refused
    there), or on its own when the call fails before that: either way a token serves one call.
    """
    _service(service_id)
    language = negotiate(request.headers.get("accept-language"), state.settings.card_language)
    try:
        cards = cds_hooks.patient_view(engine, body, actor=client_actor(client.issuer, client.subject),
                                       base_url=base_url(request, state), language=language,
                                       released_with=functools.partial(state.hook_verifier.remember, client=client))
    except NotAuthenticatedError as exc:  # replayed: found when its cards were to be released
        _denied(request, state, exc)
        raise
    except Exception:
        _use_up(request, state, client)
        raise
    return HookResponse(cards=cards)


@router.post("/cds-services/{service_id}/feedback", status_code=200)
def feedback(service_id: str, body: Feedback, engine: EngineDep, client: Client) -> dict[str, int]:
    """Store the clinician's response to cards (accepted or overridden, with reasons)."""
    _service(service_id)
    stored = cds_hooks.record_feedback(engine, body.feedback, actor=client_actor(client.issuer, client.subject))
    return {"stored": stored}
