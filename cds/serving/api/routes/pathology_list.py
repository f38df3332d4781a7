"""The pathologist's side of the workspace: their recent slide reads, and a zoomed region of a read slide.

``GET /v1/pathology/jobs`` lists the caller's pathology jobs, newest first, with the slide-level answer of those
that finished (an administrator sees everyone's; a patient-scoped token only that patient's).
``GET /v1/pathology/jobs/{id}/render/region.png`` reads a region of the uploaded slide at the pyramid level that
fits the requested output size (:meth:`cds.pipelines.pathology.Slide.read_region`, only the tiles it touches are
decoded): the zoom behind the heatmap. Both are audited.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import func, select

from cds.errors import InvalidInputError
from cds.serving.api.auth import Role
from cds.serving.api.deps import StateDep
from cds.serving.api.routes.pathology import Pathology, pathology_job
from cds.serving.jobs import PATHOLOGY
from cds.serving.ui import render
from cds.store.audit import AuditEvent, append_event
from cds.store.tables import JobRow

router = APIRouter(prefix="/v1/pathology", tags=["pathology"])
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "PNG image"}}
MAX_SIDE = 1024


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


def _summary(row: JobRow) -> PathologyJobSummary:
    result: dict[str, Any] = json.loads(row.result) if row.result else {}
    score = result.get("score") or {}
    return PathologyJobSummary(
        id=row.id, state=row.state, file=Path(json.loads(row.payload).get("file", "")).name, subject=row.subject,
        created_by=row.created_by, created_at=row.created_at.isoformat() + "+00:00",
        updated_at=row.updated_at.isoformat() + "+00:00", status=result.get("status"), label=result.get("label"),
        positive=score.get("positive"), score=score.get("top_k_mean"), threshold=score.get("threshold"),
        tumour_area_fraction=score.get("tumour_area_fraction"), model=result.get("model"),
        error=row.error.split(": ", 1)[0] if row.error else "")  # fmt: skip


@router.get("/jobs")
def list_slides(
    state: StateDep, principal: Pathology,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> PathologyJobPage:  # fmt: skip
    """The caller's slide reads, newest first (an administrator's list holds everyone's)."""
    where = [JobRow.kind == PATHOLOGY]
    if Role.ADMIN not in principal.roles:
        where.append(JobRow.created_by == principal.subject)
    if principal.patient is not None:
        where.append(JobRow.subject == principal.patient)
    with state.database.session() as session:
        total = session.scalar(select(func.count()).select_from(JobRow).where(*where)) or 0
        rows = session.execute(select(JobRow).where(*where).order_by(JobRow.created_at.desc(), JobRow.id)
                               .limit(limit).offset(offset)).scalars().all()  # fmt: skip
        items = [_summary(row) for row in rows]
        append_event(session, AuditEvent(actor=principal.subject, role=principal.role_text,
                                         action="pathology.jobs.read", resource="Job?kind=pathology",
                                         outcome="success", detail={"returned": len(items)}))  # fmt: skip
    return PathologyJobPage(items=items, total=total, limit=limit, offset=offset)


def _level_for(downsamples: list[float], scale: float) -> int:
    """The coarsest level that still has at least one source pixel per output pixel (``scale`` = level-0 px each)."""
    fitting = [index for index, downsample in enumerate(downsamples) if downsample <= scale]
    return max(fitting) if fitting else 0


Extent = Annotated[int | None, Query(ge=1, le=10_000_000, description="level-0 pixels; default: to the edge")]


@router.get("/jobs/{job_id}/render/region.png", response_class=Response, responses=PNG)
def render_region(
    job_id: str, request: Request, state: StateDep, principal: Pathology,
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
    from cds.pipelines.pathology import open_slide
    from cds.pipelines.pathology.slide import resize_rgb

    job = pathology_job(state, request, principal, job_id, done=True)
    with open_slide(Path(json.loads(job.payload)["file"])) as slide:
        full_width, full_height = slide.dimensions
        if x >= full_width or y >= full_height:
            raise InvalidInputError(f"region at ({x}, {y}) lies outside the slide of {full_width} × {full_height} "
                                    "pixels", code="invalid_region")  # fmt: skip
        width, height = min(width or full_width, full_width - x), min(height or full_height, full_height - y)
        scale = max(1.0, max(width, height) / size)  # level-0 pixels per output pixel
        level = _level_for([info.downsample for info in slide.levels], scale)
        downsample = slide.levels[level].downsample
        pixels = slide.read_region(level, int(x / downsample), int(y / downsample),
                                   max(1, round(width / downsample)), max(1, round(height / downsample)))
    picture = resize_rgb(pixels, max(1, round(width / scale)), max(1, round(height / scale)))
    result = json.loads(job.result)
    with state.database.session() as session:
        append_event(session, AuditEvent(actor=principal.subject, role=principal.role_text,
                                         action="pathology.viewer.render", resource=f"Job/{job_id}",
                                         subject=job.subject, outcome="success", model=result.get("model", ""),
                                         input_sha256=result.get("input_sha256", ""),
                                         detail={"x": x, "y": y, "width": width, "height": height,
                                                 "level": level}))  # fmt: skip
    return Response(render.png(picture), media_type="image/png",
                    headers={"Cache-Control": "no-store", "X-Slide-Level": str(level)})
