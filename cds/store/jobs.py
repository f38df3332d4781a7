"""The durable job queue: jobs live in the database, so a queued or running job survives a restart.

A worker *claims* a job by leasing it (``state=running``, ``lease_until``); on PostgreSQL the claim uses
``SELECT ... FOR UPDATE SKIP LOCKED`` so many workers never take the same job. A running job whose lease expired
(its worker died) is claimable again. Completion is fenced: it succeeds only for the worker holding the lease and
only once, in the same transaction as its audit event, so a job never completes twice.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from cds.errors import InvalidInputError, ModelNotFoundError, OverloadedError
from cds.store.audit import AuditEvent, append_event
from cds.store.tables import JobRow

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


def _now() -> dt.datetime:
    """Naive UTC, as stored in the jobs table."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def enqueue(
    session: Session, *, kind: str, payload: dict[str, Any], actor: str, role: str, subject: str = "",
    max_attempts: int = 3, max_pending: int = 1000,
) -> str:  # fmt: skip
    """Queue a job; refuse at once when ``max_pending`` jobs are already queued or running.

    Raises:
        OverloadedError: The queue is full (HTTP 503 with Retry-After).
    """
    pending = session.scalar(select(func.count()).select_from(JobRow).where(JobRow.state.in_((QUEUED, RUNNING))))
    if (pending or 0) >= max_pending:
        raise OverloadedError(f"{pending} jobs are already waiting; retry later", code="job_queue_full")
    job_id, now = str(uuid.uuid4()), _now()
    session.add(JobRow(id=job_id, kind=kind, state=QUEUED, attempts=0, max_attempts=max_attempts,
                       payload=json.dumps(payload), result="", error="", subject=subject, created_by=actor,
                       role=role, created_at=now, updated_at=now, lease_until=None, worker=""))  # fmt: skip
    append_event(session, AuditEvent(actor=actor, role=role, action="job.create", resource=f"Job/{job_id}",
                                     subject=subject, outcome="success", detail={"kind": kind}))  # fmt: skip
    return job_id


def claim(session: Session, worker: str, lease_s: float) -> JobRow | None:
    """Lease the oldest claimable job (queued, or running with an expired lease) to ``worker``."""
    now = _now()
    query = (
        select(JobRow)
        .where(or_(JobRow.state == QUEUED, (JobRow.state == RUNNING) & (JobRow.lease_until < now)))
        .order_by(JobRow.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    job = session.execute(query).scalar_one_or_none()
    if job is None:
        return None
    job.state, job.worker, job.attempts = RUNNING, worker, job.attempts + 1
    job.lease_until, job.updated_at = now + dt.timedelta(seconds=lease_s), now
    session.flush()
    return job


def complete(session: Session, job_id: str, worker: str, result: dict[str, Any]) -> bool:
    """Mark the job done with its result, if ``worker`` still holds it; ``False`` otherwise (nothing written)."""
    job = session.execute(select(JobRow).where(JobRow.id == job_id).with_for_update()).scalar_one_or_none()
    if job is None or job.state != RUNNING or job.worker != worker:
        return False
    job.state, job.result, job.updated_at, job.lease_until = DONE, json.dumps(result), _now(), None
    append_event(session, AuditEvent(actor=job.created_by, role=job.role, action="job.done", resource=f"Job/{job.id}",
                                     subject=job.subject, outcome="success",
                                     detail={"kind": job.kind, "attempts": job.attempts}))  # fmt: skip
    return True


def renew(session: Session, job_id: str, worker: str, lease_s: float) -> bool:
    """Extend ``worker``'s lease on a running job (a heartbeat); ``False`` when the worker no longer holds it."""
    job = session.execute(select(JobRow).where(JobRow.id == job_id).with_for_update()).scalar_one_or_none()
    if job is None or job.state != RUNNING or job.worker != worker:
        return False
    job.lease_until = _now() + dt.timedelta(seconds=lease_s)
    return True


def fail(session: Session, job_id: str, worker: str, error: str, *, retry: bool) -> None:
    """Record a failure: back to the queue while attempts remain and ``retry`` is set, else failed for good."""
    job = session.execute(select(JobRow).where(JobRow.id == job_id).with_for_update()).scalar_one_or_none()
    if job is None or job.state != RUNNING or job.worker != worker:
        return
    final = not retry or job.attempts >= job.max_attempts
    job.state, job.error, job.updated_at, job.lease_until = (FAILED if final else QUEUED), error, _now(), None
    if final:
        append_event(session, AuditEvent(actor=job.created_by, role=job.role, action="job.failed",
                                         resource=f"Job/{job.id}", subject=job.subject, outcome="error",
                                         detail={"kind": job.kind, "error": error[:200]}))  # fmt: skip


def get_job(session: Session, job_id: str, *, kind: str | None = None, done: bool = False) -> JobRow:
    """A job by id; of ``kind`` when given; finished when ``done`` is asked for.

    Raises:
        ModelNotFoundError: Unknown id, or a job of another kind (404, ``job_not_found``).
        InvalidInputError: ``done`` and the job is not (422, ``job_not_done``).
    """
    job = session.get(JobRow, job_id)
    if job is None or (kind is not None and job.kind != kind):
        raise ModelNotFoundError(f"no {kind + ' ' if kind else ''}job {job_id!r}", code="job_not_found")
    if done and job.state != DONE:
        raise InvalidInputError(f"{job.kind} job {job_id} is {job.state}, not done", code="job_not_done")
    return job


def counts(session: Session) -> dict[str, int]:
    """Jobs by state (for metrics)."""
    rows = session.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all()
    return {state: int(n) for state, n in rows}
