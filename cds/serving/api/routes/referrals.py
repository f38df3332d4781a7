"""``/v1/referrals``: remote reading. A member site refers a read (a pre-read, slide or ECG job) to the hub.

``POST`` refers one of the caller's site's jobs (``to_site``, default ``CDS_HUB_SITE``) with a clinical question and
a priority (``stat``, ``urgent``, ``routine``); the hub's readers then find it in their worklist and lists, open,
read and sign it as their own, and signing closes the referral. ``GET`` lists the referrals to the caller's site
(``direction=in``, open ones first by priority) or from it (``out``); ``/turnaround`` how long signed ones took per
referring site and priority. Many patients' data: not for patient-scoped tokens. Audited.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from cds.errors import JobNotFoundError
from cds.services import referrals
from cds.services.referrals import MAX_QUESTION_CHARS, Priority
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, StateDep, refuse_patient_scoped, require
from cds.store import jobs
from cds.store.sites import visible_sites

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])
Reader = Annotated[Principal, Depends(require(Role.RADIOLOGIST, Role.PATHOLOGIST, Role.CARDIOLOGIST, Role.CLINICIAN,
                                              Role.ADMIN))]  # fmt: skip


def _not_patient_scoped(request: Request, state: StateDep, principal: Reader) -> Principal:
    """The caller, unless their token is limited to one patient (referrals hold many patients' reads: 403)."""
    refuse_patient_scoped(state, request, principal, "the referrals")
    return principal


Referrer = Annotated[Principal, Depends(_not_patient_scoped)]


class ReferralIn(BaseModel):
    """What to refer, where, why and how soon."""

    job_id: Annotated[str, Field(min_length=1, max_length=36)]
    question: Annotated[str, Field(max_length=MAX_QUESTION_CHARS, description="the clinical question")] = ""
    priority: Priority = Priority.ROUTINE
    to_site: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,99}$",
                                         description="default: CDS_HUB_SITE")] = None  # fmt: skip


@router.post("", status_code=201)
def create_referral(body: ReferralIn, engine: EngineDep, principal: Referrer) -> dict[str, Any]:
    """Refer one of your site's reads to the hub (an open referral of it to that site is answered as it is)."""
    with engine.database.session() as session:
        job = jobs.record(jobs.get_job(session, body.job_id))
    if job.site not in visible_sites(principal.site, engine.settings.site):  # another site's: as if unknown
        raise JobNotFoundError(f"no job {body.job_id} of your site", code="job_not_found")
    referral = referrals.refer(engine, job, question=body.question, priority=body.priority, to_site=body.to_site,
                               actor=principal.actor)  # fmt: skip
    return referrals.summary(referral)


@router.get("")
def list_referrals(engine: EngineDep, principal: Referrer,
                   direction: Annotated[Literal["in", "out"], Query()] = "in") -> list[dict[str, Any]]:  # fmt: skip
    """Referrals to your site (``in``: open first, by priority) or from it (``out``)."""
    rows = referrals.referrals(engine, site=principal.site, incoming=direction == "in", actor=principal.actor)
    return [referrals.summary(row) for row in rows]


@router.get("/turnaround")
def referral_turnaround(engine: EngineDep, principal: Referrer) -> list[dict[str, Any]]:
    """Per referring site, reading site and priority: signed, open, median and 90th-percentile hours to signature."""
    return [vars(t) for t in referrals.turnaround(engine, site=principal.site)]
