"""``/v1/worklist``: the radiologist's worklist of pre-read studies, critical first (what to read next).

The viewer's data and pictures for each study's outcomes are under ``/v1/preread/{job}/{uid}``
(:mod:`cds.serving.api.routes.preread`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, require, scoped_patient_id
from cds.store.audit import AuditAction, record_event
from cds.store.referrals import referrals_of
from cds.store.sites import visible_sites
from cds.store.tables import ReferralRow
from cds.store.worklist import WorklistItem, WorklistState, list_worklist

router = APIRouter(tags=["imaging"])
Radiology = Annotated[Principal, Depends(require(Role.RADIOLOGIST, Role.ADMIN))]


class WorklistOutcomePublic(BaseModel):
    """An outcome the viewer can open: its UID, what it is, and the model's key."""

    uid: str
    kind: str
    model: str


class DeliveryPublic(BaseModel):
    """The study's AI results sent out (PACS, HIS): delivered, still waiting, and the latest error."""

    delivered: int
    waiting: int
    last_error: str


class ReferralPublic(BaseModel):
    """The study's referral between sites: who referred it where, why and how urgently, and whether it is signed."""

    from_site: str
    to_site: str
    priority: str
    question: str
    status: str


class WorklistItemPublic(BaseModel):
    """One study of one pre-read job."""

    job_id: str
    study_uid: str
    patient_id: str
    modalities: list[str]
    state: str
    critical: bool
    positive_findings: int
    max_ratio: float | None
    refused_reasons: list[str]
    outcomes: list[WorklistOutcomePublic]
    created_at: str
    updated_at: str
    delivery: DeliveryPublic | None = None
    referral: ReferralPublic | None = None


class WorklistPublic(BaseModel):
    """A page of the worklist."""

    items: list[WorklistItemPublic]
    total: int
    limit: int
    offset: int


def _public(item: WorklistItem, referral: ReferralRow | None) -> WorklistItemPublic:
    return WorklistItemPublic(
        referral=ReferralPublic(from_site=referral.from_site, to_site=referral.to_site, priority=referral.priority,
                                question=referral.question, status=referral.status) if referral else None,
        job_id=item.job_id, study_uid=item.study_uid, patient_id=item.patient_id, modalities=item.modalities,
        state=item.state, critical=item.critical, positive_findings=item.positive_findings,
        max_ratio=round(item.max_ratio, 3) if item.max_ratio is not None else None,
        refused_reasons=item.refused_reasons,
        outcomes=[WorklistOutcomePublic(uid=o.uid, kind=o.kind.value, model=o.model) for o in item.outcomes],
        created_at=item.created_at.isoformat(), updated_at=item.updated_at.isoformat(),
        delivery=DeliveryPublic(delivered=item.delivery.delivered, waiting=item.delivery.waiting,
                                last_error=item.delivery.last_error) if item.delivery else None)  # fmt: skip


@router.get("/v1/worklist")
def worklist(
    engine: EngineDep, principal: Radiology,
    status: Annotated[list[WorklistState] | None, Query(alias="state")] = None,
    modality: Annotated[str, Query(max_length=16, pattern=r"^[A-Za-z]*$")] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> WorklistPublic:  # fmt: skip
    """Pre-read studies: positive findings first, then newest; filter by ``state`` (repeatable) and ``modality``."""
    states = sorted({state.value for state in status or ()})
    with engine.database.session() as session:
        page = list_worklist(session, states=states, modality=modality, patient=scoped_patient_id(principal),
                             limit=limit, offset=offset,
                             site=visible_sites(principal.site, engine.settings.site),
                             referred_to=principal.site)  # fmt: skip
        referred = referrals_of(session, [i.job_id for i in page.items], principal.site)
        record_event(session, AuditAction.IMAGING_WORKLIST_READ, principal.actor, "Worklist",
                     detail={"state": states, "modality": modality.upper(),
                             "returned": len(page.items)})  # fmt: skip
    return WorklistPublic(items=[_public(i, referred.get(i.job_id)) for i in page.items], total=page.total,
                          limit=limit, offset=offset)  # fmt: skip
