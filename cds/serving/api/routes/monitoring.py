"""``/v1/monitoring``: the clinician's view of monitored patients, most urgent first, and each one's scores over time.

A patient is monitored while observations arrive for them (``/v1/observations``); their alerts are under
``/v1/alerts``. A patient-scoped token sees only its own patient.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from cds.results.alerts import MonitoredPatient, ScorePoint
from cds.services import monitoring_board
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

router = APIRouter(prefix="/v1/monitoring", tags=["monitoring"])
Clinical = Annotated[Principal, Depends(require(Role.CLINICIAN, Role.ADMIN))]


@router.get("/patients")
def monitored_patients(
    engine: EngineDep, principal: Clinical,
    since: Annotated[IsoDateTime | None,
                     Query(description="Observations from this time (default: 24 hours ago)")] = None,
) -> list[MonitoredPatient]:  # fmt: skip
    """Patients with observations since ``since``: the most urgent open alert first, then the highest NEWS2."""
    return monitoring_board.patients(engine, window_start(since, dt.timedelta(hours=24)), patient=principal.patient,
                                     actor=principal.actor)  # fmt: skip


@router.get("/scores")
def scores(
    patient: PatientRef, http: Request, state: StateDep, engine: EngineDep, principal: Clinical,
    since: Annotated[IsoDateTime | None, Query(description="From this time (default: 7 days ago)")]
    = None,
) -> list[ScorePoint]:  # fmt: skip
    """A patient's early-warning scores (NEWS2, qSOFA) as released, oldest first (audited)."""
    enforce_patient_scope(state, http, principal, patient)
    return monitoring_board.scores(engine, patient, window_start(since, dt.timedelta(days=7)), actor=principal.actor)
