"""A cohort file scored by an equation or risk model: queued as a job, run by a worker into a Parquet file."""

from __future__ import annotations

from pathlib import Path

from cds.errors import InvalidInputError
from cds.pipelines.risk.cohort_file import score_file
from cds.results.jobs import ClaimedJob, JobKind, RiskFileOutcome, RiskFilePayload
from cds.services.engine import Engine
from cds.store import jobs
from cds.store.audit import Actor


def queue_cohort(engine: Engine, method: str, source: Path, target: Path, *, actor: Actor) -> str:
    """Queue ``source`` (a stored CSV) for scoring with ``method`` into ``target``; returns the job id.

    Raises:
        OverloadedError: The queue is full.
    """
    payload = RiskFilePayload(method=method, input=source, output=target)
    with engine.database.session() as session:
        return jobs.enqueue(session, kind=JobKind.RISK_FILE, payload=payload, actor=actor.subject, role=actor.role,
                            max_pending=engine.settings.max_pending_jobs,
                            site=actor.site or engine.settings.site)  # fmt: skip


def run_cohort(engine: Engine, job: ClaimedJob) -> RiskFileOutcome:
    """Score the job's cohort file (the job handler).

    Raises:
        InvalidInputError: ``method_gone`` (the method is no longer served), or the file's own reason.
    """
    payload = job.payload_as(RiskFilePayload)
    available = engine.risk_methods()
    if payload.method not in available:
        raise InvalidInputError(f"risk method {payload.method!r} is no longer available", code="method_gone")
    equation, _ = available[payload.method]
    summary = score_file(equation, payload.input, payload.output)
    return RiskFileOutcome(rows=summary.rows, scored=summary.scored, out_of_range=summary.out_of_range,
                           errors=summary.errors, output=payload.output.name)
