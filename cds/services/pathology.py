"""Pathology reads: a stored slide or tile queued as a job, read by the slide pipeline, listed and zoomed into.

The read is audited with the model's key and the file's sha256; a slide without tissue is a result
(``no_tissue``), not a failure; unreadable input fails the job for good with its reason code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cds.errors import InvalidInputError
from cds.interop.outputs.slide import write_slide_outputs
from cds.pipelines.pathology.isolated_slide import open_isolated_slide
from cds.pipelines.pathology.pipeline import SlidePipeline
from cds.pipelines.pathology.slide import resize_rgb
from cds.results.jobs import ClaimedJob, JobKind, JobRecord, PathologyOutcome, PathologyPayload
from cds.results.layout import OutputLayout
from cds.services.engine import Engine
from cds.store import jobs
from cds.store.audit import Actor, AuditAction, record_event


def queue_slide(engine: Engine, source: Path, output: Path, *, subject: str, actor: Actor) -> str:
    """Queue the stored slide ``source`` for a read into ``output``; returns the job id."""
    payload = PathologyPayload(file=source, output=output, model=engine.settings.pathology_model)
    with engine.database.session() as session:
        return jobs.enqueue(session, kind=JobKind.PATHOLOGY, payload=payload, actor=actor.subject, role=actor.role,
                            subject=subject, max_pending=engine.settings.max_pending_jobs,
                            site=actor.site or engine.settings.site)  # fmt: skip


def run_slide(engine: Engine, job: ClaimedJob) -> PathologyOutcome:
    """Read the job's slide and write its outputs (the job handler).

    Raises:
        InvalidInputError: ``invalid_payload``, or the slide reader's reason (``truncated_file``, ...).
    """
    payload = job.payload_as(PathologyPayload)
    spec = engine.registry.get(payload.model)
    backend = engine.backends(spec)
    try:
        analysis = SlidePipeline(backend)(payload.file)
    finally:
        backend.close()
    written = write_slide_outputs(analysis, payload.output, title=f"AI pathology read: {spec.key}",
                                  patient_reference=job.subject or None)  # the report names the patient it is about
    result = analysis.result
    with engine.database.session() as session:
        record_event(session, AuditAction.PATHOLOGY_READ, Actor(job.actor, job.role),
                     f"Slide/{result.input_sha256[:16]}", subject=job.subject, model=result.model.key,
                     input_sha256=result.input_sha256, detail={"status": result.status.value})
    return PathologyOutcome(status=result.status, reason=result.reason, reason_phrase=result.reason_phrase,
                            label=result.label, finding=result.finding, score=result.score, warnings=result.warnings,
                            warning_phrases=result.warning_phrases, model=result.model.key,
                            input_sha256=result.input_sha256, outputs=tuple(p.name for p in written))


def slide_job(engine: Engine, job_id: str, *, done: bool = False) -> JobRecord:
    """The pathology job ``job_id`` (finished when ``done``).

    Raises:
        JobNotFoundError: No such pathology job. InvalidInputError: ``job_not_done``.
    """
    with engine.database.session() as session:
        return jobs.read_job(session, job_id, kind=JobKind.PATHOLOGY, done=done)


def slide_output(job: JobRecord, name: str) -> tuple[Path, str]:
    """The path and media type of output ``name`` of a finished slide read.

    Raises:
        OutputNotFoundError: ``file_not_found`` (a slide without tissue has no heatmap).
    """
    layout = OutputLayout(job.payload_as(PathologyPayload).output)
    output = layout.find(name)
    return layout.path(output), output.media_type


def _level_for(downsamples: list[float], scale: float) -> int:
    """The coarsest level that still has at least one source pixel per output pixel (``scale`` = level-0 px each)."""
    fitting = [index for index, downsample in enumerate(downsamples) if downsample <= scale]
    return max(fitting) if fitting else 0


@dataclass(frozen=True)
class Region:
    """A rendered slide region: RGB pixels, the pyramid level read and the region in level-0 pixels."""

    pixels: np.ndarray
    level: int
    width: int
    height: int


def read_region(job: JobRecord, x: int, y: int, width: int | None, height: int | None, size: int) -> Region:
    """A region of the job's slide (level-0 coordinates), at most ``size`` pixels on its longer side.

    The region is read at the coarsest pyramid level that still has a pixel for every output pixel; a region
    smaller than ``size`` comes at level-0 resolution.

    Raises:
        InvalidInputError: ``invalid_region`` (outside the slide), or the slide reader's reason.
    """
    with open_isolated_slide(job.payload_as(PathologyPayload).file) as slide:
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
    return Region(picture, level, width, height)
