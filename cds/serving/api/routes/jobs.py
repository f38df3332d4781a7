"""Background jobs: cohort files scored by an equation or risk model; status and result download."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel

from cds.errors import InvalidInputError, ModelNotFoundError
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import StateDep, require
from cds.serving.api.uploads import save_upload
from cds.serving.jobs import RISK_FILE
from cds.store import jobs
from cds.store.audit import AuditEvent, append_event

router = APIRouter(tags=["jobs"])
Clinical = Annotated[Principal, Depends(require(Role.CLINICIAN, Role.ADMIN))]


class JobPublic(BaseModel):
    """A job's state and, when done, its result."""

    id: str
    kind: str
    state: str
    attempts: int
    error: str
    result: dict[str, Any] | None
    created_at: str
    updated_at: str


@router.post("/v1/risk/{score}/jobs", status_code=202, openapi_extra={
    "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})  # fmt: skip
async def submit_cohort(score: str, request: Request, state: StateDep, principal: Clinical) -> JSONResponse:
    """Queue a cohort CSV (one column per input field) for scoring; answers 202 with the job id."""
    methods = state.risk_methods()
    if score not in methods:
        raise ModelNotFoundError(f"no risk method {score!r}; available: {', '.join(sorted(methods))}")
    if not request.headers.get("content-type", "").startswith("text/csv"):
        raise InvalidInputError("send the cohort as text/csv", code="unsupported_media_type")
    uploads = state.settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    source, target = uploads / f"{name}.csv", uploads / f"{name}-scored.parquet"
    await save_upload(request, source, what="cohort file")
    payload = {"method": score, "input": str(source), "output": str(target)}
    with state.database.session() as session:
        job_id = jobs.enqueue(session, kind=RISK_FILE, payload=payload, actor=principal.subject,
                              role=principal.role_text, max_pending=state.settings.max_pending_jobs)  # fmt: skip
    return JSONResponse({"job_id": job_id, "state": jobs.QUEUED}, status_code=202,
                        headers={"Location": f"/v1/jobs/{job_id}"})  # fmt: skip


def public_job(row: Any) -> JobPublic:
    """The API view of a job row."""
    return JobPublic(id=row.id, kind=row.kind, state=row.state, attempts=row.attempts, error=row.error,
                     result=json.loads(row.result) if row.result else None, created_at=row.created_at.isoformat(),
                     updated_at=row.updated_at.isoformat())  # fmt: skip


@router.get("/v1/jobs/{job_id}")
def job_status(job_id: str, state: StateDep, principal: Clinical) -> JobPublic:
    """A job's state (queued, running, done, failed), attempts and result summary."""
    with state.database.session() as session:
        return public_job(jobs.get_job(session, job_id))


@router.get("/v1/jobs/{job_id}/result", response_class=FileResponse)
def job_result(job_id: str, state: StateDep, principal: Clinical) -> FileResponse:
    """The scored cohort (Parquet) of a finished job; the download is audited."""
    with state.database.session() as session:
        job = jobs.get_job(session, job_id, done=True)
        path = json.loads(job.payload)["output"]
        append_event(session, AuditEvent(actor=principal.subject, role=principal.role_text, action="job.result.read",
                                         resource=f"Job/{job_id}", outcome="success"))  # fmt: skip
    return FileResponse(path, media_type="application/vnd.apache.parquet", filename=f"{job_id}.parquet")
