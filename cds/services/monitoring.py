"""Monitoring: observations stored as time series, and early-warning scores recomputed as they arrive.

Observations come from devices and wards; each patient's scores use the latest value of every parameter within
its window. The window (:data:`WINDOW`, 4 hours) is the shortest interval at which NEWS2 asks a patient with a low
score to be observed again (4-6-hourly), so a score never combines a fresh pulse with a blood pressure from
yesterday: a parameter with no value in its window leaves the score uncomputed, and the outcome names what is
missing. Scores are released (stored and audited) in the same transaction as the observations that triggered
them. qSOFA's altered mentation is taken from the ACVPU level: anything but alert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from cds.errors import InvalidInputError
from cds.interop.fhir_alert import alert_communication
from cds.interop.fhir_observations import Refusal, read_observations
from cds.models.risk import get_equation
from cds.pipelines.monitoring.alert_rules import RISE_WINDOW, news2_signal
from cds.pipelines.risk.equation import EquationPipeline
from cds.results.alerts import EarlyWarning, RaisedAlert, Signal
from cds.services import follow_up
from cds.services.engine import Engine
from cds.services.risk import release
from cds.store import observations, outbox
from cds.store import scores as score_series
from cds.store.alerts import AlertAction, raise_alert
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.sites import acting_site
from cds.store.tables import ObservationRow, ScoreRow

WINDOW = dt.timedelta(hours=4)
EARLY_WARNING = ("news2", "qsofa")


@dataclass(frozen=True)
class IngestOutcome:
    """What one request did: values stored and already stored, Observations refused, scores and alerts."""

    stored: int
    duplicates: int
    refused: tuple[Refusal, ...]
    scores: tuple[EarlyWarning, ...]
    patients: tuple[str, ...]
    alerts: tuple[RaisedAlert, ...] = ()


def ingest(engine: Engine, document: Mapping[str, Any], *, actor: Actor, now: dt.datetime | None = None,
           authorize: Callable[[list[str]], None] | None = None) -> IngestOutcome:  # fmt: skip
    """Store the values of an Observation or a Bundle of them, once each, and recompute early-warning scores.

    Args:
        engine: The engine whose database stores them.
        document: A FHIR Observation, or a Bundle of them.
        actor: Who sent them (audited).
        now: Arrival time (default: now); scores use the values within their window before it.
        authorize: Called with the patients the document is about, before anything is stored; it raises to refuse
            (the caller's patient scope).

    Raises:
        InvalidInputError: ``invalid_fhir`` (not an Observation or Bundle), or ``observations_refused`` (422)
            when no Observation could be used, each reason listed.
    """
    now = now or dt.datetime.now(dt.UTC)
    batch = read_observations(document, now=now)
    if authorize is not None:
        authorize(sorted({value.patient for value in batch.values}))
    if not batch.values:
        reasons = "; ".join(f"{r.source}: {r.code}: {r.reason}" for r in batch.refused[:10]) or "no Observation"
        raise InvalidInputError(f"no Observation could be used ({reasons})", code="observations_refused")
    site = acting_site(actor, engine.settings.site)  # whose record they become, and their scores and alerts
    actor = replace(actor, site=site)
    rows = [ObservationRow(id=v.key, site=site, patient=v.patient, field=v.field, value=v.value, text=v.text,
                           effective=v.effective, source=v.source[:300], device=v.device, received_at=now,
                           setting=v.setting)
            for v in batch.values]  # fmt: skip
    with engine.database.session() as session:
        added = observations.store(session, rows)
        patients = sorted({row.patient for row in rows})
        scores = [outcome for patient in sorted({row.patient for row in added})
                  for outcome in _score(engine, session, patient, now, actor, site)]  # fmt: skip
        webhooks = engine.settings.alert_webhooks
        alerts = [alert for outcome in scores
                  if (alert := _alert(session, outcome, now, actor, webhooks, site)) is not None]  # fmt: skip
        for patient in sorted({row.patient for row in added}):  # registry patients' home blood pressure
            found = follow_up.home_bp_check(engine, session, patient, added, now, actor)
            if found is not None:
                alerts.append(_raise(session, patient, "home_bp", *found, now, actor, webhooks))
        for patient in patients:
            record_event(session, AuditAction.OBSERVATIONS_INGEST, actor, "Observation", subject=patient,
                         detail={"stored": sum(r.patient == patient for r in added),
                                 "duplicates": sum(r.patient == patient for r in rows) -
                                 sum(r.patient == patient for r in added),
                                 "refused": len(batch.refused)})  # fmt: skip
    return IngestOutcome(len(added), len(rows) - len(added), tuple(batch.refused), tuple(scores), tuple(patients),
                         tuple(alerts))  # fmt: skip


def _score(engine: Engine, session: Any, patient: str, now: dt.datetime, actor: Actor,
           site: str) -> list[EarlyWarning]:  # fmt: skip
    """Each early-warning score from the patient's latest in-window values at ``site``.

    Released when every input is there.
    """
    outcomes = []
    windows = {f.name: WINDOW for name in EARLY_WARNING for f in get_equation(name).fields}
    latest = observations.latest(session, patient, windows | {"consciousness": WINDOW}, now, site=site)  # one query
    level = latest.get("consciousness")
    if "altered_mentation" not in latest and level is not None:
        # qSOFA's altered mentation from the ACVPU level: anything but alert (new confusion, or responding only to
        # voice or pain, or not at all) is a Glasgow Coma Scale below 15
        latest["altered_mentation"] = observations.StoredValue(float(level.value != "alert"), level.effective,
                                                               level.source)  # fmt: skip
    for name in EARLY_WARNING:
        equation = get_equation(name)
        missing = tuple(f.name for f in equation.fields if f.required and f.name not in latest)
        if missing:
            outcomes.append(EarlyWarning(patient=patient, method=name, result_id=None, score=None, band=None,
                                         category=None, missing=list(missing)))  # fmt: skip
            continue
        used = {field: stored for field, stored in latest.items() if field in equation.field_names()}
        try:
            result = EquationPipeline(equation, population=engine.settings.risk_population)(
                {field: stored.value for field, stored in used.items()})
            result = result.model_copy(update={"observed_at": max(stored.effective for stored in used.values())})
        except InvalidInputError as exc:  # cannot happen for stored values, which passed the same limits
            outcomes.append(EarlyWarning(patient=patient, method=name, result_id=None, score=None, band=None,
                                         category=exc.message, missing=[]))  # fmt: skip
            continue
        result_id = release(session, result, subject=patient, actor=actor)
        observed = result.observed_at or now
        score_series.add(session, ScoreRow(id=result_id, patient=patient, family=name, score=float(result.score or 0.0),
                                     band=result.band.value if result.band else None,
                                     category=(result.category or None) and result.category[:200],
                                     observed_at=observed, released_at=now, site=site))  # fmt: skip
        engine.metrics.count_scored(result.method.name, result.status.value)
        red = any(c.contribution >= 3 for c in result.contributions)
        outcomes.append(EarlyWarning(patient=patient, method=name, result_id=result_id, score=result.score,
                                     band=result.band.value if result.band else None, category=result.category,
                                     missing=[], red=red, method_key=result.method.key,
                                     observed_at=observed))  # fmt: skip
    return outcomes


def _alert(session: Any, outcome: EarlyWarning, now: dt.datetime, actor: Actor, webhooks: list[str],
           site: str) -> RaisedAlert | None:  # fmt: skip
    """The alert a new NEWS2 score raises (rules in :mod:`cds.pipelines.monitoring.alert_rules`), if any."""
    observed = outcome.observed_at
    if outcome.method != "news2" or outcome.score is None or outcome.result_id is None or observed is None:
        return None
    lowest = score_series.lowest(session, outcome.patient, outcome.method, observed - RISE_WINDOW, observed,
                                 excluding=outcome.result_id, site=site)  # fmt: skip
    signal = news2_signal(outcome.score, outcome.red, lowest)
    if signal is None:
        return None
    return _raise(session, outcome.patient, "news2", signal, outcome.result_id, now, actor, webhooks)


def _raise(session: Any, patient: str, family: str, signal: Signal, result_id: str, now: dt.datetime, actor: Actor,
           webhooks: list[str]) -> RaisedAlert:  # fmt: skip
    """Open, escalate or deduplicate the patient's alert of ``family``.

    An opened or escalated alert goes to the subscribers through the outbox, in this transaction.
    """
    row, action = raise_alert(session, patient=patient, family=family, signal=signal, result_id=result_id, now=now,
                              actor=actor)  # fmt: skip
    rules = tuple(row.rules.split(","))
    if action is not AlertAction.DEDUPLICATED and webhooks:  # delivered from the outbox, written with the alert
        message = alert_communication(alert_id=row.id, patient=row.patient, level=row.level, rules=rules,
                                      text=row.text, result_id=row.result_id, event=action.value, sent=now)
        outbox.enqueue(session, destinations=webhooks, topic="alert", payload=message, now=now)
    return RaisedAlert(alert_id=row.id, patient=row.patient, level=row.level, rules=list(rules), text=row.text,
                       action=action.value)
