"""Early-warning results: scores after new data, the alerts they raise, their levels and signals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class AlertLevel(StrEnum):
    """How urgently a clinician must respond; ordered."""

    ROUTINE = "routine"  # the next follow-up should see to it (a chronic disease above target)
    URGENT = "urgent"
    EMERGENCY = "emergency"


RANK = {AlertLevel.ROUTINE: 0, AlertLevel.URGENT: 1, AlertLevel.EMERGENCY: 2}


@dataclass(frozen=True)
class Signal:
    """What a score asks for: the rules it met, the level, and the words a clinician reads."""

    rules: tuple[str, ...]
    level: AlertLevel
    text: str


class EarlyWarning(BaseModel):
    """A patient's early-warning score after new data: the stored result, or the inputs missing in the window."""

    model_config = ConfigDict(frozen=True)

    patient: str
    method: str
    result_id: str | None
    score: float | None
    band: str | None
    category: str | None
    missing: list[str]
    red: bool = Field(default=False, exclude=True)  # a single parameter scored 3
    method_key: str = Field(default="", exclude=True)  # name@version, as results are stored
    observed_at: dt.datetime | None = None  # when the newest input was measured


class RaisedAlert(BaseModel):
    """An alert a new score opened, escalated, or found already open at that level (``deduplicated``)."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    patient: str
    level: str
    rules: list[str]
    text: str
    action: str


class AlertRecord(BaseModel):
    """An alert as a clinician reads it: its level, the rules met, and who acknowledged it."""

    model_config = ConfigDict(frozen=True)

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


class ScorePoint(BaseModel):
    """One released early-warning score on a patient's time axis."""

    model_config = ConfigDict(frozen=True)

    method: str
    score: float
    band: str | None
    category: str | None
    at: dt.datetime  # released
    observed_at: dt.datetime  # when the newest input was measured: where the score sits on the patient's time axis
    result_id: str


class MonitoredPatient(BaseModel):
    """A monitored patient as the clinician's list shows them: the open alert, the latest scores, when last seen."""

    model_config = ConfigDict(frozen=True)

    patient: str
    alert_level: str | None  # the most urgent open alert's level
    open_alerts: int
    latest: dict[str, ScorePoint]  # by score family ("news2", "qsofa")
    observations: int
    last_observation: dt.datetime
