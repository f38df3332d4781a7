"""What signing a read takes and answers, the same for a radiograph (``/v1/preread``) and an ECG (``/v1/ecg``)."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, Field

from cds.services.report_signing import MAX_IMPRESSION_CHARS
from cds.store.tables import ReportSignatureRow


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
