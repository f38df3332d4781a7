"""Pathology: upload a slide or a tile → durable job → tumour read-out, FHIR report and heatmap.

``POST /v1/pathology/jobs`` streams the body to disk (pyramidal TIFF, SVS/NDPI where OpenSlide reads them, DICOM
WSI, PNG or JPEG; capped by ``CDS_MAX_UPLOAD_BYTES``) and queues a ``pathology`` job that runs the slide pipeline
(:class:`cds.pipelines.pathology.pipeline.SlidePipeline`) with ``CDS_PATHOLOGY_MODEL``. The job's result is the
slide-level answer (or ``no_tissue``); its files (``result.json``, ``diagnostic-report.json``, ``heatmap.png``)
are served by name. An optional ``subject`` (``Patient/<id>``) ties the slide to a patient: patient-scoped
tokens may only read their own. Uploads, reads and refusals are audited.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from cds.errors import InvalidInputError, ModelNotFoundError
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import StateDep, enforce_patient_scope, require
from cds.serving.api.routes.jobs import JobPublic, public_job
from cds.serving.api.uploads import save_upload
from cds.serving.jobs import PATHOLOGY
from cds.store import jobs
from cds.store.audit import AuditEvent, append_event

router = APIRouter(prefix="/v1/pathology", tags=["pathology"])
Pathology = Annotated[Principal, Depends(require(Role.PATHOLOGIST, Role.ADMIN))]
SUFFIXES = {".tif", ".tiff", ".svs", ".ndpi", ".mrxs", ".dcm", ".png", ".jpg", ".jpeg"}
OUTPUTS = {"result.json": "application/json", "diagnostic-report.json": "application/json", "heatmap.png": "image/png"}
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@router.post("/jobs", status_code=202, openapi_extra={"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})  # fmt: skip
async def submit_slide(
    request: Request,
    state: StateDep,
    principal: Pathology,
    filename: Annotated[str, Query(min_length=1, max_length=200, description="e.g. slide.tiff; its extension "
                                   "tells the reader what the file is")],  # fmt: skip
    subject: Annotated[str, Query(max_length=200, description="FHIR reference of the patient")] = "",
) -> JSONResponse:
    """Queue a slide or tile for a tumour read-out; 202 with the job in ``Location``."""
    if subject:
        enforce_patient_scope(state, request, principal, subject)
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInputError(f"file type {suffix or '(none)'} is not read; send one of {sorted(SUFFIXES)}",
                                code="unsupported_media_type")  # fmt: skip
    folder = state.settings.data_dir / "pathology" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    source = folder / (SAFE_NAME.sub("_", Path(filename).stem)[:100] + suffix)
    await save_upload(request, source, what="uploaded file")
    payload = {"file": str(source), "output": str(folder / "outputs"), "model": state.settings.pathology_model,
               "actor": principal.subject, "role": principal.role_text, "subject": subject}  # fmt: skip
    with state.database.session() as session:
        job_id = jobs.enqueue(session, kind=PATHOLOGY, payload=payload, actor=principal.subject,
                              role=principal.role_text, subject=subject,
                              max_pending=state.settings.max_pending_jobs)  # fmt: skip
    return JSONResponse({"job_id": job_id, "state": jobs.QUEUED}, status_code=202,
                        headers={"Location": f"/v1/pathology/jobs/{job_id}"})  # fmt: skip


def pathology_job(state: Any, request: Request, principal: Principal, job_id: str, *, done: bool = False) -> Any:
    """The pathology job ``job_id`` (finished when ``done``), if the caller may see its patient (403, audited)."""
    with state.database.session() as session:
        job = jobs.get_job(session, job_id, kind=PATHOLOGY, done=done)
    if job.subject or principal.patient is not None:  # a patient-scoped token reads only its patient's slides
        enforce_patient_scope(state, request, principal, job.subject)
    return job


@router.get("/jobs/{job_id}")
def slide_status(job_id: str, request: Request, state: StateDep, principal: Pathology) -> JobPublic:
    """The job's state and, when done, the slide-level answer (score, tumour area, call) or ``no_tissue``."""
    job = pathology_job(state, request, principal, job_id)
    with state.database.session() as session:
        append_event(session, AuditEvent(actor=principal.subject, role=principal.role_text,
                                         action="pathology.result.read", resource=f"Job/{job_id}",
                                         subject=job.subject, outcome="success"))  # fmt: skip
    return public_job(job)


@router.get("/jobs/{job_id}/{name}", response_class=FileResponse)
def slide_output(job_id: str, name: str, request: Request, state: StateDep, principal: Pathology) -> FileResponse:
    """One output of a finished job: ``result.json``, ``diagnostic-report.json`` or ``heatmap.png``."""
    job = pathology_job(state, request, principal, job_id, done=True)
    path = Path(json.loads(job.payload)["output"]) / name
    if name not in OUTPUTS or not path.is_file():
        raise ModelNotFoundError(f"no output {name!r} for job {job_id} (a slide without tissue has no heatmap)",
                                 code="not_found")  # fmt: skip
    result = json.loads(job.result)
    with state.database.session() as session:
        append_event(session, AuditEvent(actor=principal.subject, role=principal.role_text,
                                         action="pathology.result.read", resource=f"Job/{job_id}",
                                         subject=job.subject, outcome="success", model=result.get("model", ""),
                                         input_sha256=result.get("input_sha256", ""),
                                         detail={"file": name}))  # fmt: skip
    return FileResponse(path, media_type=OUTPUTS[name])
