"""``/v1/preread/{job}``: a pre-read's state, and per outcome the viewer's data, pictures, verdicts and files.

An outcome is a radiograph (by SOP Instance UID) or a CT series (by Series Instance UID) of a finished pre-read
(:func:`cds.services.preread.finished_outcome`). ``.../view`` answers what the viewer shows beside the image,
``.../priors`` the patient's earlier studies at the same site to compare with (never another patient's);
``.../render/*.png`` the pictures (the source windowed on the server, a finding's heatmap layer from the raw map the
pre-read saved, a CT slice's segmentation outlines) and ``.../render/heatmap.f32`` that map as data for the browser
to colour; ``.../feedback`` a reader's verdicts; ``.../{name}`` one
output file by the name the output layout gives it. Every call is audited; a patient-scoped token reads only its
patient's studies. The file route is declared last so that ``view`` and ``feedback`` are never taken for names.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from cds.errors import NotFoundError
from cds.interop.card_language import negotiate
from cds.interop.outputs.radiograph import FLOORS
from cds.results.jobs import JobKind, OutcomeKind
from cds.services import feedback, report_signing
from cds.services.preread import FinishedOutcome, finished_outcome, patients_of, record_outcome_event
from cds.serving.api import etags
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, StateDep, enforce_patient_scope, require, site_job
from cds.serving.api.routes.jobs import JobPublic, public_job
from cds.serving.api.signatures import (
    FeedbackCreate,
    FeedbackPublic,
    SignaturePublic,
    SignRequest,
    feedback_public,
    signature_public,
)
from cds.serving.ui import render, viewer
from cds.store import jobs
from cds.store.audit import AuditAction, record_event
from cds.store.sites import visible_sites
from cds.store.worklist_details import prior_studies

router = APIRouter(prefix="/v1/preread/{job_id}", tags=["imaging"])
Radiology = Annotated[Principal, Depends(require(Role.RADIOLOGIST, Role.ADMIN))]
MAX_DISPLAY_SIDE = 1024
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "PNG image"}}
NO_STORE = {"Cache-Control": "no-store"}


def outcome_for(request: Request, state: StateDep, engine: EngineDep, principal: Radiology, job_id: str,
                uid: str) -> FinishedOutcome:  # fmt: skip
    """Outcome ``uid`` of finished pre-read ``job_id``, if the caller may see its patient (403, audited)."""
    read = finished_outcome(engine, job_id, uid)
    site_job(state, request, principal, read.job)
    if principal.patient is not None:
        enforce_patient_scope(state, request, principal, f"Patient/{read.patient_id}")
    return read


Outcome = Annotated[FinishedOutcome, Depends(outcome_for)]


@router.get("")
def preread_status(job_id: str, request: Request, state: StateDep, engine: EngineDep,
                   principal: Radiology) -> JobPublic:  # fmt: skip
    """The pre-read's state and, when done, each image's findings or each series' structures, and refusals.

    A patient-scoped token reads only a pre-read whose every study is its patient's.
    """
    with engine.database.session() as session:
        job = jobs.read_job(session, job_id, kind=JobKind.PREREAD)
    site_job(state, request, principal, job)
    if principal.patient is not None:
        for patient in sorted(patients_of(engine, job)):
            enforce_patient_scope(state, request, principal, f"Patient/{patient}")
    with engine.database.session() as session:
        record_event(session, AuditAction.IMAGING_RESULT_READ, principal.actor, f"Job/{job_id}")
    return public_job(job)


@router.get("/{uid}/view")
def view(read: Outcome, request: Request, engine: EngineDep, principal: Radiology) -> viewer.ViewerPublic:
    """What the viewer shows for one outcome of a finished pre-read (audited as the viewer's opening).

    The model's intended use is in the request's language (``Accept-Language``) where its spec gives one.
    """
    language = negotiate(request.headers.get("accept-language"), engine.settings.card_language)
    answer = viewer.build_view(engine.registry, read, language)
    record_outcome_event(engine, AuditAction.IMAGING_VIEWER_OPEN, principal.actor, read)
    return answer


class PriorStudyPublic(BaseModel):
    """An earlier study of the same patient at the same site, to open beside this one (WADO-RS by its UID)."""

    study_uid: str
    study_date: str = Field(description="StudyDate (YYYYMMDD); empty when the images state none")
    description: str = Field(description="StudyDescription; empty when unknown")
    accession_number: str
    modalities: list[str]


@router.get("/{uid}/priors")
def priors(read: Outcome, engine: EngineDep, principal: Radiology) -> list[PriorStudyPublic]:
    """The outcome's patient's earlier studies at its site, newest first (as the worklist counts ``priors``)."""
    sites = visible_sites(principal.site, engine.settings.site)
    with engine.database.session() as session:
        found = prior_studies(session, read.outcome.study_uid, read.patient_id, sites=sites)
    record_outcome_event(engine, AuditAction.IMAGING_SEARCH, principal.actor, read, priors=len(found))
    return [PriorStudyPublic(study_uid=p.study_uid, study_date=p.study_date, description=p.description,
                             accession_number=p.accession_number, modalities=list(p.modalities)) for p in found]


@router.get("/{uid}/render/image.png", response_class=Response, responses=PNG)
def render_image(
    read: Outcome, engine: EngineDep, principal: Radiology,
    window: Annotated[float | None, Query(gt=0, le=1e6, description="width; default: the file's")] = None,
    level: Annotated[float | None, Query(ge=-1e6, le=1e6, description="centre; default: the file's")] = None,
    slice_index: Annotated[int, Query(alias="slice", ge=0, le=100_000)] = 0,
) -> Response:  # fmt: skip
    """The source image (one CT slice) as an 8-bit PNG, windowed on the server (longer side at most 1024)."""
    image = viewer.image_of(read)
    pixels = viewer.slice_of(image, slice_index)
    width = window if window is not None else image.default_window[0]
    centre = level if level is not None else image.default_window[1]
    grey = render.fit(render.window_level(pixels, width, centre, invert=image.invert), MAX_DISPLAY_SIDE)
    record_outcome_event(engine, AuditAction.IMAGING_VIEWER_RENDER, principal.actor, read, layer="image",
                         slice=slice_index)
    return Response(render.png(grey), media_type="image/png", headers=NO_STORE)


@router.get("/{uid}/render/heatmap.png", response_class=Response, responses=PNG)
def render_heatmap(read: Outcome, engine: EngineDep, principal: Radiology,
                   label: Annotated[str, Query(min_length=1, max_length=100)]) -> Response:
    """A positive finding's heatmap as a transparent layer on the model's grid (stretched over the image)."""
    heat = viewer.heatmap_of(read, label)
    record_outcome_event(engine, AuditAction.IMAGING_VIEWER_RENDER, principal.actor, read, layer="heatmap",
                         label=label)
    layer = render.heatmap_layer(heat, FLOORS[viewer.heatmap_scale(read)])
    return Response(render.png(layer), media_type="image/png", headers=NO_STORE)


@router.get("/{uid}/render/heatmap.f32", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})  # fmt: skip
def heatmap_values(read: Outcome, engine: EngineDep, principal: Radiology,
                   label: Annotated[str, Query(min_length=1, max_length=100)]) -> Response:
    """A positive finding's heatmap as data: float32 little-endian, row by row, on a fixed 0-1 scale as saved.

    ``X-Heatmap-Shape`` is ``rows,columns`` (the model's grid, stretched over the image); ``X-Heatmap-Floor`` the
    value at or below which overlays leave the map out; ``X-Heatmap-Scale`` ``probability`` (the map's maximum is its
    finding's probability) or ``peak`` (outputs written before that: scaled to the map's own peak). The viewer
    colours it itself, so the colours mean the same values on every map and its opacity and legend change without
    another request.
    """
    heat = viewer.heatmap_of(read, label)
    record_outcome_event(engine, AuditAction.IMAGING_VIEWER_RENDER, principal.actor, read, layer="heatmap",
                         label=label)
    rows, columns = heat.shape
    scale = viewer.heatmap_scale(read)
    headers = NO_STORE | {"X-Heatmap-Shape": f"{rows},{columns}", "X-Heatmap-Floor": str(FLOORS[scale]),
                          "X-Heatmap-Scale": scale}
    return Response(heat.astype("<f4", copy=False).tobytes(), media_type="application/octet-stream", headers=headers)


@router.get("/{uid}/render/outline.png", response_class=Response, responses=PNG)
def render_outline(
    read: Outcome, engine: EngineDep, principal: Radiology,
    slice_index: Annotated[int, Query(alias="slice", ge=0, le=100_000)] = 0,
) -> Response:  # fmt: skip
    """A CT slice's segmentation outlines (from the pre-read's DICOM SEG) as a transparent layer."""
    outcome = read.outcome
    if outcome.kind is not OutcomeKind.CT:
        raise NotFoundError(f"{outcome.uid} is a {outcome.kind.value}: it has no segmentation", code="no_segmentation")
    image = viewer.image_of(read)
    seg = viewer.segmentation_of(read, image.sop_instance_uids)
    if seg is None:
        raise NotFoundError(f"pre-read {read.job.id} wrote no segmentation for {outcome.uid}", code="no_segmentation")
    viewer.slice_of(image, slice_index)
    record_outcome_event(engine, AuditAction.IMAGING_VIEWER_RENDER, principal.actor, read, layer="outline",
                         slice=slice_index)
    return Response(render.png(render.outline_layer(seg.labels[slice_index])), media_type="image/png",
                    headers=NO_STORE)


@router.post("/{uid}/feedback", status_code=201)
def submit_feedback(body: FeedbackCreate, read: Outcome, request: Request, response: Response, engine: EngineDep,
                    principal: Radiology) -> FeedbackPublic:  # fmt: skip
    """Accept or reject one finding of a finished pre-read; stored and audited.

    422 with ``unknown_finding``, ``comment_too_long`` or ``job_not_done``; 404 for an unknown job or outcome; 412
    ``stale_verdicts`` when ``If-Match`` names an older version of the verdicts than there is (another tab or
    reader saved since). The answer's ``ETag`` is the verdicts' new version.
    """
    row = feedback.submit_verdict(engine, read, label=body.label, verdict=body.verdict, comment=body.comment,
                                  actor=principal.actor, expected=etags.if_match(request))  # fmt: skip
    response.headers["ETag"] = etags.etag(row.id)
    return feedback_public(row)


@router.get("/{uid}/feedback")
def read_feedback(read: Outcome, response: Response, engine: EngineDep, principal: Radiology) -> list[FeedbackPublic]:
    """Every verdict on the outcome, newest first (the read is audited); ``ETag``: their version."""
    found = feedback.verdicts(engine, read)
    record_outcome_event(engine, AuditAction.IMAGING_FEEDBACK_READ, principal.actor, read, returned=len(found))
    response.headers["ETag"] = etags.etag(etags.version_of(found))
    return [feedback_public(row) for row in found]


@router.post("/{uid}/signatures", status_code=201)
def sign(body: SignRequest, read: Outcome, request: Request, engine: EngineDep,
         principal: Radiology) -> SignaturePublic:  # fmt: skip
    """Sign the outcome's report (again: amend it) with your verdicts on every finding.

    The final FHIR report and DICOM SR are written and the SR sent to the PACS. 422 ``unreviewed_findings`` names
    findings still without your verdict; ``unsupported_outcome`` for a CT series; 412 ``stale_verdicts`` when
    ``If-Match`` names an older version of the verdicts than there is.
    """
    etags.hold(request, etags.version_of(feedback.verdicts(engine, read)))
    row = report_signing.sign_radiograph(engine, read, impression=body.impression, name=body.signer_name,
                                         actor=principal.actor)  # fmt: skip
    return signature_public(row)


@router.get("/{uid}/signatures")
def list_signatures(read: Outcome, engine: EngineDep, principal: Radiology) -> list[SignaturePublic]:
    """Every signed version of the outcome's report, oldest first (the read is audited)."""
    rows = report_signing.signatures(engine, read)
    record_outcome_event(engine, AuditAction.IMAGING_SIGNATURES_READ, principal.actor, read, returned=len(rows))
    return [signature_public(row) for row in rows]


@router.get("/{uid}/shared-bundle", response_class=JSONResponse,
            responses={200: {"content": {"application/fhir+json": {}}}})  # fmt: skip
def shared_bundle(read: Outcome, engine: EngineDep, principal: Radiology) -> JSONResponse:
    """The signed report as a Bundle signed by this site for the other consortium members.

    Audited as ``consortium.share``; 422 ``not_signed`` before anyone signed it, 503 ``site_keys_missing`` without a
    signing key.
    """
    bundle = report_signing.shared_bundle(engine, read.layout, actor=principal.actor)
    return JSONResponse(bundle, media_type="application/fhir+json")


@router.get("/{uid}/{name}", response_class=FileResponse)
def preread_output(name: str, read: Outcome, engine: EngineDep, principal: Radiology) -> FileResponse:
    """One output file of a finished pre-read, by the name the output layout gives it (the read is audited).

    ``result.json``, ``diagnostic-report.json``, ``report-sr.dcm``, ``segmentation-seg.dcm``, per finding its
    heatmap (``heatmap-<label>.png``, ``-sc.dcm``, ``.npy``), a CT overlay (``overlay.png``, ``overlay-sc.dcm``).
    """
    output = read.layout.find(name, read.outcome.labels)
    record_outcome_event(engine, AuditAction.IMAGING_RESULT_READ, principal.actor, read, file=name)
    return FileResponse(read.layout.path(output), media_type=output.media_type)
