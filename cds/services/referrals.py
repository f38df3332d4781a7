"""Remote reading: a member site refers a read (its job) to the hub with a clinical question and a priority.

The hub's readers then see the referred job and its studies as if their own (the worklist, the viewer, DICOMweb),
read and sign it; signing closes the referral (:func:`cds.store.referrals.mark_signed`), and its turnaround is the
time from referral to signature. :func:`turnaround` gives per referring site and priority how many were signed and
how long they took (median and 90th percentile), and how many are still open.
"""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from sqlalchemy import or_, select

from cds.errors import InvalidInputError
from cds.results.jobs import JobRecord, PrereadPayload
from cds.services.engine import Engine
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.referrals import REFERRAL_PRIORITIES
from cds.store.tables import ReferralRow

MAX_QUESTION_CHARS: Final = 2000


class Priority(StrEnum):
    """How soon the hub should read it (most urgent first, as :data:`REFERRAL_PRIORITIES`)."""

    STAT = "stat"
    URGENT = "urgent"
    ROUTINE = "routine"


def _studies(job: JobRecord) -> str:
    if isinstance(job.payload, PrereadPayload):
        return " ".join(sorted({i.study_uid for i in job.payload.instances if i.study_uid}))
    study = getattr(job.payload, "study_uid", "") or ""
    return str(study)


def refer(engine: Engine, job: JobRecord, *, question: str, priority: Priority | str, to_site: str | None,
          actor: Actor) -> ReferralRow:  # fmt: skip
    """Refer ``job`` (the caller's site's) to ``to_site`` (default ``CDS_HUB_SITE``), audited (``referral.create``).

    An open referral of the same job to the same site is answered as it is.

    Raises:
        InvalidInputError: ``no_hub`` (no site named and none configured), ``same_site``, ``invalid_priority``,
            ``question_too_long``.
    """
    home = actor.site or engine.settings.site
    target = to_site or engine.settings.hub_site
    if not target:
        raise InvalidInputError("name the site to refer to (to_site), or set CDS_HUB_SITE", code="no_hub")
    if target == home:
        raise InvalidInputError(f"{target} is your own site; refer to another", code="same_site")
    try:
        priority = Priority(priority)
    except ValueError:
        raise InvalidInputError(f"priority {priority!r}; one of stat, urgent, routine",
                                code="invalid_priority") from None  # fmt: skip
    question = question.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInputError(f"a question of at most {MAX_QUESTION_CHARS} characters", code="question_too_long")
    with engine.database.session() as session:
        existing = session.scalars(select(ReferralRow).where(ReferralRow.job_id == job.id,
                                                             ReferralRow.to_site == target,
                                                             ReferralRow.status == "open")).first()  # fmt: skip
        if existing is not None:
            return existing
        row = ReferralRow(id=str(uuid.uuid4()), job_id=job.id, study_uids=_studies(job), from_site=home,
                          to_site=target, question=question, priority=priority.value, status="open",
                          referred_by=actor.subject, created_at=dt.datetime.now(dt.UTC), signed_at=None,
                          signed_by="")  # fmt: skip
        session.add(row)
        record_event(session, AuditAction.REFERRAL_CREATE, actor, f"Job/{job.id}", subject=job.subject,
                     detail={"to_site": target, "priority": priority.value, "question_chars": len(question)})
    return row


def referrals(engine: Engine, *, site: str, incoming: bool, actor: Actor) -> list[ReferralRow]:
    """Referrals to ``site`` (``incoming``) or from it, open ones first by priority, then oldest; audited."""
    column = ReferralRow.to_site if incoming else ReferralRow.from_site
    with engine.database.session() as session:
        rows = list(session.scalars(select(ReferralRow).where(column == site).order_by(ReferralRow.created_at)))
        record_event(session, AuditAction.REFERRALS_READ, actor, "Referral",
                     detail={"direction": "in" if incoming else "out", "returned": len(rows)})
    order = {priority: rank for rank, priority in enumerate(REFERRAL_PRIORITIES)}
    return sorted(rows, key=lambda r: (r.status != "open", order.get(r.priority, len(order)), r.created_at))


@dataclass(frozen=True)
class Turnaround:
    """Referrals from one site at one priority: how many were signed and how long they took, how many are open."""

    from_site: str
    to_site: str
    priority: str
    signed: int
    open: int
    median_hours: float | None
    p90_hours: float | None


def _hours(rows: list[ReferralRow]) -> list[float]:
    return sorted((r.signed_at - r.created_at).total_seconds() / 3600 for r in rows if r.signed_at is not None)


def turnaround(engine: Engine, *, site: str) -> list[Turnaround]:
    """Turnaround of the referrals to or from ``site``, per referring site, reading site and priority."""
    with engine.database.session() as session:
        rows = list(session.scalars(select(ReferralRow).where(or_(ReferralRow.to_site == site,
                                                                  ReferralRow.from_site == site))))  # fmt: skip
    groups: dict[tuple[str, str, str], list[ReferralRow]] = {}
    for row in rows:
        groups.setdefault((row.from_site, row.to_site, row.priority), []).append(row)
    found = []
    for (source, target, priority), group in sorted(groups.items()):
        hours = _hours(group)
        p90: float | None = None
        if len(hours) > 1:
            p90 = statistics.quantiles(hours, n=10, method="inclusive")[-1]
        elif hours:
            p90 = hours[0]
        found.append(Turnaround(from_site=source, to_site=target, priority=priority, signed=len(hours),
                                open=sum(r.status == "open" for r in group),
                                median_hours=round(statistics.median(hours), 3) if hours else None,
                                p90_hours=round(p90, 3) if p90 is not None else None))  # fmt: skip
    return found


def summary(row: ReferralRow) -> dict[str, object]:
    """A referral as the API shows it."""
    return {"id": row.id, "job_id": row.job_id, "study_uids": row.study_uids.split(), "from_site": row.from_site,
            "to_site": row.to_site, "question": row.question, "priority": row.priority, "status": row.status,
            "referred_by": row.referred_by, "created_at": row.created_at.isoformat(),
            "signed_at": row.signed_at.isoformat() if row.signed_at else None, "signed_by": row.signed_by}

