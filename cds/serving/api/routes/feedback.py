"""Readers' verdicts on a pre-read's findings: accept or reject each one, with an optional comment.

Each submission is stored (append only) with its audit event in one transaction; the list answers every verdict
on the outcome, newest first, so the viewer shows the current one and its history.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from cds.serving.api.deps import StateDep
from cds.serving.api.routes.worklist import Radiology, done_outcome
from cds.store.audit import AuditEvent, append_event
from cds.store.feedback import MAX_COMMENT_CHARS, ReviewedOutcome, Verdict, list_feedback, record_feedback
from cds.store.tables import FindingFeedbackRow

router = APIRouter(tags=["imaging"])


class FeedbackCreate(BaseModel):
    """A verdict on one finding (or segmented structure) of the outcome."""

    label: Annotated[str, Field(min_length=1, max_length=100, description="the finding's label, as in the summary")]
    verdict: Verdict
    comment: Annotated[str, Field(description=f"optional; at most {MAX_COMMENT_CHARS} characters (422 "
                                  "comment_too_long)", json_schema_extra={"maxLength": MAX_COMMENT_CHARS})] = ""


class FeedbackPublic(BaseModel):
    """A stored verdict."""

    id: int
    job_id: str
    uid: str
    label: str
    verdict: Verdict
    comment: str
    model: str
    actor: str
    created_at: str


def _public(row: FindingFeedbackRow) -> FeedbackPublic:
    return FeedbackPublic(id=row.id, job_id=row.job_id, uid=row.uid, label=row.label, verdict=Verdict(row.verdict),
                          comment=row.comment, model=row.model, actor=row.actor,
                          created_at=row.created_at.isoformat() + "+00:00")  # fmt: skip


@router.post("/v1/preread/{job_id}/{uid}/feedback", status_code=201)
def submit_feedback(job_id: str, uid: str, body: FeedbackCreate, request: Request, state: StateDep,
                    principal: Radiology) -> FeedbackPublic:
    """Accept or reject one finding of a finished pre-read; stored and audited.

    422 with ``unknown_finding``, ``comment_too_long`` or ``job_not_done``; 404 for an unknown job or outcome.
    """
    outcome, _payload, _patient = done_outcome(state, request, principal, job_id, uid)
    reviewed = ReviewedOutcome(job_id=job_id, uid=uid, study_uid=outcome["study_uid"], model=outcome["model"],
                               input_sha256=outcome["input_sha256"],
                               labels=tuple(str(f["label"]) for f in outcome["summary"]))  # fmt: skip
    with state.database.session() as session:
        row = record_feedback(session, reviewed, label=body.label, verdict=body.verdict, comment=body.comment,
                              actor=principal.subject, role=principal.role_text)  # fmt: skip
        return _public(row)


@router.get("/v1/preread/{job_id}/{uid}/feedback")
def read_feedback(job_id: str, uid: str, request: Request, state: StateDep,
                  principal: Radiology) -> list[FeedbackPublic]:
    """Every verdict on the outcome, newest first (the read is audited)."""
    outcome, _payload, _patient = done_outcome(state, request, principal, job_id, uid)
    with state.database.session() as session:
        rows = [_public(row) for row in list_feedback(session, job_id, uid)]
        append_event(session, AuditEvent(actor=principal.subject, role=principal.role_text,
                                         action="imaging.feedback.read",
                                         resource=f"ImagingStudy/{outcome['study_uid']}", outcome="success",
                                         model=outcome["model"],
                                         detail={"job": job_id, "uid": uid, "returned": len(rows)}))  # fmt: skip
    return rows
