"""``/v1/pathology/jobs``: upload a slide or tile → durable job → tumour read-out; list reads; zoom into a slide.

``POST`` streams the body to disk (pyramidal TIFF, SVS/NDPI where OpenSlide reads them, DICOM WSI, PNG or JPEG;
capped by ``CDS_MAX_UPLOAD_BYTES``) and queues a ``pathology`` job (:mod:`cds.services.pathology`) read with
``CDS_PATHOLOGY_MODEL``. ``GET`` lists the caller's reads, newest first, with the slide-level answer of those that
finished (an administrator sees everyone's); a job's state and answer, its files by the names the output layout
gives them, and ``render/region.png``, a region of the uploaded slide read at the pyramid level that fits the
requested size (the zoom behind the heatmap), and the slide as Deep Zoom tiles (``tiles.dzi``,
``tiles_files/{level}/{column}_{row}.jpeg``; :mod:`cds.services.slide_tiles`) for the viewer. An optional
``subject`` (``Patient/<id>``) ties a slide to a patient: patient-scoped tokens may only read their own. A
pathologist accepts or rejects the slide's AI finding (``.../feedback``) and signs the read (``.../signatures``;
:mod:`cds.services.slide_signing`), whose signed report goes to consortium members as a site-signed Bundle
(``.../shared-bundle``). Uploads, reads, verdicts, signatures and
refusals are audited. The file route is declared last so that no other route is taken for a file name.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel

from cds.results.jobs import JobKind, JobRecord, PathologyOutcome, PathologyPayload
from cds.services import pathology, report_signing, slide_signing, slide_tiles
from cds.services.job_reads import list_reads, record_read_event
from cds.services.slide_tiles import TileFormat
from cds.serving.api import etags
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, StateDep, enforce_patient_scope, patient_job, require
from cds.serving.api.routes.jobs import JobPublic, public_job
from cds.serving.api.signatures import (
    FeedbackCreate,
    FeedbackPublic,
    SignaturePublic,
    SignRequest,
    feedback_public,
    signature_public,
)
from cds.serving.api.uploads import discarded_on_failure, save_upload
from cds.serving.ui import render
from cds.store.audit import AuditAction
from cds.store.jobs import QUEUED

router = APIRouter(prefix="/v1/pathology/jobs", tags=["pathology"])
Pathology = Annotated[Principal, Depends(require(Role.PATHOLOGIST, Role.ADMIN))]
SUFFIXES = {".tif", ".tiff", ".svs", ".ndpi", ".mrxs", ".dcm", ".png", ".jpg", ".jpeg"}
SLIDE_NAME = r"(?i)^[^\x00]*\.(" + "|".join(sorted(suffix[1:] for suffix in SUFFIXES)) + ")$"
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "PNG image"}}
MAX_SIDE = 1024


@router.post("", status_code=202, openapi_extra={"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1}}}}})  # fmt: skip
async def submit_slide(
    request: Request, state: StateDep, engine: EngineDep, principal: Pathology,
    filename: Annotated[str, Query(min_length=1, max_length=200, pattern=SLIDE_NAME,
                                   description=f"e.g. slide.tiff; its extension ({', '.join(sorted(SUFFIXES))}) "
                                               "tells the reader what the file is")],  # fmt: skip
    subject: Annotated[str, Query(max_length=200, description="FHIR reference of the patient")] = "",
) -> JSONResponse:  # fmt: skip
    """Queue a slide or tile for a tumour read-out; 202 with the job in ``Location``."""
    if subject:
        enforce_patient_scope(state, request, principal, subject)
    suffix = Path(filename).suffix.lower()
    folder = engine.settings.data_dir / "pathology" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    source = folder / (SAFE_NAME.sub("_", Path(filename).stem)[:100] + suffix)
    with discarded_on_failure(folder):
        await save_upload(request, source, what="uploaded file")
        job_id = pathology.queue_slide(engine, source, folder / "outputs", subject=subject, actor=principal.actor)
    return JSONResponse({"job_id": job_id, "state": QUEUED.value}, status_code=202,
                        headers={"Location": f"/v1/pathology/jobs/{job_id}"})  # fmt: skip


class PathologyJobSummary(BaseModel):
    """One slide read: its state and, when done, the slide-level answer."""

    id: str
    state: str
    file: str
    subject: str
    created_by: str
    created_at: str
    updated_at: str
    status: str | None  # scored | no_tissue, when done
    label: str | None
    positive: bool | None
    score: float | None  # the slide score (top-k mean of patch probabilities)
    threshold: float | None
    tumour_area_fraction: float | None
    model: str | None
    error: str


class PathologyJobPage(BaseModel):
    """A page of the caller's slide reads."""

    items: list[PathologyJobSummary]
    total: int
    limit: int
    offset: int


def _summary(job: JobRecord) -> PathologyJobSummary:
    outcome = job.outcome if isinstance(job.outcome, PathologyOutcome) else None
    score = outcome.score if outcome is not None else None
    return PathologyJobSummary(
        id=job.id, state=job.state, file=job.payload_as(PathologyPayload).file.name, subject=job.subject,
        created_by=job.created_by, created_at=job.created_at.isoformat() + "+00:00",
        updated_at=job.updated_at.isoformat() + "+00:00", status=outcome.status.value if outcome else None,
        label=outcome.label if outcome else None, positive=score.positive if score else None,
        score=score.top_k_mean if score else None, threshold=score.threshold if score else None,
        tumour_area_fraction=score.tumour_area_fraction if score else None,
        model=outcome.model if outcome else None, error=job.error_code)  # fmt: skip


@router.get("")
def list_slides(
    engine: EngineDep, principal: Pathology,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> PathologyJobPage:  # fmt: skip
    """The caller's slide reads, newest first (an administrator's list holds everyone's)."""
    page = list_reads(engine, JobKind.PATHOLOGY, AuditAction.PATHOLOGY_JOBS_READ,
                      created_by=None if Role.ADMIN in principal.roles else principal.subject,
                      patient=principal.patient, limit=limit, offset=offset, actor=principal.actor)
    return PathologyJobPage(items=[_summary(job) for job in page.jobs], total=page.total, limit=limit, offset=offset)


def slide_job(state: StateDep, engine: EngineDep, request: Request, principal: Pathology, job_id: str) -> JobRecord:
    """The pathology job ``job_id``, if the caller may see its patient."""
    return patient_job(state, request, principal, pathology.slide_job(engine, job_id))


def finished_slide_job(state: StateDep, engine: EngineDep, request: Request, principal: Pathology,
                       job_id: str) -> JobRecord:  # fmt: skip
    """The finished pathology job ``job_id``, if the caller may see its patient."""
    return patient_job(state, request, principal, pathology.slide_job(engine, job_id, done=True))


SlideJob = Annotated[JobRecord, Depends(slide_job)]
FinishedSlideJob = Annotated[JobRecord, Depends(finished_slide_job)]


@router.get("/{job_id}")
def slide_status(job: SlideJob, engine: EngineDep, principal: Pathology) -> JobPublic:
    """The job's state and, when done, the slide-level answer (score, tumour area, call) or ``no_tissue``."""
    record_read_event(engine, AuditAction.PATHOLOGY_RESULT_READ, principal.actor, job)
    return public_job(job)


Extent = Annotated[int | None, Query(ge=1, le=10_000_000, description="level-0 pixels; default: to the edge")]


@router.get("/{job_id}/render/region.png", response_class=Response, responses=PNG)
def render_region(
    job: FinishedSlideJob, engine: EngineDep, principal: Pathology,
    x: Annotated[int, Query(ge=0, le=10_000_000, description="left edge, level-0 pixels")] = 0,
    y: Annotated[int, Query(ge=0, le=10_000_000, description="top edge, level-0 pixels")] = 0,
    width: Extent = None,
    height: Extent = None,
    size: Annotated[int, Query(ge=16, le=MAX_SIDE, description="longer side of the picture")] = 512,
) -> Response:  # fmt: skip
    """A region of the uploaded slide (level-0 coordinates) as a PNG whose longer side is at most ``size``.

    The region is read at the coarsest pyramid level that still has a pixel for every output pixel; a region
    smaller than ``size`` comes at level-0 resolution (the browser enlarges it).
    """
    region = pathology.read_region(job, x, y, width, height, size)
    record_read_event(engine, AuditAction.PATHOLOGY_VIEWER_RENDER, principal.actor, job, x=x, y=y,
                                 width=region.width, height=region.height, level=region.level)
    return Response(render.png(region.pixels), media_type="image/png",
                    headers={"Cache-Control": "no-store", "X-Slide-Level": str(region.level)})


TILE_CACHE = "private, max-age=86400"  # a job's slide never changes; the browser keeps it for this user only
TILES: dict[int | str, dict[str, Any]] = {200: {"content": {"image/jpeg": {}, "image/png": {}},
                                               "description": "a Deep Zoom tile"}}  # fmt: skip


def _tile_tag(job: JobRecord, what: str) -> str:
    outcome = job.outcome if isinstance(job.outcome, PathologyOutcome) else None
    return f'"{job.id}-{outcome.input_sha256[:16] if outcome else ""}-{what}"'


def _not_modified(request: Request, tag: str) -> Response | None:
    if tag in (value.strip() for value in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": TILE_CACHE})
    return None


@router.get("/{job_id}/tiles.dzi", response_class=Response,
            responses={200: {"content": {"application/xml": {}}, "description": "Deep Zoom descriptor"}})  # fmt: skip
def deep_zoom_descriptor(job: FinishedSlideJob, request: Request, engine: EngineDep, principal: Pathology) -> Response:
    """The uploaded slide as a Deep Zoom image: size, tile size, overlap, format, and (``cds:Mpp``) µm per pixel.

    Tiles are at ``tiles_files/{level}/{column}_{row}.jpeg`` (or ``.png``); viewing is audited once per session.
    """
    record_read_event(engine, AuditAction.PATHOLOGY_VIEWER_RENDER, principal.actor, job, viewer="deep_zoom")
    tag = _tile_tag(job, "dzi")
    if (cached := _not_modified(request, tag)) is not None:
        return cached
    return Response(slide_tiles.deep_zoom(job).descriptor(), media_type="application/xml",
                    headers={"ETag": tag, "Cache-Control": TILE_CACHE})  # fmt: skip


@router.get("/{job_id}/tiles_files/{level}/{column}_{row}.{tile_format}", response_class=Response, responses=TILES)
def deep_zoom_tile(
    job: FinishedSlideJob, request: Request, engine: EngineDep, principal: Pathology,
    level: Annotated[int, PathParam(ge=0, le=40, description="Deep Zoom level (0: one pixel)")],
    column: Annotated[int, PathParam(ge=0, le=1_000_000)],
    row: Annotated[int, PathParam(ge=0, le=1_000_000)],
    tile_format: TileFormat,
) -> Response:  # fmt: skip
    """One Deep Zoom tile of the uploaded slide, read at the pyramid level that matches.

    404 ``tile_level_unavailable`` or ``tile_out_of_range`` for a tile the slide does not have. Audited once per
    session (as a view of the slide), not per tile; ``ETag`` and ``Cache-Control: private`` let the browser keep it.
    """
    record_read_event(engine, AuditAction.PATHOLOGY_VIEWER_RENDER, principal.actor, job, viewer="deep_zoom")
    tag = _tile_tag(job, f"{level}-{column}-{row}-{tile_format.value}")
    if (cached := _not_modified(request, tag)) is not None:
        return cached
    pixels = slide_tiles.read_tile(job, level, column, row)
    return Response(slide_tiles.encode_tile(pixels, tile_format), media_type=f"image/{tile_format.value}",
                    headers={"ETag": tag, "Cache-Control": TILE_CACHE})  # fmt: skip


@router.post("/{job_id}/feedback", status_code=201)
def submit_feedback(body: FeedbackCreate, job: FinishedSlideJob, request: Request, response: Response,
                    engine: EngineDep, principal: Pathology) -> FeedbackPublic:  # fmt: skip
    """Accept or reject the slide read's AI finding, with an optional comment; stored and audited.

    422 with ``unknown_finding``, ``comment_too_long`` or ``job_not_done``; 412 ``stale_verdicts`` when
    ``If-Match`` names an older version of the verdicts than there is. ``ETag``: the verdicts' new version.
    """
    row = slide_signing.submit_verdict(engine, job, label=body.label, verdict=body.verdict, comment=body.comment,
                                       actor=principal.actor, expected=etags.if_match(request))  # fmt: skip
    response.headers["ETag"] = etags.etag(row.id)
    return feedback_public(row)


@router.get("/{job_id}/feedback")
def read_feedback(job: FinishedSlideJob, response: Response, engine: EngineDep,
                  principal: Pathology) -> list[FeedbackPublic]:  # fmt: skip
    """Every verdict on the slide read's findings, newest first (the read is audited); ``ETag``: their version."""
    found = slide_signing.verdicts(engine, job)
    record_read_event(engine, AuditAction.PATHOLOGY_FEEDBACK_READ, principal.actor, job, returned=len(found))
    response.headers["ETag"] = etags.etag(etags.version_of(found))
    return [feedback_public(row) for row in found]


@router.post("/{job_id}/signatures", status_code=201)
def sign_read(body: SignRequest, job: FinishedSlideJob, request: Request, engine: EngineDep,
              principal: Pathology) -> SignaturePublic:  # fmt: skip
    """Sign the slide read's report (again: amend it) with your verdict on every finding.

    The final FHIR report is ``signed-diagnostic-report.json``. 422 ``unreviewed_findings`` names the findings
    still without your verdict; 412 ``stale_verdicts`` when ``If-Match`` names an older version of the verdicts.
    """
    etags.hold(request, etags.version_of(slide_signing.verdicts(engine, job)))
    row = slide_signing.sign_slide(engine, job, impression=body.impression, name=body.signer_name,
                                   actor=principal.actor)  # fmt: skip
    return signature_public(row)


@router.get("/{job_id}/signatures")
def list_signatures(job: FinishedSlideJob, engine: EngineDep, principal: Pathology) -> list[SignaturePublic]:
    """Every signed version of the slide read's report, oldest first (the read is audited)."""
    rows = slide_signing.slide_signatures(engine, job)
    record_read_event(engine, AuditAction.PATHOLOGY_SIGNATURES_READ, principal.actor, job, returned=len(rows))
    return [signature_public(row) for row in rows]


@router.get("/{job_id}/shared-bundle", response_class=JSONResponse,
            responses={200: {"content": {"application/fhir+json": {}}}})  # fmt: skip
def shared_bundle(job: FinishedSlideJob, engine: EngineDep, principal: Pathology) -> JSONResponse:
    """The signed report as a Bundle this site signed for the other consortium members (``consortium.share``).

    422 ``not_signed`` before anyone signed it, 503 ``site_keys_missing`` without a signing key.
    """
    bundle = report_signing.shared_bundle(engine, slide_signing.layout_of(job), actor=principal.actor)
    return JSONResponse(bundle, media_type="application/fhir+json")


@router.get("/{job_id}/{name}", response_class=FileResponse)
def slide_output(name: str, job: FinishedSlideJob, engine: EngineDep, principal: Pathology) -> FileResponse:
    """One output of a finished job by its name in the output layout.

    ``result.json``, ``diagnostic-report.json``, ``heatmap.png`` or, once signed, ``signed-diagnostic-report.json``.
    """
    path, media_type = pathology.slide_output(job, name)
    record_read_event(engine, AuditAction.PATHOLOGY_RESULT_READ, principal.actor, job, file=name)
    return FileResponse(path, media_type=media_type)
