"""``/v1/registries``: chronic-disease registries (hypertension, diabetes) for family doctors.

Enrol a patient from the EHR's diagnosis (a FHIR Condition, or a Bundle with the Patient too) or by hand; list a
site's registry with each patient's control status and next follow-up, the overdue or the uncontrolled only; read
one patient's status. Statuses follow the national basic public health service schedule
(:mod:`cds.pipelines.monitoring.follow_up`). A patient-scoped token sees and enrols only its own patient.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel

from cds.errors import ForbiddenError, NotFoundError
from cds.pipelines.monitoring.follow_up import Condition
from cds.results.follow_up import FollowUpStatus, RegistryEntry
from cds.services import follow_up
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import (
    EngineDep,
    IsoDate,
    PatientRef,
    StateDep,
    audit_denial,
    enforce_patient_scope,
    require,
)
from cds.store.sites import visible_sites

router = APIRouter(prefix="/v1/registries", tags=["follow-up"])
Clinical = Annotated[Principal, Depends(require(Role.CLINICIAN, Role.ADMIN))]
Site = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,99}$",
                                   description="Site code: the caller's own (the default)")]  # fmt: skip


class Enrolled(BaseModel):
    """The registry entry, and whether this request created it."""

    entry: RegistryEntry
    new: bool


@router.post("/{condition}")
def enrol(
    condition: Condition,
    document: Annotated[dict[str, Any], Body(description="A FHIR R4 Condition (or a Bundle with the Condition and its "
                                                        "Patient), or {patient, site?, birth_date?, enrolled_on?}")],
    http: Request, response: Response, state: StateDep, engine: EngineDep, principal: Clinical,
) -> Enrolled:  # fmt: skip
    """Enrol a patient (201; 200 when already enrolled, unchanged but for a birth date it lacked)."""
    entry, new = follow_up.enroll(engine, condition, document, actor=principal.actor,
                                  authorize=lambda patient: enforce_patient_scope(state, http, principal, patient))
    response.status_code = 201 if new else 200
    return Enrolled(entry=entry, new=new)


@router.get("/{condition}")
def registry(
    condition: Condition, http: Request, state: StateDep, engine: EngineDep, principal: Clinical, site: Site = None,
    only: Annotated[Literal["overdue", "uncontrolled"] | None,
                    Query(description="overdue: follow-up past due; uncontrolled: not controlled at the last "
                                      "follow-up or above target at home")] = None,
    as_of: Annotated[IsoDate | None, Query(description="The day statuses are computed at (default: today)")] = None,
) -> list[FollowUpStatus]:  # fmt: skip
    """The caller's site's registry: each patient's control and next follow-up, the most overdue first.

    Naming another site than the caller's is refused (403 ``other_site``, audited).
    """
    if site is not None and site != principal.site:
        audit_denial(state, http, principal.actor, "other_site")
        raise ForbiddenError(f"you read the registry of {principal.site}, not of {site}", code="other_site")
    sites = visible_sites(principal.site, engine.settings.site)
    found = follow_up.statuses(engine, condition=condition, sites=sites, patient=principal.patient,
                               actor=principal.actor, today=as_of)  # fmt: skip
    if only == "overdue":
        return [s for s in found if s.overdue_days > 0]
    if only == "uncontrolled":
        return [s for s in found if s.controlled is False or any(c.controlled is False for c in s.controls)]
    return found


@router.get("/{condition}/status")
def status(
    condition: Condition, patient: PatientRef,
    http: Request, state: StateDep, engine: EngineDep, principal: Clinical,
    as_of: Annotated[IsoDate | None, Query(description="The day the status is computed at (default: today)")] = None,
) -> FollowUpStatus:  # fmt: skip
    """One patient's control and follow-up (404 ``not_enrolled`` when not in this registry)."""
    enforce_patient_scope(state, http, principal, patient)
    found = follow_up.statuses(engine, condition=condition, sites=visible_sites(principal.site, engine.settings.site),
                               patient=patient, actor=principal.actor, today=as_of)  # fmt: skip
    if not found:
        raise NotFoundError(f"{patient} is not in the {condition.value} registry", code="not_enrolled")
    return found[0]
