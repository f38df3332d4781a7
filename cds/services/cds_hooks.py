"""CDS Hooks use cases: a ``patient-view`` call answered with risk cards, and the EHR's feedback on cards.

The patient's record comes from the prefetch when it is complete, else from the CDS Client's FHIR server with the
access token it handed over; Conditions and medications from either are the complete active lists, so absence
counts as "no". Every card's score is released (stored and audited) with the call's own audit event, in one
transaction, before the answer leaves.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.orm import Session

from cds.errors import BackendUnavailableError, InvalidInputError, PreconditionFailedError
from cds.interop.card_language import Language
from cds.interop.cds_hooks import OPTIONAL_PREFETCH, PREFETCH, Card, FeedbackItem, HookRequest, card_for, merge_prefetch
from cds.interop.fhir_inputs import parse_bundle
from cds.interop.follow_up_card import follow_up_card
from cds.services import follow_up
from cds.services.engine import Engine
from cds.services.risk import assess_record, release_panel
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.sites import actor_sites
from cds.store.tables import HookFeedbackRow

SERVICE_ID = "cds-risk"
CLIENT_ROLE = "cds_client"


def client_actor(issuer: str, subject: str) -> Actor:
    """The actor a verified CDS Client is recorded as."""
    return Actor(subject=f"cds-client:{issuer}#{subject}", role=CLIENT_ROLE)


def fetch_record(request: HookRequest, patient_id: str, keys: list[str]) -> dict[str, Any]:
    """The resources of the prefetch templates ``keys``, fetched from the CDS Client's FHIR server.

    Raises:
        PreconditionFailedError: ``prefetch_missing``: no FHIR server or authorization to fetch with (412).
        BackendUnavailableError: ``fhir_fetch``: the FHIR server failed (503).
    """
    if request.fhirServer is None or request.fhirAuthorization is None:
        raise PreconditionFailedError(
            f"prefetch lacks {', '.join(keys)} and no fhirServer with fhirAuthorization was given",
            code="prefetch_missing",
        )
    headers = {"Authorization": f"Bearer {request.fhirAuthorization.access_token}", "Accept": "application/fhir+json"}
    fetched: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=request.fhirServer.rstrip("/") + "/", headers=headers, timeout=10.0) as fhir:
            for key in keys:
                response = fhir.get(PREFETCH[key].replace("{{context.patientId}}", patient_id))
                response.raise_for_status()
                fetched[key] = response.json()
    except httpx.HTTPError as exc:
        raise BackendUnavailableError(f"FHIR server fetch failed: {type(exc).__name__}", code="fhir_fetch") from exc
    return fetched


def _fetch_missing(request: HookRequest, patient_id: str, prefetch: dict[str, Any]) -> dict[str, Any]:
    """What the prefetch lacks, from the CDS Client's FHIR server; the optional keys only when there is one."""
    missing = [key for key in PREFETCH if not prefetch.get(key)]
    can_fetch = request.fhirServer is not None and request.fhirAuthorization is not None
    if not can_fetch:
        missing = [key for key in missing if key not in OPTIONAL_PREFETCH]
    return fetch_record(request, patient_id, missing) if missing else {}


def patient_view(engine: Engine, request: HookRequest, *, actor: Actor, base_url: str,
                 language: Language = Language.EN,
                 released_with: Callable[[Session], object] | None = None) -> list[Card]:  # fmt: skip
    """The cards for the patient in context, in ``language``.

    One per risk topic, with score and band, or why not; one per chronic-disease registry the patient is in, with
    control and follow-up. ``released_with`` is written in the transaction that releases the cards (the call's
    token recorded as used); if it raises, nothing is released.

    Raises:
        InvalidInputError: ``wrong_hook``, ``missing_context``, ``patient_mismatch`` or an input's reason.
        PreconditionFailedError, BackendUnavailableError: See :func:`fetch_record`.
    """
    if request.hook != "patient-view":
        raise InvalidInputError(f"service {SERVICE_ID} answers patient-view, not {request.hook!r}", code="wrong_hook")
    patient_id = str(request.context.get("patientId") or "")
    if not patient_id:
        raise InvalidInputError("context.patientId is required", code="missing_context")
    prefetch = request.prefetch or {}
    sources = {**prefetch, **_fetch_missing(request, patient_id, prefetch)}
    extracted = parse_bundle(merge_prefetch(sources), complete_lists=True,
                             stale_days=engine.settings.risk_stale_days)
    subject = f"Patient/{patient_id}"
    if extracted.patient_reference not in (None, subject):
        raise InvalidInputError("the prefetched Patient is not the patient in context", code="patient_mismatch")
    entries = assess_record(extracted, engine.settings.risk_population)

    def release_cards(session: Session) -> None:
        if released_with is not None:
            released_with(session)
        release_panel(session, entries, subject=subject, actor=actor)
        record_event(session, AuditAction.HOOKS_CALL, actor, f"cds-services/{SERVICE_ID}", subject=subject,
                     detail={"hookInstance": request.hookInstance, "cards": len(entries)})

    engine.database.write(release_cards)
    for entry in entries:
        if entry.result is not None:
            engine.metrics.count_scored(entry.result.method.name, entry.result.status.value)
    follow_ups = follow_up.statuses(engine, condition=None, sites=actor_sites(actor, engine.settings.site),
                                    patient=subject, actor=actor, audited=False)  # the hooks.call event covers it
    return [card_for(entry, base_url, language) for entry in entries] + [
        follow_up_card(status, language) for status in follow_ups]


def record_feedback(engine: Engine, items: list[FeedbackItem], *, actor: Actor) -> int:
    """Store the clinician's responses to cards (accepted or overridden, with reasons), each audited."""
    now = dt.datetime.now(dt.UTC)
    with engine.database.session() as session:
        for item in items:
            session.add(HookFeedbackRow(service_id=SERVICE_ID, card=item.card, outcome=item.outcome,
                                        payload=json.dumps(item.model_dump(), separators=(",", ":")),
                                        client=actor.subject, received_at=now, site=actor.site))  # fmt: skip
            record_event(session, AuditAction.HOOKS_FEEDBACK, actor, f"card/{item.card}",
                         detail={"feedback": item.outcome})
    return len(items)
