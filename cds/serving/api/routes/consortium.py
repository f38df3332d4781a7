"""``/v1/consortium/shared-results``: signed results from other member sites, verified before they are kept.

``POST`` takes a FHIR Bundle a member signed (:mod:`cds.consortium.bundle_signature`): it is kept only when its
signature verifies against that member's published key (``CDS_CONSORTIUM_KEYS_DIR``) and it is one signed report
about one patient; 201 with what was kept, 200 when the same Bundle was kept before, 422 with the reason otherwise
(``unsigned``, ``unknown_signer``, ``signer_mismatch``, ``signature_invalid``, ``not_signed``, ``mixed_subjects``,
...). ``GET`` lists them (one patient's with ``subject``) and returns one Bundle as it was signed. Imports, refusals
and reads are audited.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cds.errors import NotFoundError
from cds.services import consortium
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, StateDep, enforce_patient_scope, require
from cds.store.audit import AuditAction, record_event
from cds.store.sites import visible_sites
from cds.store.tables import SharedResultRow

router = APIRouter(prefix="/v1/consortium/shared-results", tags=["consortium"])
Reader = Annotated[Principal, Depends(require(Role.RADIOLOGIST, Role.PATHOLOGIST, Role.CARDIOLOGIST, Role.CLINICIAN,
                                              Role.ADMIN))]  # fmt: skip


class SharedResultSummary(BaseModel):
    """A kept shared result: where it came from, who signed it, what it is about."""

    id: str
    origin_site: str
    kid: str
    signed_at: str
    report_identifier: str
    report_status: str
    subject: str
    title: str
    imported_by: str
    imported_at: str


def _summary(row: SharedResultRow) -> SharedResultSummary:
    return SharedResultSummary(id=row.id, origin_site=row.origin_site, kid=row.kid, signed_at=row.signed_at,
                               report_identifier=row.report_identifier, report_status=row.report_status,
                               subject=row.subject, title=row.title, imported_by=row.imported_by,
                               imported_at=row.imported_at.isoformat())  # fmt: skip


@router.post("", status_code=201, response_model=SharedResultSummary)
def import_shared_result(
    bundle: Annotated[dict[str, Any], Body(description="A FHIR R4 collection Bundle signed by a member site")],
    http: Request, state: StateDep, engine: EngineDep, principal: Reader,
) -> JSONResponse:  # fmt: skip
    """Verify and keep a member's signed result (once)."""
    def authorize(subject: str) -> None:
        if principal.patient is not None:
            enforce_patient_scope(state, http, principal, subject)

    imported = consortium.import_shared(engine.database, engine.settings, bundle, actor=principal.actor,
                                        authorize=authorize)  # fmt: skip
    return JSONResponse(_summary(imported.row).model_dump(), status_code=201 if imported.created else 200,
                        headers={"Location": f"/v1/consortium/shared-results/{imported.row.id}"})  # fmt: skip


@router.get("")
def list_shared_results(
    http: Request, state: StateDep, engine: EngineDep, principal: Reader,
    subject: Annotated[str, Query(max_length=300, description="Only this patient's (the report's subject)")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[SharedResultSummary]:  # fmt: skip
    """Kept shared results, newest first (audited); a patient-scoped caller gets only their patient's."""
    if subject.startswith("Patient/"):
        enforce_patient_scope(state, http, principal, subject)
    if principal.patient is not None:
        subject = principal.patient
    sites = visible_sites(principal.site, engine.settings.site)
    return [_summary(row) for row in consortium.shared_results(engine.database, actor=principal.actor, sites=sites,
                                                                subject=subject, limit=limit)]  # fmt: skip


@router.get("/{shared_id}")
def get_shared_result(shared_id: str, http: Request, state: StateDep, engine: EngineDep,
                      principal: Reader) -> JSONResponse:  # fmt: skip
    """The Bundle as its site signed it (audited)."""
    with engine.database.session() as session:
        row = session.get(SharedResultRow, shared_id)
    if row is None or row.site not in visible_sites(principal.site, engine.settings.site):
        raise NotFoundError(f"no shared result {shared_id}", code="shared_result_not_found")
    if principal.patient is not None:  # checked outside the read's transaction: a refusal is audited on its own
        enforce_patient_scope(state, http, principal, row.subject)
    with engine.database.session() as session:
        record_event(session, AuditAction.CONSORTIUM_RESULTS_READ, principal.actor, f"SharedResult/{row.id}",
                     subject=row.subject, detail={"origin_site": row.origin_site})  # fmt: skip
    return JSONResponse(json.loads(row.bundle), media_type="application/fhir+json")
