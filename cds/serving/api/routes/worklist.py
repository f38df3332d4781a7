"""The radiologist's worklist and the study viewer's data: what to read, and the pictures to read it with.

``GET /v1/worklist`` lists pre-read studies, critical first. For one outcome of a finished pre-read (a radiograph
by SOP Instance UID, a CT series by Series Instance UID), ``.../view`` answers what the viewer shows beside the
image (findings against thresholds, model identity and caveats, image geometry and default window) and
``.../render/*.png`` the pictures: the source image windowed on the server, the heatmap layer of a finding, and
a CT slice's segmentation outlines. Every call is audited.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select

from cds.errors import InvalidInputError, ModelNotFoundError
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import StateDep, enforce_patient_scope, require
from cds.serving.api.state import AppState
from cds.serving.jobs import PREREAD
from cds.serving.ui import render, viewer
from cds.store import jobs
from cds.store.audit import AuditEvent, append_event
from cds.store.tables import DicomInstanceRow
from cds.store.worklist import STATES, WorklistItem, list_worklist

router = APIRouter(tags=["imaging"])
Radiology = Annotated[Principal, Depends(require(Role.RADIOLOGIST, Role.ADMIN))]
MAX_DISPLAY_SIDE = 1024
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "PNG image"}}
NO_STORE = {"Cache-Control": "no-store"}


class WorklistItemPublic(BaseModel):
    """One study of one pre-read job."""

    job_id: str
    study_uid: str
    patient_id: str
    modalities: list[str]
    state: str
    critical: bool
    positive_findings: int
    max_ratio: float | None
    refused_reasons: list[str]
    outcomes: list[dict[str, str]]
    created_at: str
    updated_at: str


class WorklistPublic(BaseModel):
    """A page of the worklist."""

    items: list[WorklistItemPublic]
    total: int
    limit: int
    offset: int


def _public(item: WorklistItem) -> WorklistItemPublic:
    return WorklistItemPublic(
        job_id=item.job_id, study_uid=item.study_uid, patient_id=item.patient_id, modalities=item.modalities,
        state=item.state, critical=item.critical, positive_findings=item.positive_findings,
        max_ratio=round(item.max_ratio, 3) if item.max_ratio is not None else None,
        refused_reasons=item.refused_reasons, outcomes=item.outcomes, created_at=item.created_at.isoformat(),
        updated_at=item.updated_at.isoformat())  # fmt: skip


def _scope(principal: Principal) -> str | None:
    return principal.patient.removeprefix("Patient/") if principal.patient is not None else None


@router.get("/v1/worklist")
def worklist(
    state: StateDep, principal: Radiology,
    status: Annotated[list[str] | None, Query(alias="state", description=f"any of {', '.join(STATES)}")] = None,
    modality: Annotated[str, Query(max_length=16, pattern=r"^[A-Za-z]*$")] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> WorklistPublic:  # fmt: skip
    """Pre-read studies: positive findings first, then newest; filter by ``state`` (repeatable) and ``modality``."""
    unknown = sorted(set(status or ()) - set(STATES))
    if unknown:
        raise InvalidInputError(f"unknown state {', '.join(unknown)}; states: {', '.join(STATES)}",
                                code="invalid_state")
    with state.database.session() as session:
        page = list_worklist(session, kind=PREREAD, states=status or (), modality=modality,
                             patient=_scope(principal), limit=limit, offset=offset)  # fmt: skip
        append_event(session, AuditEvent(actor=principal.subject, role=principal.role_text,
                                         action="imaging.worklist.read", resource="Worklist", outcome="success",
                                         detail={"state": sorted(status or ()), "modality": modality.upper(),
                                                 "returned": len(page.items)}))  # fmt: skip
    return WorklistPublic(items=[_public(i) for i in page.items], total=page.total, limit=limit, offset=offset)


def done_outcome(state: AppState, request: Request, principal: Principal, job_id: str,
                 uid: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A finished pre-read's outcome ``uid``, the job's payload and the study's patient ID (scope enforced).

    Raises:
        ModelNotFoundError: Unknown job or outcome (404).
        InvalidInputError: ``job_not_done`` (422).
        ForbiddenError: A patient-scoped caller and another patient's study (403, audited).
    """
    with state.database.session() as session:
        job = jobs.get_job(session, job_id, kind=PREREAD, done=True)
        outcomes = {o["uid"]: o for o in json.loads(job.result)["outcomes"]}
        if uid not in outcomes:
            raise ModelNotFoundError(f"pre-read {job_id} has no outcome {uid!r}", code="outcome_not_found")
        patient = session.scalar(select(DicomInstanceRow.patient_id)
                                 .where(DicomInstanceRow.study_uid == outcomes[uid]["study_uid"]).limit(1)) or ""
        payload: dict[str, Any] = json.loads(job.payload)
    if principal.patient is not None:
        enforce_patient_scope(state, request, principal, f"Patient/{patient}")
    return outcomes[uid], payload, patient


def _audit(state: AppState, principal: Principal, action: str, outcome: dict[str, Any], job_id: str,
           **detail: Any) -> None:
    with state.database.session() as session:
        append_event(session, AuditEvent(actor=principal.subject, role=principal.role_text, action=action,
                                         resource=f"ImagingStudy/{outcome['study_uid']}", outcome="success",
                                         model=outcome["model"], input_sha256=outcome["input_sha256"],
                                         detail={"job": job_id, "uid": outcome["uid"], **detail}))  # fmt: skip


@router.get("/v1/preread/{job_id}/{uid}/view")
def view(job_id: str, uid: str, request: Request, state: StateDep, principal: Radiology) -> viewer.ViewerPublic:
    """What the viewer shows for one outcome of a finished pre-read (audited as the viewer's opening)."""
    outcome, payload, patient = done_outcome(state, request, principal, job_id, uid)
    answer = viewer.build_view(state.registry, job_id, outcome, payload, patient)
    _audit(state, principal, "imaging.viewer.open", outcome, job_id)
    return answer


@router.get("/v1/preread/{job_id}/{uid}/render/image.png", response_class=Response, responses=PNG)
def render_image(
    job_id: str, uid: str, request: Request, state: StateDep, principal: Radiology,
    window: Annotated[float | None, Query(gt=0, le=1e6, description="width; default: the file's")] = None,
    level: Annotated[float | None, Query(ge=-1e6, le=1e6, description="centre; default: the file's")] = None,
    slice_index: Annotated[int, Query(alias="slice", ge=0, le=100_000)] = 0,
) -> Response:  # fmt: skip
    """The source image (one CT slice) as an 8-bit PNG, windowed on the server (longer side at most 1024)."""
    outcome, payload, _ = done_outcome(state, request, principal, job_id, uid)
    image = viewer.image_of(outcome, payload)
    pixels = viewer.slice_of(image, slice_index)
    width = window if window is not None else image.default_window[0]
    centre = level if level is not None else image.default_window[1]
    grey = render.fit(render.window_level(pixels, width, centre, invert=image.invert), MAX_DISPLAY_SIDE)
    _audit(state, principal, "imaging.viewer.render", outcome, job_id, layer="image", slice=slice_index)
    return Response(render.png(grey), media_type="image/png", headers=NO_STORE)


@router.get("/v1/preread/{job_id}/{uid}/render/heatmap.png", response_class=Response, responses=PNG)
def render_heatmap(job_id: str, uid: str, request: Request, state: StateDep, principal: Radiology,
                   label: Annotated[str, Query(min_length=1, max_length=100)]) -> Response:
    """A positive finding's heatmap as a transparent layer on the model's grid (stretched over the image)."""
    outcome, payload, _ = done_outcome(state, request, principal, job_id, uid)
    heat = viewer.heatmap_of(outcome, payload, label)
    _audit(state, principal, "imaging.viewer.render", outcome, job_id, layer="heatmap", label=label)
    return Response(render.png(render.heatmap_layer(heat)), media_type="image/png", headers=NO_STORE)


@router.get("/v1/preread/{job_id}/{uid}/render/outline.png", response_class=Response, responses=PNG)
def render_outline(
    job_id: str, uid: str, request: Request, state: StateDep, principal: Radiology,
    slice_index: Annotated[int, Query(alias="slice", ge=0, le=100_000)] = 0,
) -> Response:  # fmt: skip
    """A CT slice's segmentation outlines (from the pre-read's DICOM SEG) as a transparent layer."""
    outcome, payload, _ = done_outcome(state, request, principal, job_id, uid)
    if outcome["kind"] != "ct":
        raise ModelNotFoundError(f"{uid} is a {outcome['kind']}: it has no segmentation", code="no_segmentation")
    image = viewer.image_of(outcome, payload)
    seg = viewer.segmentation_of(outcome, payload, image)
    if seg is None:
        raise ModelNotFoundError(f"pre-read {job_id} wrote no segmentation for {uid}", code="no_segmentation")
    viewer.slice_of(image, slice_index)
    _audit(state, principal, "imaging.viewer.render", outcome, job_id, layer="outline", slice=slice_index)
    return Response(render.png(render.outline_layer(seg.labels[slice_index])), media_type="image/png",
                    headers=NO_STORE)
