"""``/v1/alerts``: alerts raised by early-warning scores; a clinician lists and acknowledges them (audited).

A patient-scoped token sees and acknowledges only its own patient's alerts.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from cds.interop.fhir_observations import PATIENT_REFERENCE
from cds.results.alerts import AlertRecord
from cds.services import monitoring_board
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, StateDep, enforce_patient_scope, require

router = APIRouter(prefix="/v1/alerts", tags=["monitoring"])
Clinical = Annotated[Principal, Depends(require(Role.CLINICIAN, Role.ADMIN))]


@router.get("")
def list_alerts(
    engine: EngineDep, principal: Clinical,
    state: Annotated[Literal["open", "acknowledged", "all"], Query(description="open, acknowledged, or all")] = "open",
    patient: Annotated[str | None, Query(pattern=PATIENT_REFERENCE)] = None,
) -> list[AlertRecord]:  # fmt: skip
    """Alerts, most urgent and newest first (a patient-scoped token: its patient's only)."""
    scoped = principal.patient
    return monitoring_board.alerts(
        engine, state=None if state == "all" else state, patient=scoped or patient, actor=principal.actor
    )


@router.post("/{alert_id}/acknowledge")
def acknowledge(alert_id: str, http: Request, state: StateDep, engine: EngineDep,
                principal: Clinical) -> AlertRecord:  # fmt: skip
    """Acknowledge an alert (audited); acknowledging it again changes nothing."""
    enforce_patient_scope(state, http, principal, monitoring_board.alert_patient(engine, alert_id,
                                                                                  actor=principal.actor))
    return monitoring_board.acknowledge_alert(engine, alert_id, actor=principal.actor)
