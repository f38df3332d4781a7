"""What reviewing and signing a read take and answer: radiographs (``/v1/preread``), slides, ECGs (signing only).

Slides are ``/v1/pathology``; ECGs ``/v1/ecg``, whose reviews are their own.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, Field

from cds.services.report_signing import MAX_IMPRESSION_CHARS
from cds.store.feedback import MAX_COMMENT_CHARS, Verdict
from cds.store.tables import FindingFeedbackRow, ReportSignatureRow


class FeedbackCreate(BaseModel):
    """A verdict on one finding (or segmented structure) of the read."""

    label: Annotated[str, Field(min_length=1, max_length=100, description="the finding's label, as in the summary")]
    verdict: Verdict
    comment: Annotated[str, Field(description=f"optional; at most {MAX_COMMENT_CHARS} characters (422 "
                                  "comment_too_long)",
                                  json_schema_extra={"maxLength": MAX_COMMENT_CHARS})] = ""  # fmt: skip


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


def feedback_public(row: FindingFeedbackRow) -> FeedbackPublic:
    """A stored verdict as the API shows it."""
    return FeedbackPublic(id=row.id, job_id=row.job_id, uid=row.uid, label=row.label, verdict=Verdict(row.verdict),
                          comment=row.comment, model=row.model, actor=row.actor,
                          created_at=row.created_at.isoformat() + "+00:00")  # fmt: skip


class SignRequest(BaseModel):
    """The reader's impression, signing the outcome with their verdicts on every finding."""

    impression: Annotated[str, Field(min_length=1, max_length=MAX_IMPRESSION_CHARS,
                                     description="the reader's conclusion, in their words")]  # fmt: skip
    signer_name: Annotated[str, Field(max_length=64, description="the name the report shows (default: the "
                                      "account), e.g. 王立新 or Wang^Lixin")] = ""  # fmt: skip


class SignaturePublic(BaseModel):
    """One signed version of the outcome's report."""

    version: int
    status: str
    signer: str
    signer_name: str
    site: str
    impression: str
    verdicts: dict[str, str]
    sr_sop_instance_uid: str
    created_at: str


def signature_public(row: ReportSignatureRow) -> SignaturePublic:
    """A stored signature as the API shows it."""
    return SignaturePublic(version=row.version, status=row.status, signer=row.signer, signer_name=row.signer_name,
                           site=row.site, impression=row.impression, verdicts=json.loads(row.verdicts),
                           sr_sop_instance_uid=row.sr_sop_instance_uid,
                           created_at=row.created_at.isoformat())  # fmt: skip
