"""``/v1/worklist``: the radiologist's worklist of pre-read studies, the most urgent first (what to read next).

Open referrals to the caller's site come first; then studies by urgency (critical > urgent > routine > none: the
most urgent positive finding, through its model's spec), then the newest. Each item names the findings that set its
urgency, the study's date, description, accession number and priors, and whether it was read (a verdict or a
signature by the caller or anyone at their site: :mod:`cds.store.worklist_details`). A read is audited when it shows
the caller something new in their session (:func:`cds.store.audit_policy.record_first`), not on every poll.

The viewer's data and pictures for each study's outcomes are under ``/v1/preread/{job}/{uid}``
(:mod:`cds.serving.api.routes.preread`).
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from cds.services.worklist import registry_triage
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, require, scoped_patient_id
from cds.store.audit import AuditAction
from cds.store.audit_policy import record_first
from cds.store.referrals import referrals_of
from cds.store.sites import visible_sites
from cds.store.tables import ReferralRow
from cds.store.worklist import URGENCY_ORDER, WorklistItem, WorklistState, list_worklist
from cds.store.worklist_details import Reader

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


class UrgentFindingPublic(BaseModel):
    """A positive finding that sets the study's urgency."""

    label: str
    probability: float
    model: str


class WorklistItemPublic(BaseModel):
    """One study of one pre-read job."""

    job_id: str
    study_uid: str
    patient_id: str
    modalities: list[str]
    state: str
    urgency: str = Field(description=f"one of {', '.join(URGENCY_ORDER)}: the most urgent positive finding's class")
    urgency_findings: list[UrgentFindingPublic] = Field(
        description="the positive findings at that urgency, most probable first")
    critical: bool = Field(description="a critical label (e.g. pneumothorax) at or above its critical threshold")
    study_date: str = Field(description="StudyDate (YYYYMMDD) as the images give it; empty when unknown")
    description: str = Field(description="StudyDescription; empty when unknown")
    accession_number: str
    priors: int = Field(description="earlier studies of the same patient stored at the same site")
    read: bool = Field(description="the caller or anyone at their site gave a verdict on a finding or signed it")
    read_by_caller: bool
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
        state=item.state, urgency=item.urgency, critical=item.critical,
        urgency_findings=[UrgentFindingPublic(label=f.label, probability=round(f.probability, 3), model=f.model)
                          for f in item.urgency_findings],
        study_date=item.study_date, description=item.description, accession_number=item.accession_number,
        priors=item.priors, read=item.read, read_by_caller=item.read_by_caller,
        positive_findings=item.positive_findings,
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
    """Pre-read studies, most urgent first, then newest; filter by ``state`` (repeatable) and ``modality``."""
    states = sorted({state.value for state in status or ()})
    sites = visible_sites(principal.site, engine.settings.site)
    with engine.database.session() as session:
        page = list_worklist(session, states=states, modality=modality, patient=scoped_patient_id(principal),
                             limit=limit, offset=offset, site=sites, referred_to=principal.site,
                             triage=registry_triage(engine.registry),
                             reader=Reader(principal.subject, sites))  # fmt: skip
        referred = referrals_of(session, [i.job_id for i in page.items], principal.site)
        answer = WorklistPublic(items=[_public(i, referred.get(i.job_id)) for i in page.items], total=page.total,
                                limit=limit, offset=offset)  # fmt: skip
        # a poll that shows the caller what they already saw in this session is not a new read
        seen = hashlib.sha256(answer.model_dump_json().encode()).hexdigest()
        record_first(session, AuditAction.IMAGING_WORKLIST_READ, principal.actor, "Worklist", seen=seen,
                     detail={"state": states, "modality": modality.upper(), "returned": len(page.items)})
    return answer
