"""``/v1/jobs``: a cohort job's state and outcome, and its scored file.

Pre-reads and slide reads have routes of their own, which check the patient (``/v1/preread``,
``/v1/pathology/jobs``); here only cohort jobs are answered, and never to a patient-scoped token (a cohort holds
many patients). Every read is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from cds.results.jobs import JobKind, JobRecord, RiskFilePayload
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, StateDep, refuse_patient_scoped, require, site_job
from cds.store import jobs
from cds.store.audit import AuditAction, record_event

router = APIRouter(tags=["jobs"])
Clinical = Annotated[Principal, Depends(require(Role.CLINICIAN, Role.ADMIN))]


class JobPublic(BaseModel):
    """A job's state and, when done, its outcome."""

    id: str
    kind: str
    state: str
    attempts: int
    error: str
    result: dict[str, Any] | None
    created_at: str
    updated_at: str
    subject: str = ""  # the patient it is about (FHIR reference) as sent with it; empty when none was


def public_job(job: JobRecord) -> JobPublic:
    """The API view of a job."""
    return JobPublic(id=job.id, kind=job.kind.value, state=job.state, attempts=job.attempts, error=job.error,
                     subject=job.subject,
                     result=job.outcome.model_dump(mode="json") if job.outcome is not None else None,
                     created_at=job.created_at.isoformat(), updated_at=job.updated_at.isoformat())  # fmt: skip


@router.get("/v1/jobs/{job_id}")
def job_status(job_id: str, request: Request, state: StateDep, engine: EngineDep, principal: Clinical) -> JobPublic:
    """A cohort job's state (queued, running, done, failed), attempts and result summary (audited)."""
    refuse_patient_scoped(state, request, principal, "a cohort job")
    with engine.database.session() as session:
        job = jobs.read_job(session, job_id, kind=JobKind.RISK_FILE)
    site_job(state, request, principal, job)
    with engine.database.session() as session:
        record_event(session, AuditAction.JOB_READ, principal.actor, f"Job/{job_id}")
    return public_job(job)


@router.get("/v1/jobs/{job_id}/result", response_class=FileResponse)
def job_result(job_id: str, request: Request, state: StateDep, engine: EngineDep, principal: Clinical
               ) -> FileResponse:  # fmt: skip
    """The scored cohort (Parquet) of a finished cohort job; the download is audited."""
    refuse_patient_scoped(state, request, principal, "a cohort job")
    with engine.database.session() as session:
        job = jobs.read_job(session, job_id, kind=JobKind.RISK_FILE, done=True)
    site_job(state, request, principal, job)
    with engine.database.session() as session:
        record_event(session, AuditAction.JOB_RESULT_READ, principal.actor, f"Job/{job_id}")
    return FileResponse(job.payload_as(RiskFilePayload).output, media_type="application/vnd.apache.parquet",
                        filename=f"{job_id}.parquet")
