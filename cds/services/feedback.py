"""Readers' verdicts on a pre-read's findings: accept or reject each one, with an optional comment.

Each verdict is stored (append only) with its audit event in one transaction; the comment stays in its table and
only its length enters the audit trail.
"""

from __future__ import annotations

from cds.services.engine import Engine
from cds.services.preread import FinishedOutcome
from cds.store.audit import Actor
from cds.store.feedback import ReviewedOutcome, Verdict, list_feedback, record_feedback
from cds.store.tables import FindingFeedbackRow


def _reviewed(read: FinishedOutcome) -> ReviewedOutcome:
    outcome = read.outcome
    return ReviewedOutcome(job_id=read.job.id, uid=outcome.uid, study_uid=outcome.study_uid, model=outcome.model,
                           input_sha256=outcome.input_sha256, labels=outcome.labels)


def submit_verdict(engine: Engine, read: FinishedOutcome, *, label: str, verdict: Verdict | str, comment: str,
                   actor: Actor, expected: int | None = None) -> FindingFeedbackRow:  # fmt: skip
    """Store ``actor``'s verdict on finding ``label`` of the outcome, audited.

    ``expected``: the version of the verdicts the reader saw (:func:`cds.store.feedback.hold_version`).

    Raises:
        InvalidInputError: ``unknown_finding``, ``invalid_verdict`` or ``comment_too_long``.
        PreconditionFailedError: ``stale_verdicts``.
    """
    with engine.database.session() as session:
        return record_feedback(session, _reviewed(read), label=label, verdict=verdict, comment=comment,
                               actor=actor, expected=expected)


def verdicts(engine: Engine, read: FinishedOutcome) -> list[FindingFeedbackRow]:
    """Every verdict on the outcome, newest first."""
    with engine.database.session() as session:
        return list_feedback(session, read.job.id, read.outcome.uid)
