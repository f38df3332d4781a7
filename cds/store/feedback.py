"""Readers' verdicts on AI findings: each accept or reject is a row of its own and an audit event.

Rows are only ever added, so the history of a finding's review stays readable; the newest row for a label is its
current verdict. The free-text comment stays in the table and never enters the audit chain (only its length does).

The verdicts on a read have a version (the newest row's id, :func:`verdicts_version`): a reader who saw version
``n`` and saves with ``expected=n`` is refused (412 ``stale_verdicts``) when someone else (another tab, another
reader) saved since, rather than deciding over what they never saw (:func:`hold_version`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cds.errors import InvalidInputError, PreconditionFailedError
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.tables import FindingFeedbackRow, JobRow

MAX_COMMENT_CHARS = 1000


class Verdict(StrEnum):
    """What the reader said about a finding."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ReviewedOutcome:
    """The read the feedback is about (a pre-read outcome, a slide): where it came from and which labels it has."""

    job_id: str
    uid: str
    study_uid: str
    model: str  # name:version
    input_sha256: str
    labels: tuple[str, ...]  # its findings (radiograph, slide) or structures (CT)
    action: AuditAction = AuditAction.IMAGING_FEEDBACK  # how a verdict is audited
    resource: str = ""  # what the audit event is about (default ``ImagingStudy/<study_uid>``)
    subject: str = ""  # the patient (``Patient/<id>``), when known


def verdicts_version(session: Session, job_id: str, uid: str) -> int:
    """The version of the verdicts on outcome ``uid`` of read ``job_id``: the newest row's id (0: none yet)."""
    newest = session.scalar(select(func.max(FindingFeedbackRow.id)).where(FindingFeedbackRow.job_id == job_id,
                                                                          FindingFeedbackRow.uid == uid))  # fmt: skip
    return int(newest or 0)


def hold_version(session: Session, job_id: str, current: Callable[[], int], expected: int | None) -> None:
    """Go on only if the read's verdicts are still at version ``expected`` (``None``: not asked; go on).

    The job's row is locked first (PostgreSQL), so two saves from the same version cannot both pass.

    Raises:
        PreconditionFailedError: ``stale_verdicts`` (412): they changed since the caller loaded them.
    """
    if expected is None:
        return
    session.execute(select(JobRow.id).where(JobRow.id == job_id).with_for_update())
    now = current()
    if now != expected:
        raise PreconditionFailedError("the verdicts on this read changed since you loaded them (another tab or "
                                      f"reader saved version {now}, you had {expected}); reload and decide again",
                                      code="stale_verdicts")  # fmt: skip


def record_feedback(
    session: Session, outcome: ReviewedOutcome, *, label: str, verdict: Verdict | str, comment: str, actor: Actor,
    expected: int | None = None,
) -> FindingFeedbackRow:  # fmt: skip
    """Store one verdict and its audit event in the caller's transaction.

    ``expected``: the version of the verdicts the reader saw (:func:`hold_version`); ``None``: not checked.

    Raises:
        InvalidInputError: ``unknown_finding`` (the outcome has no such label), ``invalid_verdict`` or
            ``comment_too_long`` (over :data:`MAX_COMMENT_CHARS` characters).
        PreconditionFailedError: ``stale_verdicts``.
    """
    if label not in outcome.labels:
        raise InvalidInputError(f"no finding {label!r} in this read; findings: {', '.join(outcome.labels)}",
                                code="unknown_finding")
    try:
        verdict = Verdict(verdict)
    except ValueError as exc:
        raise InvalidInputError(f"verdict {verdict!r}; allowed: accepted, rejected", code="invalid_verdict") from exc
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidInputError(f"the comment has {len(comment)} characters, at most {MAX_COMMENT_CHARS} are kept",
                                code="comment_too_long")
    hold_version(session, outcome.job_id, lambda: verdicts_version(session, outcome.job_id, outcome.uid), expected)
    row = FindingFeedbackRow(job_id=outcome.job_id, uid=outcome.uid, label=label, verdict=verdict.value,
                             comment=comment, model=outcome.model, actor=actor.subject, role=actor.role,
                             created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None), site=actor.site)  # fmt: skip
    session.add(row)
    record_event(session, outcome.action, actor, outcome.resource or f"ImagingStudy/{outcome.study_uid}",
                 subject=outcome.subject, model=outcome.model, input_sha256=outcome.input_sha256,
                 detail={"job": outcome.job_id, "uid": outcome.uid, "label": label, "verdict": verdict.value,
                         "comment_chars": len(comment)})  # fmt: skip
    session.flush()
    return row


def list_feedback(session: Session, job_id: str, uid: str) -> list[FindingFeedbackRow]:
    """Every verdict on the outcome ``uid`` of read ``job_id`` (a pre-read, a slide), newest first."""
    query = (
        select(FindingFeedbackRow)
        .where(FindingFeedbackRow.job_id == job_id, FindingFeedbackRow.uid == uid)
        .order_by(FindingFeedbackRow.id.desc())
    )
    return list(session.execute(query).scalars())
