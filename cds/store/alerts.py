"""Alerts: raised once per patient and score family while open, escalated in place, acknowledged by a clinician.

Every change is audited in the caller's transaction: ``alert.open``, ``alert.escalate``, ``alert.acknowledge``. A
signal no higher than the open alert's level changes nothing (deduplicated). After acknowledgement, the next signal
opens a new alert.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from cds.errors import NotFoundError
from cds.results.alerts import RANK, AlertLevel, Signal
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.tables import AlertRow

OPEN, ACKNOWLEDGED = "open", "acknowledged"


class AlertAction(StrEnum):
    """What a signal did to a patient's alerts."""

    OPENED = "opened"
    ESCALATED = "escalated"
    DEDUPLICATED = "deduplicated"


def raise_alert(session: Session, *, patient: str, family: str, signal: Signal, result_id: str, now: dt.datetime,
                actor: Actor) -> tuple[AlertRow, AlertAction]:  # fmt: skip
    """Open an alert for ``signal``, escalate the patient's open one, or leave it (a signal no higher).

    Alerts are per site: the patient's alerts at ``actor``'s site.
    """
    current = session.scalars(
        select(AlertRow).where(AlertRow.patient == patient, AlertRow.family == family, AlertRow.state == OPEN,
                               AlertRow.site == actor.site)
        .order_by(AlertRow.opened_at.desc()).limit(1)
    ).first()  # fmt: skip
    if current is None:
        row = AlertRow(id=str(uuid.uuid4()), patient=patient, family=family, rules=",".join(signal.rules),
                       level=signal.level.value, state=OPEN, text=signal.text[:1000], result_id=result_id,
                       escalations=0, opened_at=now, updated_at=now, site=actor.site)  # fmt: skip
        session.add(row)
        record_event(session, AuditAction.ALERT_OPEN, actor, f"Alert/{row.id}", subject=patient,
                     detail={"level": row.level, "rules": row.rules})
        return row, AlertAction.OPENED
    if RANK[signal.level] <= RANK[AlertLevel(current.level)]:
        return current, AlertAction.DEDUPLICATED
    current.level, current.rules, current.text = signal.level.value, ",".join(signal.rules), signal.text[:1000]
    current.result_id, current.updated_at, current.escalations = result_id, now, current.escalations + 1
    record_event(session, AuditAction.ALERT_ESCALATE, actor, f"Alert/{current.id}", subject=patient,
                 detail={"level": current.level, "rules": current.rules})
    return current, AlertAction.ESCALATED


def get_alert(session: Session, alert_id: str, *, sites: Sequence[str]) -> AlertRow:
    """One alert of one of ``sites``.

    Raises:
        NotFoundError: ``alert_not_found`` (404), also for another site's.
    """
    row = session.get(AlertRow, alert_id)
    if row is None or row.site not in sites:
        raise NotFoundError(f"no alert {alert_id[:40]!r}", code="alert_not_found")
    return row


def acknowledge(session: Session, row: AlertRow, *, actor: Actor, now: dt.datetime) -> AlertRow:
    """Mark ``row`` acknowledged by ``actor`` (again: unchanged, not audited twice)."""
    if row.state == ACKNOWLEDGED:
        return row
    row.state, row.acknowledged_by, row.acknowledged_at, row.updated_at = ACKNOWLEDGED, actor.subject, now, now
    record_event(session, AuditAction.ALERT_ACKNOWLEDGE, actor, f"Alert/{row.id}", subject=row.patient,
                 detail={"level": row.level})
    return row


def list_alerts(session: Session, *, state: str | None, patient: str | None, sites: Sequence[str],
                limit: int = 200) -> list[AlertRow]:  # fmt: skip
    """Alerts of ``sites``, most urgent and newest first."""
    query = select(AlertRow).where(AlertRow.site.in_(list(sites)))
    if state is not None:
        query = query.where(AlertRow.state == state)
    if patient is not None:
        query = query.where(AlertRow.patient == patient)
    rows = list(session.scalars(query.order_by(AlertRow.updated_at.desc()).limit(limit)))
    return sorted(rows, key=lambda r: -RANK.get(AlertLevel(r.level), 0))
