"""``/v1/results``: reading stored results; every read is audited and patient-scoped tokens see only their patient."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import StateDep, enforce_patient_scope, require
from cds.store.audit import AuditAction, record_event
from cds.store.results import read_result
from cds.store.sites import visible_sites

router = APIRouter(prefix="/v1/results", tags=["results"])
Reader = Annotated[Principal, Depends(require(Role.CLINICIAN, Role.RADIOLOGIST, Role.PATHOLOGIST, Role.ADMIN))]


class StoredResult(BaseModel):
    """A stored result with its provenance."""

    id: str
    kind: str
    subject: str
    method: str
    input_sha256: str
    created_by: str
    created_at: str
    result: dict[str, Any]


@router.get("/{result_id}")
def get_result(result_id: str, request: Request, state: StateDep, principal: Reader) -> StoredResult:
    """One result; the read (or the refusal of another patient's result) is written to the audit trail."""
    with state.database.session() as session:
        row = read_result(session, result_id, sites=visible_sites(principal.site, state.settings.site))
    enforce_patient_scope(state, request, principal, row.subject)
    with state.database.session() as session:
        record_event(session, AuditAction.RESULT_READ, principal.actor, f"Result/{row.id}", subject=row.subject,
                     model=row.method, input_sha256=row.input_sha256)
    return StoredResult(
        id=row.id, kind=row.kind, subject=row.subject, method=row.method, input_sha256=row.input_sha256,
        created_by=row.created_by, created_at=row.created_at.isoformat(), result=json.loads(row.payload),
    )  # fmt: skip
