"""The reads one kind of job makes (slides, ECGs): listed a page at a time, and audited with what was read.

Both are audited: a list with how many reads it returned, an event on one read with its patient and, once it is
read, the model's key and the input's sha256.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select

from cds.results.jobs import EcgOutcome, JobKind, JobRecord, PathologyOutcome
from cds.services.engine import Engine
from cds.store import jobs
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.audit_policy import record_first
from cds.store.referrals import referred_jobs
from cds.store.sites import visible_sites
from cds.store.tables import JobRow


@dataclass(frozen=True)
class JobPage:
    """A page of reads, newest first, and how many there are in all."""

    jobs: list[JobRecord]
    total: int


def list_reads(engine: Engine, kind: JobKind, action: AuditAction, *, created_by: str | None, patient: str | None,
               limit: int, offset: int, actor: Actor) -> JobPage:  # fmt: skip
    """Reads of ``kind`` (of ``patient`` when given), newest first, audited as ``action``.

    The caller's site's reads queued by ``created_by`` (everyone's when ``None``), and the reads other sites
    referred to the caller's, whoever queued them.
    """
    home = engine.settings.site
    site = actor.site or home
    own: ColumnElement[bool] = JobRow.site.in_(visible_sites(site, home))
    if created_by is not None:
        own = and_(own, JobRow.created_by == created_by)
    where = [JobRow.kind == kind.value, or_(own, JobRow.id.in_(referred_jobs(site)))]
    if patient is not None:
        where.append(JobRow.subject == patient)
    with engine.database.session() as session:
        total = session.scalar(select(func.count()).select_from(JobRow).where(*where)) or 0
        rows = session.execute(select(JobRow).where(*where).order_by(JobRow.created_at.desc(), JobRow.id)
                               .limit(limit).offset(offset)).scalars().all()  # fmt: skip
        page = JobPage(jobs.readable(rows), total)
        record_event(session, action, actor, f"Job?kind={kind.value}", detail={"returned": len(page.jobs)})
    return page


VIEWS = frozenset({AuditAction.PATHOLOGY_VIEWER_RENDER})  # audited once per session and window, not per re-draw


def record_read_event(engine: Engine, action: AuditAction, actor: Actor, job: JobRecord, **detail: object) -> None:
    """Audit ``actor``'s ``action`` on a read (its patient, and the model and input once it is read).

    A slide's region renders (:data:`VIEWS`: every zoom and pan) are audited the first time in the actor's session
    and window (:func:`cds.store.audit_policy.record_first`); every other action every time.
    """
    outcome = job.outcome if isinstance(job.outcome, PathologyOutcome | EcgOutcome) else None
    event: dict[str, Any] = {"subject": job.subject, "model": outcome.model if outcome else "",
                             "input_sha256": outcome.input_sha256 if outcome else "", "detail": dict(detail) or None}
    with engine.database.session() as session:
        if action in VIEWS:
            record_first(session, action, actor, f"Job/{job.id}", **event)
        else:
            record_event(session, action, actor, f"Job/{job.id}", **event)
