"""``/v1/jobs``: a background job's state and outcome, and a finished cohort job's scored file."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from pydantic import BaseModel

from cds.results.jobs import JobKind, JobRecord, RiskFilePayload
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, require
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


def public_job(job: JobRecord) -> JobPublic:
    """The API view of a job."""
    return JobPublic(id=job.id, kind=job.kind.value, state=job.state, attempts=job.attempts, error=job.error,
                     result=job.outcome.model_dump(mode="json") if job.outcome is not None else None,
                     created_at=job.created_at.isoformat(), updated_at=job.updated_at.isoformat())  # fmt: skip


@router.get("/v1/jobs/{job_id}")
def job_status(job_id: str, engine: EngineDep, principal: Clinical) -> JobPublic:
    """A job's state (queued, running, done, failed), attempts and result summary."""
    with engine.database.session() as session:
        return public_job(jobs.record(jobs.get_job(session, job_id)))


@router.get("/v1/jobs/{job_id}/result", response_class=FileResponse)
def job_result(job_id: str, engine: EngineDep, principal: Clinical) -> FileResponse:
    """The scored cohort (Parquet) of a finished cohort job; the download is audited."""
    with engine.database.session() as session:
        job = jobs.read_job(session, job_id, kind=JobKind.RISK_FILE, done=True)
        record_event(session, AuditAction.JOB_RESULT_READ, principal.actor, f"Job/{job_id}")
    return FileResponse(job.payload_as(RiskFilePayload).output, media_type="application/vnd.apache.parquet",
                        filename=f"{job_id}.parquet")
