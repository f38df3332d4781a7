"""The durable job queue: jobs live in the database, so a queued or running job survives a restart.

A worker *claims* a job by leasing it (``state=running``, ``lease_until``); on PostgreSQL the claim uses
``SELECT ... FOR UPDATE SKIP LOCKED`` so many workers never take the same job. A running job whose lease expired
(its worker died) is claimable again. Completion is fenced: it succeeds only for the worker holding the lease and
only once, in the same transaction as its audit event, so a job never completes twice.

The queue stores payloads and outcomes as JSON; :func:`record` reads a job back through the typed models of
:mod:`cds.results.jobs`, so nothing above the store reads job data as dictionaries.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from cds.errors import InvalidInputError, JobNotFoundError, OverloadedError
from cds.results.jobs import JobKind, JobRecord, job_kind, parse_outcome, parse_payload
from cds.store.audit import AuditAction, AuditEvent, AuditOutcome, append_event
from cds.store.tables import JobRow


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


log = logging.getLogger(__name__)
QUEUED, RUNNING, DONE, FAILED = JobState.QUEUED, JobState.RUNNING, JobState.DONE, JobState.FAILED
Document = BaseModel | Mapping[str, Any]


def _now() -> dt.datetime:
    """Naive UTC, as stored in the jobs table."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _json(document: Document) -> str:
    return document.model_dump_json() if isinstance(document, BaseModel) else json.dumps(document)


def enqueue(
    session: Session, *, kind: JobKind | str, payload: Document, actor: str, role: str, subject: str = "",
    max_attempts: int = 3, max_pending: int = 1000, site: str = "",
) -> str:  # fmt: skip
    """Queue a job; refuse at once when ``max_pending`` jobs are already queued or running.

    Raises:
        OverloadedError: The queue is full (HTTP 503 with Retry-After).
    """
    pending = session.scalar(select(func.count()).select_from(JobRow).where(JobRow.state.in_((QUEUED, RUNNING))))
    if (pending or 0) >= max_pending:
        raise OverloadedError(f"{pending} jobs are already waiting; retry later", code="job_queue_full")
    job_id, now = str(uuid.uuid4()), _now()
    session.add(JobRow(id=job_id, kind=str(kind), state=QUEUED, attempts=0, max_attempts=max_attempts,
                       payload=_json(payload), result="", error="", error_code="", refused=False, subject=subject,
                       created_by=actor, role=role, created_at=now, updated_at=now, lease_until=None,
                       worker="", site=site))  # fmt: skip
    append_event(session, AuditEvent(actor=actor, role=role, action=AuditAction.JOB_CREATE, resource=f"Job/{job_id}",
                                     subject=subject, outcome=AuditOutcome.SUCCESS, detail={"kind": str(kind)},
                                     site=site))
    return job_id


def claim(session: Session, worker: str, lease_s: float) -> JobRow | None:
    """Lease the oldest claimable job (queued, or running with an expired lease) to ``worker``.

    A running job whose lease expired after its last allowed attempt is not taken again: its workers died on it
    ``max_attempts`` times (a poison input), so it fails for good (``attempts_exhausted``) and the next is taken.
    """
    now = _now()
    query = (
        select(JobRow)
        .where(or_(JobRow.state == QUEUED, (JobRow.state == RUNNING) & (JobRow.lease_until < now)))
        .order_by(JobRow.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    while (job := session.execute(query).scalar_one_or_none()) is not None and job.attempts >= job.max_attempts:
        _end(session, job, code="attempts_exhausted", final=True, refused=False,
             message=f"the job's worker stopped during each of its {job.attempts} attempts")
        session.flush()
    if job is None:
        return None
    job.state, job.worker, job.attempts = RUNNING, worker, job.attempts + 1
    job.lease_until, job.updated_at = now + dt.timedelta(seconds=lease_s), now
    session.flush()
    return job


def complete(session: Session, job_id: str, worker: str, result: Document) -> bool:
    """Mark the job done with its outcome, if ``worker`` still holds it; ``False`` otherwise (nothing written)."""
    job = session.execute(select(JobRow).where(JobRow.id == job_id).with_for_update()).scalar_one_or_none()
    if job is None or job.state != RUNNING or job.worker != worker:
        return False
    job.state, job.result, job.updated_at, job.lease_until = DONE, _json(result), _now(), None
    append_event(session, AuditEvent(actor=job.created_by, role=job.role, action=AuditAction.JOB_DONE,
                                     resource=f"Job/{job.id}", subject=job.subject, outcome=AuditOutcome.SUCCESS,
                                     detail={"kind": job.kind, "attempts": job.attempts}, site=job.site))  # fmt: skip
    return True


def renew(session: Session, job_id: str, worker: str, lease_s: float) -> bool:
    """Extend ``worker``'s lease on a running job (a heartbeat); ``False`` when the worker no longer holds it."""
    job = session.execute(select(JobRow).where(JobRow.id == job_id).with_for_update()).scalar_one_or_none()
    if job is None or job.state != RUNNING or job.worker != worker:
        return False
    job.lease_until = _now() + dt.timedelta(seconds=lease_s)
    return True


def fail(session: Session, job_id: str, worker: str, *, code: str, message: str, retry: bool,
         refused: bool | None = None) -> None:
    """Record a failure: back to the queue while attempts remain and ``retry`` is set, else failed for good.

    The job keeps ``code`` (a reason code, or the exception's type for an unexpected error) and the sentence
    ``"<code>: <message>"``; a failure without ``retry`` is a refusal of the job's input (``refused``) unless said
    otherwise. The audit event of a final failure carries the code.
    """
    job = session.execute(select(JobRow).where(JobRow.id == job_id).with_for_update()).scalar_one_or_none()
    if job is None or job.state != RUNNING or job.worker != worker:
        return
    _end(session, job, code=code, message=message, final=not retry or job.attempts >= job.max_attempts,
         refused=not retry if refused is None else refused)


def _end(session: Session, job: JobRow, *, code: str, message: str, final: bool, refused: bool) -> None:
    """Fail ``job`` (for good when ``final``, else back to the queue), audited when final."""
    error = f"{code}: {message}"[:500]
    job.state, job.error, job.error_code, job.refused = (FAILED if final else QUEUED), error, code[:64], refused
    job.updated_at, job.lease_until = _now(), None
    if final:
        append_event(session, AuditEvent(actor=job.created_by, role=job.role, action=AuditAction.JOB_FAILED,
                                         resource=f"Job/{job.id}", subject=job.subject, outcome=AuditOutcome.ERROR,
                                         detail={"kind": job.kind, "code": code[:64], "error": error[:200]},
                                         site=job.site))


def get_job(session: Session, job_id: str, *, kind: JobKind | str | None = None, done: bool = False) -> JobRow:
    """A job by id; of ``kind`` when given; finished when ``done`` is asked for.

    Raises:
        JobNotFoundError: Unknown id, or a job of another kind (404, ``job_not_found``).
        InvalidInputError: ``done`` and the job is not (422, ``job_not_done``).
    """
    job = session.get(JobRow, job_id)
    if job is None or (kind is not None and job.kind != str(kind)):
        raise JobNotFoundError(f"no {str(kind) + ' ' if kind else ''}job {job_id!r}")
    if done and job.state != DONE:
        raise InvalidInputError(f"{job.kind} job {job_id} is {job.state}, not done", code="job_not_done")
    return job


def record(row: JobRow) -> JobRecord:
    """The job with its payload and outcome read through their models.

    Raises:
        InvalidInputError: ``unknown_job_kind``, ``invalid_payload`` or ``invalid_outcome``.
    """
    kind = job_kind(row.kind)
    return JobRecord(
        id=row.id, kind=kind, state=row.state, attempts=row.attempts, error=row.error, error_code=row.error_code,
        refused=row.refused,
        subject=row.subject, created_by=row.created_by, role=row.role, created_at=row.created_at,
        updated_at=row.updated_at, payload=parse_payload(kind, row.payload),
        outcome=parse_outcome(kind, row.result) if row.state == DONE and row.result else None, site=row.site,
    )  # fmt: skip


def readable(rows: Iterable[JobRow]) -> list[JobRecord]:
    """The rows that read through their models, for listings: a broken row is left out, logged by id and code."""
    records = []
    for row in rows:
        try:
            records.append(record(row))
        except InvalidInputError as exc:
            log.warning("job %s left out of a listing: %s", row.id, exc.code)
    return records


def read_job(session: Session, job_id: str, *, kind: JobKind, done: bool = False) -> JobRecord:
    """:func:`get_job` read through the models (see :func:`record`)."""
    return record(get_job(session, job_id, kind=kind, done=done))


def counts(session: Session) -> dict[str, int]:
    """Jobs by state (for metrics)."""
    rows = session.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all()
    return {state: int(n) for state, n in rows}
