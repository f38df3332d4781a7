"""ECG reads: an uploaded or stored ECG queued as a job, read by the ECG pipeline, listed, shown and reviewed.

The read is audited with the model's key and the file's sha256; an ECG that cannot be read (wrong lead set, wrong
sampling rate, too few usable leads, ...) fails the job for good with its reason code. A cardiologist's review of
each item (rhythm, measurement, flag) is stored with its audit event (:mod:`cds.store.ecg_reviews`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cds.interop.outputs.ecg import write_ecg_outputs
from cds.pipelines.ecg.pipeline import EcgPipeline, Patient
from cds.pipelines.ecg.readers import read_ecg
from cds.pipelines.ecg.record import STANDARD_LEADS
from cds.results.ecg import EcgResult
from cds.results.jobs import ClaimedJob, EcgOutcome, EcgPayload, JobKind, JobRecord
from cds.results.layout import OutputLayout
from cds.services.engine import Engine
from cds.store import jobs
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.ecg_reviews import ReviewedEcg, ReviewVerdict, list_reviews, record_review, reviews_version
from cds.store.tables import EcgReviewRow

MAX_VIEW_HZ = 500.0  # signals are sent to the reader's view at most at this rate


def queue_ecg(engine: Engine, payload: EcgPayload, *, subject: str, actor: Actor) -> str:
    """Queue an ECG read; returns the job id.

    Raises:
        OverloadedError: The job queue is full.
    """
    with engine.database.session() as session:
        return jobs.enqueue(session, kind=JobKind.ECG, payload=payload, actor=actor.subject, role=actor.role,
                            subject=subject, max_pending=engine.settings.max_pending_jobs,
                            site=actor.site or engine.settings.site)  # fmt: skip


def run_ecg(engine: Engine, job: ClaimedJob) -> EcgOutcome:
    """Read the job's ECG and write its outputs (the job handler).

    Raises:
        InvalidInputError: ``invalid_payload``, or the reader's or quality check's reason.
    """
    payload = job.payload_as(EcgPayload)
    spec = engine.registry.get(payload.model)
    backend = engine.backends(spec)
    try:
        analysis = EcgPipeline(backend)(payload.file, patient=Patient(payload.sex, payload.age_years),
                                        name=payload.file.name)  # fmt: skip
    finally:
        backend.close()
    written = write_ecg_outputs(analysis, payload.output, title=f"AI ECG pre-read: {spec.key}",
                                patient_reference=job.subject or None)
    result = analysis.result
    with engine.database.session() as session:
        record_event(session, AuditAction.ECG_READ, Actor(job.actor, job.role), f"Job/{job.id}",
                     subject=job.subject, model=result.model.key, input_sha256=result.input_sha256,
                     detail={"rhythm": result.rhythm.label, "flags": [flag.code for flag in result.flags]})
    return EcgOutcome(rhythm=result.rhythm, classifier=result.classifier, measurements=result.measurements,
                      flags=result.flags, warnings=result.warnings, warning_phrases=result.warning_phrases,
                      model=result.model.key, input_sha256=result.input_sha256,
                      outputs=tuple(p.name for p in written))  # fmt: skip


def ecg_job(engine: Engine, job_id: str, *, done: bool = False) -> JobRecord:
    """The ECG job ``job_id`` (finished when ``done``).

    Raises:
        JobNotFoundError: No such ECG job. InvalidInputError: ``job_not_done``.
    """
    with engine.database.session() as session:
        return jobs.read_job(session, job_id, kind=JobKind.ECG, done=done)


def ecg_output(job: JobRecord, name: str) -> tuple[Path, str]:
    """The path and media type of output ``name`` of a finished ECG read.

    Raises:
        OutputNotFoundError: ``file_not_found``.
    """
    layout = OutputLayout(job.payload_as(EcgPayload).output)
    output = layout.find(name)
    return layout.path(output), output.media_type


@dataclass(frozen=True)
class EcgSignals:
    """An ECG's twelve leads for the reader's view (mV, standard order), at most :data:`MAX_VIEW_HZ`."""

    leads: tuple[str, ...]
    sampling_hz: float
    values: list[list[float]]


def ecg_signals(job: JobRecord) -> EcgSignals:
    """The job's ECG as the view draws it (read again from the stored file, decimated by a whole factor).

    Raises:
        InvalidInputError: The reader's reason (the file was read once already, so only if it changed).
    """
    payload = job.payload_as(EcgPayload)
    record = read_ecg(payload.file, name=payload.file.name)
    step = max(1, int(np.ceil(record.sampling_hz / MAX_VIEW_HZ)))
    values = np.round(record.signals[:, ::step].astype(np.float64), 4)
    return EcgSignals(STANDARD_LEADS, record.sampling_hz / step, values.tolist())


def beat_times(job: JobRecord) -> tuple[float, ...]:
    """The detected beats (s from the start) of a finished read, from its ``result.json``."""
    layout = OutputLayout(job.payload_as(EcgPayload).output)
    result = EcgResult.model_validate_json(layout.path(OutputLayout.RESULT).read_text(encoding="utf-8"))
    return result.r_peaks_s


def reviewed(job: JobRecord) -> ReviewedEcg:
    """What the engine said per item of a finished ECG read, for reviewing it."""
    outcome = job.outcome_as(EcgOutcome)
    m = outcome.measurements
    items = {"rhythm": outcome.rhythm.label}
    for name in ("heart_rate_bpm", "rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms",
                 "qrs_axis_deg"):  # fmt: skip
        value = getattr(m, name)
        items[name] = "" if value is None else f"{value:g}"
    flags = {flag.code: flag.severity.value for flag in outcome.flags}
    return ReviewedEcg(job_id=job.id, model=outcome.model, input_sha256=outcome.input_sha256, subject=job.subject,
                       items=items | flags, flags=frozenset(flags))  # fmt: skip


def review_item(engine: Engine, job: JobRecord, *, item: str, verdict: ReviewVerdict | str, value: str,
                comment: str, actor: Actor, expected: int | None = None) -> EcgReviewRow:  # fmt: skip
    """Store ``actor``'s review of one item of a finished ECG read, audited.

    ``expected``: the version of the reviews the cardiologist saw (:func:`cds.store.feedback.hold_version`).

    Raises:
        InvalidInputError: ``job_not_done``, ``unknown_item``, ``invalid_verdict``, ``invalid_value`` or
            ``comment_too_long``.
        PreconditionFailedError: ``stale_verdicts``.
    """
    with engine.database.session() as session:
        return record_review(session, reviewed(job), item=item, verdict=verdict, value=value, comment=comment,
                             actor=actor, expected=expected)  # fmt: skip


def reviews_at(engine: Engine, job: JobRecord) -> int:
    """The version of the read's reviews now (:func:`cds.store.ecg_reviews.reviews_version`)."""
    with engine.database.session() as session:
        return reviews_version(session, job.id)


def reviews(engine: Engine, job: JobRecord, *, actor: Actor) -> list[EcgReviewRow]:
    """Every review of the ECG read, newest first; audited."""
    with engine.database.session() as session:
        rows = list_reviews(session, job.id)
        record_event(session, AuditAction.ECG_REVIEWS_READ, actor, f"Job/{job.id}", subject=job.subject,
                     detail={"returned": len(rows)})
        return rows
