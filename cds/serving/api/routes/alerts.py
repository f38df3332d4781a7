"""``/v1/alerts``: alerts raised by early-warning scores; a clinician lists and acknowledges them (audited).

A patient-scoped token sees and acknowledges only its own patient's alerts.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from cds.services import monitoring
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, StateDep, enforce_patient_scope, require

router = APIRouter(prefix="/v1/alerts", tags=["monitoring"])
Clinical = Annotated[Principal, Depends(require(Role.CLINICIAN, Role.ADMIN))]


class Alert(BaseModel):
    """An alert: its level (urgent, emergency), the rules met, and who acknowledged it."""

    id: str
    patient: str
    level: str
    state: str
    rules: list[str]
    text: str
    result_id: str
    escalations: int
    opened_at: dt.datetime
    updated_at: dt.datetime
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None


def _alert(view: monitoring.AlertView) -> Alert:
    return Alert(id=view.id, patient=view.patient, level=view.level, state=view.state, rules=list(view.rules),
                 text=view.text, result_id=view.result_id, escalations=view.escalations, opened_at=view.opened_at,
                 updated_at=view.updated_at, acknowledged_by=view.acknowledged_by,
                 acknowledged_at=view.acknowledged_at)  # fmt: skip


@router.get("")
def list_alerts(
    engine: EngineDep, principal: Clinical,
    state: Annotated[Literal["open", "acknowledged"] | None, Query(description="open, acknowledged, or both")] = "open",
    patient: Annotated[str | None, Query(pattern=r"^Patient/[A-Za-z0-9\-.]{1,64}$")] = None,
) -> list[Alert]:  # fmt: skip
    """Alerts, most urgent and newest first (a patient-scoped token: its patient's only)."""
    scoped = principal.patient
    views = monitoring.alerts(engine, state=state, patient=scoped or patient, actor=principal.actor)
    return [_alert(view) for view in views]


@router.post("/{alert_id}/acknowledge")
def acknowledge(alert_id: str, http: Request, state: StateDep, engine: EngineDep, principal: Clinical) -> Alert:
    """Acknowledge an alert (audited); acknowledging it again changes nothing."""
    enforce_patient_scope(state, http, principal, monitoring.alert_patient(engine, alert_id))
    return _alert(monitoring.acknowledge_alert(engine, alert_id, actor=principal.actor))
