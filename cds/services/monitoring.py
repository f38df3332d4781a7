"""Monitoring: observations stored as time series, and early-warning scores recomputed as they arrive.

Observations come from devices and wards; each patient's scores use the latest value of every parameter within
its window.

The window (:data:`WINDOW`, 4 hours) is the shortest interval at which NEWS2 asks a patient with a low score to be
observed again (4-6-hourly), so a score never combines a fresh pulse with a blood pressure from yesterday: a
parameter with no value in its window leaves the score uncomputed, and the outcome names what is missing. Scores
are released (stored and audited) in the same transaction as the observations that triggered them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cds.errors import InvalidInputError
from cds.interop.fhir_observations import Refusal, read_observations
from cds.models.risk import get_equation
from cds.pipelines.risk.equation import EquationPipeline
from cds.services.engine import Engine
from cds.services.risk import release
from cds.store import observations
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.tables import ObservationRow

WINDOW = dt.timedelta(hours=4)
EARLY_WARNING = ("news2", "qsofa")


@dataclass(frozen=True)
class ScoreOutcome:
    """A patient's early-warning score after new data: the stored result, or the inputs missing in the window."""

    patient: str
    method: str
    result_id: str | None
    score: float | None
    band: str | None
    category: str | None
    missing: tuple[str, ...]


@dataclass(frozen=True)
class IngestOutcome:
    """What one request did: values stored, values already stored, Observations refused, scores recomputed."""

    stored: int
    duplicates: int
    refused: tuple[Refusal, ...]
    scores: tuple[ScoreOutcome, ...]
    patients: tuple[str, ...]


def patients_in(document: Mapping[str, Any]) -> list[str]:
    """The patients an Observation or Bundle is about (for the caller's scope check), refusals aside."""
    return sorted({value.patient for value in read_observations(document).values})


def ingest(engine: Engine, document: Mapping[str, Any], *, actor: Actor,
           now: dt.datetime | None = None) -> IngestOutcome:  # fmt: skip
    """Store the values of an Observation or a Bundle of them, once each, and recompute early-warning scores.

    Raises:
        InvalidInputError: ``invalid_fhir`` (not an Observation or Bundle), or ``observations_refused`` (422)
            when no Observation could be used, each reason listed.
    """
    now = now or dt.datetime.now(dt.UTC)
    batch = read_observations(document, now=now)
    if not batch.values:
        reasons = "; ".join(f"{r.source}: {r.code}: {r.reason}" for r in batch.refused[:10]) or "no Observation"
        raise InvalidInputError(f"no Observation could be used ({reasons})", code="observations_refused")
    rows = [ObservationRow(id=v.key, patient=v.patient, field=v.field, value=v.value, text=v.text,
                           effective=v.effective, source=v.source[:300], device=v.device, received_at=now)
            for v in batch.values]  # fmt: skip
    with engine.database.session() as session:
        added = observations.store(session, rows)
        patients = sorted({row.patient for row in rows})
        scores = [outcome for patient in sorted({row.patient for row in added})
                  for outcome in _score(engine, session, patient, now, actor)]  # fmt: skip
        for patient in patients:
            record_event(session, AuditAction.OBSERVATIONS_INGEST, actor, "Observation", subject=patient,
                         detail={"stored": sum(r.patient == patient for r in added),
                                 "duplicates": sum(r.patient == patient for r in rows) -
                                 sum(r.patient == patient for r in added),
                                 "refused": len(batch.refused)})  # fmt: skip
    return IngestOutcome(len(added), len(rows) - len(added), tuple(batch.refused), tuple(scores), tuple(patients))


def _score(engine: Engine, session: Any, patient: str, now: dt.datetime, actor: Actor) -> list[ScoreOutcome]:
    """Each early-warning score from the patient's latest in-window values; released when every input is there."""
    outcomes = []
    for name in EARLY_WARNING:
        equation = get_equation(name)
        windows = {f.name: WINDOW for f in equation.fields}
        latest = observations.latest(session, patient, windows, now)
        missing = tuple(f.name for f in equation.fields if f.required and f.name not in latest)
        if missing:
            outcomes.append(ScoreOutcome(patient, name, None, None, None, None, missing))
            continue
        values = {name: stored.value for name, stored in latest.items()}
        try:
            result = EquationPipeline(equation, population=engine.settings.risk_population)(values)
        except InvalidInputError as exc:  # cannot happen for stored values, which passed the same limits
            outcomes.append(ScoreOutcome(patient, name, None, None, None, exc.message, ()))
            continue
        result_id = release(session, result, subject=patient, actor=actor)
        engine.metrics.count_scored(result.method.name, result.status.value)
        outcomes.append(ScoreOutcome(patient, name, result_id, result.score,
                                     result.band.value if result.band else None, result.category, ()))  # fmt: skip
    return outcomes


def history(engine: Engine, patient: str, since: dt.datetime, *, actor: Actor) -> list[ObservationRow]:
    """A patient's stored observations since ``since``, oldest first (audited as a read)."""
    with engine.database.session() as session:
        rows = observations.series(session, patient, since)
        record_event(session, AuditAction.OBSERVATIONS_READ, actor, "Observation", subject=patient,
                     detail={"rows": len(rows)})
        session.expunge_all()
    return rows
