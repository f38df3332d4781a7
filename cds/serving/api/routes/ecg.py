"""``/v1/ecg/jobs``: upload an ECG → durable job → measurements, rhythm and flags; the view's data; reviews.

A cardiologist reviews each item of a read (rhythm, measurements, flags).

``POST`` streams the body to disk (DICOM 12-lead or general ECG waveform, HL7 aECG XML, or the CSV layout; a WFDB
record is two files, read by ``cds ecg``; capped by ``CDS_MAX_UPLOAD_BYTES``) and queues an ``ecg`` job
(:mod:`cds.services.ecg`) read with ``CDS_ECG_MODEL``; DICOM ECGs sent by STOW-RS are queued the same way. ``GET``
lists the caller's reads, newest first, critical ones marked; a job's state and answer, its files by the names the
output layout gives them (``result.json``, ``diagnostic-report.json``, ``ecg-12-lead.png`` / ``.pdf``),
``signals`` (the twelve leads for the view), and ``reviews`` (``GET`` the history, ``POST`` one item's review). An
optional ``subject`` (``Patient/<id>``) ties an ECG to a patient: patient-scoped tokens may only read their own.
Uploads, reads, reviews and refusals are audited.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from cds.results.jobs import EcgOutcome, EcgPayload, JobKind, JobRecord
from cds.services import ecg, ecg_signing, report_signing
from cds.services.job_reads import list_reads, record_read_event
from cds.serving.api import etags
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, StateDep, enforce_patient_scope, patient_job, require
from cds.serving.api.routes.jobs import JobPublic, public_job
from cds.serving.api.signatures import SignaturePublic, SignRequest, signature_public
from cds.serving.api.uploads import discarded_on_failure, save_upload
from cds.store.audit import AuditAction
from cds.store.jobs import QUEUED
from cds.store.tables import EcgReviewRow

router = APIRouter(prefix="/v1/ecg/jobs", tags=["ecg"])
Cardiology = Annotated[Principal, Depends(require(Role.CARDIOLOGIST, Role.ADMIN))]
SUFFIXES = {".dcm", ".xml", ".csv", ".txt"}
ECG_NAME = r"(?i)^[^\x00]*\.(" + "|".join(sorted(suffix[1:] for suffix in SUFFIXES)) + ")$"
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@router.post("", status_code=202, openapi_extra={"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1}}}}})  # fmt: skip
async def submit_ecg(
    request: Request, state: StateDep, engine: EngineDep, principal: Cardiology,
    filename: Annotated[str, Query(min_length=1, max_length=200, pattern=ECG_NAME,
                                   description=f"e.g. ecg.dcm; its extension ({', '.join(sorted(SUFFIXES))}) "
                                               "tells the reader what the file is")],  # fmt: skip
    subject: Annotated[str, Query(max_length=200, description="FHIR reference of the patient")] = "",
    sex: Annotated[str | None, Query(pattern="^(male|female)$", description="for the ST and QTc limits")] = None,
    age: Annotated[float | None, Query(ge=0, le=130, description="years, for the V2-V3 ST limits")] = None,
) -> JSONResponse:  # fmt: skip
    """Queue an ECG for a pre-read; 202 with the job in ``Location``."""
    if subject:
        enforce_patient_scope(state, request, principal, subject)
    suffix = Path(filename).suffix.lower()
    folder = engine.settings.data_dir / "ecg" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    source = folder / (SAFE_NAME.sub("_", Path(filename).stem)[:100] + suffix)
    with discarded_on_failure(folder):
        await save_upload(request, source, what="uploaded file")
        payload = EcgPayload(file=source, output=folder / "outputs", model=engine.settings.ecg_model, sex=sex,
                             age_years=age)  # fmt: skip
        job_id = ecg.queue_ecg(engine, payload, subject=subject, actor=principal.actor)
    return JSONResponse({"job_id": job_id, "state": QUEUED.value}, status_code=202,
                        headers={"Location": f"/v1/ecg/jobs/{job_id}"})  # fmt: skip


class EcgJobSummary(BaseModel):
    """One ECG read: its state and, when done, the rhythm, rate and flags."""

    id: str
    state: str
    file: str
    subject: str
    created_by: str
    created_at: str
    updated_at: str
    rhythm: str | None
    heart_rate_bpm: float | None
    critical: bool | None
    flags: list[str]
    model: str | None
    error: str


class EcgJobPage(BaseModel):
    """A page of the caller's ECG reads."""

    items: list[EcgJobSummary]
    total: int
    limit: int
    offset: int


def _summary(job: JobRecord) -> EcgJobSummary:
    outcome = job.outcome if isinstance(job.outcome, EcgOutcome) else None
    return EcgJobSummary(
        id=job.id, state=job.state, file=job.payload_as(EcgPayload).file.name, subject=job.subject,
        created_by=job.created_by, created_at=job.created_at.isoformat() + "+00:00",
        updated_at=job.updated_at.isoformat() + "+00:00", rhythm=outcome.rhythm.label if outcome else None,
        heart_rate_bpm=outcome.measurements.heart_rate_bpm if outcome else None,
        critical=outcome.critical if outcome else None, flags=[f.code for f in outcome.flags] if outcome else [],
        model=outcome.model if outcome else None, error=job.error_code)  # fmt: skip


@router.get("")
def list_ecgs(
    engine: EngineDep, principal: Cardiology,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> EcgJobPage:  # fmt: skip
    """The caller's ECG reads, newest first (an administrator's list holds everyone's)."""
    page = list_reads(engine, JobKind.ECG, AuditAction.ECG_JOBS_READ,
                      created_by=None if Role.ADMIN in principal.roles else principal.subject,
                      patient=principal.patient, limit=limit, offset=offset, actor=principal.actor)
    return EcgJobPage(items=[_summary(job) for job in page.jobs], total=page.total, limit=limit, offset=offset)


def ecg_job(state: StateDep, engine: EngineDep, request: Request, principal: Cardiology, job_id: str) -> JobRecord:
    """The ECG job ``job_id``, if the caller may see its patient."""
    return patient_job(state, request, principal, ecg.ecg_job(engine, job_id))


def finished_ecg_job(state: StateDep, engine: EngineDep, request: Request, principal: Cardiology,
                     job_id: str) -> JobRecord:  # fmt: skip
    """The finished ECG job ``job_id``, if the caller may see its patient."""
    return patient_job(state, request, principal, ecg.ecg_job(engine, job_id, done=True))


EcgJob = Annotated[JobRecord, Depends(ecg_job)]
FinishedEcgJob = Annotated[JobRecord, Depends(finished_ecg_job)]


@router.get("/{job_id}")
def ecg_status(job: EcgJob, engine: EngineDep, principal: Cardiology) -> JobPublic:
    """The job's state and, when done, the rhythm, measurements and flags."""
    record_read_event(engine, AuditAction.ECG_RESULT_READ, principal.actor, job)
    return public_job(job)


class EcgSignalsPublic(BaseModel):
    """The twelve leads for the reader's view: names, rate and values (mV), beat times (s)."""

    leads: list[str]
    sampling_hz: float
    values: list[list[float]]
    r_peaks_s: list[float]


@router.get("/{job_id}/signals")
def ecg_signals(job: FinishedEcgJob, engine: EngineDep, principal: Cardiology) -> EcgSignalsPublic:
    """The ECG's twelve leads (at most 500 Hz) and the detected beats, for the reader's view."""
    signals = ecg.ecg_signals(job)
    record_read_event(engine, AuditAction.ECG_RESULT_READ, principal.actor, job, file="signals")
    return EcgSignalsPublic(leads=list(signals.leads), sampling_hz=signals.sampling_hz, values=signals.values,
                            r_peaks_s=list(ecg.beat_times(job)))  # fmt: skip


class ReviewIn(BaseModel):
    """One item's review: ``accepted``, ``corrected`` (with ``value``) or, for a flag, ``rejected``."""

    item: str = Field(min_length=1, max_length=40)
    verdict: str = Field(pattern="^(accepted|corrected|rejected)$")
    value: str = Field(default="", max_length=100)
    comment: str = Field(default="", max_length=4000)


class ReviewOut(BaseModel):
    """A stored review."""

    id: int
    item: str
    verdict: str
    ai_value: str
    value: str
    comment: str
    actor: str
    created_at: str


@router.post("/{job_id}/reviews", status_code=201)
def review_item(body: ReviewIn, job: FinishedEcgJob, request: Request, response: Response, engine: EngineDep,
                principal: Cardiology) -> ReviewOut:  # fmt: skip
    """Accept or correct the rhythm or a measurement, or accept or reject a flag; stored and audited.

    412 ``stale_verdicts`` when ``If-Match`` names an older version of the reviews than there is; ``ETag``: their
    new version.
    """
    row = ecg.review_item(engine, job, item=body.item, verdict=body.verdict, value=body.value,
                          comment=body.comment, actor=principal.actor, expected=etags.if_match(request))  # fmt: skip
    response.headers["ETag"] = etags.etag(row.id)
    return _review(row)


@router.get("/{job_id}/reviews")
def list_reviews(job: FinishedEcgJob, response: Response, engine: EngineDep,
                 principal: Cardiology) -> list[ReviewOut]:  # fmt: skip
    """Every review of the read, newest first (the newest per item is current); ``ETag``: their version."""
    found = ecg.reviews(engine, job, actor=principal.actor)
    response.headers["ETag"] = etags.etag(etags.version_of(found))
    return [_review(row) for row in found]


def _review(row: EcgReviewRow) -> ReviewOut:
    return ReviewOut(id=row.id, item=row.item, verdict=row.verdict, ai_value=row.ai_value, value=row.value,
                     comment=row.comment, actor=row.actor, created_at=row.created_at.isoformat() + "+00:00")


@router.post("/{job_id}/signatures", status_code=201)
def sign_read(body: SignRequest, job: FinishedEcgJob, request: Request, engine: EngineDep,
              principal: Cardiology) -> SignaturePublic:  # fmt: skip
    """Sign the read's report (again: amend it) after reviewing the rhythm and every flag.

    422 ``unreviewed_items`` names what still lacks your review; 412 ``stale_verdicts`` when ``If-Match`` names an
    older version of the reviews than there is.
    """
    etags.hold(request, ecg.reviews_at(engine, job))
    row = ecg_signing.sign_ecg(engine, job, impression=body.impression, name=body.signer_name,
                               actor=principal.actor)  # fmt: skip
    return signature_public(row)


@router.get("/{job_id}/signatures")
def list_signatures(job: FinishedEcgJob, engine: EngineDep, principal: Cardiology) -> list[SignaturePublic]:
    """Every signed version of the read's report, oldest first (the read is audited)."""
    rows = ecg_signing.ecg_signatures(engine, job)
    record_read_event(engine, AuditAction.ECG_SIGNATURES_READ, principal.actor, job, returned=len(rows))
    return [signature_public(row) for row in rows]


@router.get("/{job_id}/shared-bundle", response_class=JSONResponse,
            responses={200: {"content": {"application/fhir+json": {}}}})  # fmt: skip
def shared_bundle(job: FinishedEcgJob, engine: EngineDep, principal: Cardiology) -> JSONResponse:
    """The signed report as a Bundle this site signed for the other consortium members (``consortium.share``)."""
    bundle = report_signing.shared_bundle(engine, ecg_signing.layout_of(job), actor=principal.actor)
    return JSONResponse(bundle, media_type="application/fhir+json")


@router.get("/{job_id}/{name}", response_class=FileResponse)
def ecg_output(name: str, job: FinishedEcgJob, engine: EngineDep, principal: Cardiology) -> FileResponse:
    """One output of a finished read.

    ``result.json``, ``diagnostic-report.json``, ``ecg-12-lead.png`` or ``ecg-12-lead.pdf``.
    """
    path, media_type = ecg.ecg_output(job, name)
    record_read_event(engine, AuditAction.ECG_RESULT_READ, principal.actor, job, file=name)
    return FileResponse(path, media_type=media_type)
