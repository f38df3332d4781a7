"""``/v1/observations``: observations from devices and wards in (FHIR), a patient's time series out.

Each posted Observation is checked on its own (patient, time, code, unit, limits); refused ones are listed with
their reason and the rest are stored once each (posting the same Observation again changes nothing). Early-warning
scores are recomputed for every patient that got new values, from the latest values within each parameter's window,
and released with the observations in one transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel

from cds.results.alerts import EarlyWarning, RaisedAlert
from cds.services import monitoring, monitoring_board
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import (
    EngineDep,
    IsoDateTime,
    PatientRef,
    StateDep,
    enforce_patient_scope,
    require,
    window_start,
)

router = APIRouter(prefix="/v1/observations", tags=["monitoring"])
Clinical = Annotated[Principal, Depends(require(Role.CLINICIAN, Role.ADMIN))]


class RefusedObservation(BaseModel):
    """An Observation that was not stored, and why (machine-readable ``code``)."""

    source: str
    code: str
    reason: str


class IngestResponse(BaseModel):
    """What the request stored, what was already stored, what was refused, the scores recomputed, the alerts."""

    stored: int
    duplicates: int
    refused: list[RefusedObservation]
    scores: list[EarlyWarning]
    alerts: list[RaisedAlert]


class StoredObservation(BaseModel):
    """One stored value."""

    field: str
    value: float | None
    text: str | None
    effective: dt.datetime
    source: str
    device: str


@router.post("")
def post_observations(
    document: Annotated[dict[str, Any], Body(description="A FHIR R4 Observation, or a batch, transaction or "
                                                        "collection Bundle of Observations (Patient and Device "
                                                        "entries allowed)")],
    http: Request, state: StateDep, engine: EngineDep, principal: Clinical,
) -> IngestResponse:  # fmt: skip
    """Store observations (once each) and recompute the patients' early-warning scores; refusals are listed."""
    def authorize(patients: list[str]) -> None:
        for patient in patients:
            enforce_patient_scope(state, http, principal, patient)

    outcome = monitoring.ingest(engine, document, actor=principal.actor, authorize=authorize)
    return IngestResponse(
        stored=outcome.stored, duplicates=outcome.duplicates,
        refused=[RefusedObservation(source=r.source, code=r.code, reason=r.reason) for r in outcome.refused],
        scores=list(outcome.scores), alerts=list(outcome.alerts),
    )  # fmt: skip


@router.get("")
def get_observations(
    patient: PatientRef,
    http: Request, state: StateDep, engine: EngineDep, principal: Clinical,
    since: Annotated[IsoDateTime | None,
                     Query(description="From this time (default: 7 days ago)")] = None,
) -> list[StoredObservation]:  # fmt: skip
    """A patient's stored observations, oldest first (audited)."""
    enforce_patient_scope(state, http, principal, patient)
    rows = monitoring_board.history(engine, patient, window_start(since, dt.timedelta(days=7)), actor=principal.actor)
    return [StoredObservation(field=r.field, value=r.value, text=r.text, source=r.source, device=r.device,
                              effective=r.effective)
            for r in rows]  # fmt: skip
