"""What a clinician watching patients reads, and the acknowledgement of an alert.

Who is monitored, by alert level; each one's observations, scores and alerts on a time axis. Every read is audited.
"""

from __future__ import annotations

import datetime as dt

from cds.results.alerts import RANK, AlertLevel, AlertRecord, MonitoredPatient, ScorePoint
from cds.services.engine import Engine
from cds.services.monitoring import EARLY_WARNING
from cds.store import alerts as alert_store
from cds.store import observations
from cds.store import scores as score_series
from cds.store.alerts import OPEN
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.sites import actor_sites
from cds.store.tables import AlertRow, ObservationRow, ScoreRow


def _point(row: ScoreRow) -> ScorePoint:
    return ScorePoint(method=row.family, score=row.score, band=row.band, category=row.category, at=row.released_at,
                      observed_at=row.observed_at, result_id=row.id)  # fmt: skip


def patients(engine: Engine, since: dt.datetime, *, patient: str | None, actor: Actor) -> list[MonitoredPatient]:
    """The patients with observations at the actor's site since ``since`` (or only ``patient``), most urgent first.

    Order: the most urgent open alert, then the highest latest NEWS2, then the most recently seen.
    """
    sites = actor_sites(actor, engine.settings.site)
    with engine.database.session() as session:
        seen = observations.monitored(session, since, sites=sites, patient=patient)
        names = [m.patient for m in seen]
        latest = {name: {family: _point(row) for family, row in rows.items()}
                  for name, rows in score_series.latest(session, names, since, sites=sites).items()}  # fmt: skip
        open_alerts: dict[str, list[AlertRow]] = {name: [] for name in names}
        for row in alert_store.list_alerts(session, state=OPEN, patient=patient, sites=sites, limit=10_000):
            if row.patient in open_alerts:
                open_alerts[row.patient].append(row)
        record_event(session, AuditAction.MONITORING_READ, actor, "Patient", subject=patient or "",
                     detail={"patients": len(seen)})
    board = []
    for monitored in seen:
        alerts = open_alerts[monitored.patient]
        level = max((AlertLevel(row.level) for row in alerts), key=RANK.__getitem__, default=None)
        board.append(MonitoredPatient(patient=monitored.patient, alert_level=level.value if level else None,
                                      open_alerts=len(alerts), latest=latest.get(monitored.patient, {}),
                                      observations=monitored.observations, last_observation=monitored.last))
    news2 = EARLY_WARNING[0]
    return sorted(board, key=lambda p: (-1 - RANK[AlertLevel(p.alert_level)] if p.alert_level else 0,
                                        -(p.latest[news2].score if news2 in p.latest else -1),
                                        -p.last_observation.timestamp()))  # fmt: skip


def scores(engine: Engine, patient: str, since: dt.datetime, *, actor: Actor) -> list[ScorePoint]:
    """A patient's early-warning scores at the actor's site measured since ``since``, oldest first (audited)."""
    with engine.database.session() as session:
        found = [_point(row) for row in score_series.series(session, patient, since,
                                                            sites=actor_sites(actor, engine.settings.site))]
        record_event(session, AuditAction.SCORES_READ, actor, "RiskAssessment", subject=patient,
                     detail={"scores": len(found)})
    return found


def history(engine: Engine, patient: str, since: dt.datetime, *, actor: Actor) -> list[ObservationRow]:
    """A patient's observations the actor's site holds since ``since``, oldest first (audited as a read)."""
    with engine.database.session() as session:
        rows = observations.series(session, patient, since, sites=actor_sites(actor, engine.settings.site))
        record_event(session, AuditAction.OBSERVATIONS_READ, actor, "Observation", subject=patient,
                     detail={"rows": len(rows)})
        for row in rows:  # kept readable after the commit (the audit event stays in the session to be written)
            session.expunge(row)
    return rows


def _view(row: AlertRow) -> AlertRecord:
    return AlertRecord(id=row.id, patient=row.patient, level=row.level, state=row.state,
                       rules=row.rules.split(","), text=row.text, result_id=row.result_id,
                       escalations=row.escalations, opened_at=row.opened_at, updated_at=row.updated_at,
                       acknowledged_by=row.acknowledged_by, acknowledged_at=row.acknowledged_at)  # fmt: skip


def alerts(engine: Engine, *, state: str | None, patient: str | None, actor: Actor) -> list[AlertRecord]:
    """The actor's site's alerts (most urgent, then newest, first), audited as a read."""
    with engine.database.session() as session:
        rows = alert_store.list_alerts(session, state=state, patient=patient,
                                       sites=actor_sites(actor, engine.settings.site))
        record_event(session, AuditAction.ALERTS_READ, actor, "Alert", subject=patient or "",
                     detail={"alerts": len(rows), "state": state or "any"})
        return [_view(row) for row in rows]


def alert_patient(engine: Engine, alert_id: str, *, actor: Actor) -> str:
    """The patient an alert of the actor's site is about (for the caller's scope check).

    Raises:
        NotFoundError: ``alert_not_found``, also for another site's.
    """
    with engine.database.session() as session:
        return alert_store.get_alert(session, alert_id, sites=actor_sites(actor, engine.settings.site)).patient


def acknowledge_alert(engine: Engine, alert_id: str, *, actor: Actor) -> AlertRecord:
    """A clinician acknowledges an alert (audited once; again changes nothing).

    Raises:
        NotFoundError: ``alert_not_found``.
    """
    with engine.database.session() as session:
        found = alert_store.get_alert(session, alert_id, sites=actor_sites(actor, engine.settings.site))
        row = alert_store.acknowledge(session, found, actor=actor, now=dt.datetime.now(dt.UTC))
        return _view(row)
