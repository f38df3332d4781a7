"""Cardiologists' reviews of ECG reads: each item (the rhythm, a measurement, a flag) accepted or corrected.

A review is a row of its own and an audit event in the caller's transaction; rows are only ever added, and the
newest row per item is its current review. A corrected measurement must be a number within physiological limits
(:data:`LIMITS`), a corrected rhythm one of :data:`REVIEW_RHYTHMS`; a flag can be accepted or rejected, not
corrected. The comment stays in the table; only its length enters the audit chain.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cds.errors import InvalidInputError
from cds.results.ecg import RHYTHMS
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.feedback import MAX_COMMENT_CHARS, hold_version
from cds.store.tables import EcgReviewRow

LIMITS = {"heart_rate_bpm": (10.0, 400.0), "rr_ms": (150.0, 6000.0), "pr_ms": (40.0, 600.0),
          "qrs_ms": (30.0, 300.0), "qt_ms": (150.0, 800.0), "qtc_bazett_ms": (150.0, 800.0),
          "qtc_fridericia_ms": (150.0, 800.0), "qrs_axis_deg": (-180.0, 180.0)}  # fmt: skip
REVIEW_RHYTHMS = (*RHYTHMS, "sinus_arrhythmia", "av_block", "junctional_rhythm", "ventricular_rhythm",
                  "paced_rhythm", "other")  # fmt: skip


class ReviewVerdict(StrEnum):
    """What the reader said about an item."""

    ACCEPTED = "accepted"
    CORRECTED = "corrected"
    REJECTED = "rejected"  # a flag only


@dataclass(frozen=True)
class ReviewedEcg:
    """The ECG read under review: its job, model, input, and what the engine said per item (as text)."""

    job_id: str
    model: str
    input_sha256: str
    subject: str
    items: dict[str, str]  # rhythm and measurement fields -> value; flag codes -> severity
    flags: frozenset[str]


def _checked_value(item: str, value: str, flags: frozenset[str]) -> str:
    if item in flags:
        raise InvalidInputError(f"a flag ({item}) is accepted or rejected, not corrected", code="invalid_verdict")
    if item == "rhythm":
        if value not in REVIEW_RHYTHMS:
            raise InvalidInputError(f"rhythm {value!r}; one of {', '.join(REVIEW_RHYTHMS)}", code="invalid_value")
        return value
    low, high = LIMITS[item]
    try:
        number = float(value)
    except ValueError:
        raise InvalidInputError(f"{item}: {value!r} is not a number", code="invalid_value") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidInputError(f"{item}: {value} lies outside {low:g}-{high:g}", code="invalid_value")
    return f"{number:g}"


def reviews_version(session: Session, job_id: str) -> int:
    """The version of ECG read ``job_id``'s reviews: the newest row's id (0: none yet)."""
    return int(session.scalar(select(func.max(EcgReviewRow.id)).where(EcgReviewRow.job_id == job_id)) or 0)


def record_review(session: Session, ecg: ReviewedEcg, *, item: str, verdict: ReviewVerdict | str, value: str = "",
                  comment: str = "", actor: Actor, expected: int | None = None) -> EcgReviewRow:  # fmt: skip
    """Store one review and its audit event in the caller's transaction.

    ``expected``: the version of the reviews the cardiologist saw (:func:`cds.store.feedback.hold_version`).

    Raises:
        InvalidInputError: ``unknown_item``, ``invalid_verdict``, ``invalid_value`` or ``comment_too_long``.
        PreconditionFailedError: ``stale_verdicts``.
    """
    if item not in ecg.items:
        raise InvalidInputError(f"no item {item!r} in this ECG read; items: {', '.join(ecg.items)}",
                                code="unknown_item")  # fmt: skip
    try:
        verdict = ReviewVerdict(verdict)
    except ValueError:
        raise InvalidInputError(f"verdict {verdict!r}; allowed: accepted, corrected, rejected",
                                code="invalid_verdict") from None  # fmt: skip
    if verdict is ReviewVerdict.REJECTED and item not in ecg.flags:
        raise InvalidInputError(f"{item} is corrected, not rejected (only a flag is rejected)", code="invalid_verdict")
    reviewed = _checked_value(item, value.strip(), ecg.flags) if verdict is ReviewVerdict.CORRECTED else ecg.items[item]
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidInputError(f"the comment has {len(comment)} characters, at most {MAX_COMMENT_CHARS} are kept",
                                code="comment_too_long")  # fmt: skip
    hold_version(session, ecg.job_id, lambda: reviews_version(session, ecg.job_id), expected)
    row = EcgReviewRow(job_id=ecg.job_id, item=item, verdict=verdict.value, ai_value=ecg.items[item][:100],
                       value=reviewed[:100], comment=comment, model=ecg.model, actor=actor.subject, role=actor.role,
                       created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None), site=actor.site)  # fmt: skip
    session.add(row)
    record_event(session, AuditAction.ECG_REVIEW, actor, f"Job/{ecg.job_id}", subject=ecg.subject,
                 model=ecg.model, input_sha256=ecg.input_sha256,
                 detail={"item": item, "verdict": verdict.value, "ai_value": row.ai_value, "value": row.value,
                         "comment_chars": len(comment)})  # fmt: skip
    session.flush()
    return row


def list_reviews(session: Session, job_id: str) -> list[EcgReviewRow]:
    """Every review of ECG read ``job_id``, newest first."""
    query = select(EcgReviewRow).where(EcgReviewRow.job_id == job_id).order_by(EcgReviewRow.id.desc())
    return list(session.execute(query).scalars())
