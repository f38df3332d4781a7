"""Observations over time: stored once each, and read back as a patient's latest values within a window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from cds.store.tables import ObservationRow


@dataclass(frozen=True)
class StoredValue:
    """The latest value of one input within its window, and where it came from."""

    value: float | str
    effective: dt.datetime
    source: str


def store(session: Session, rows: Sequence[ObservationRow]) -> list[ObservationRow]:
    """Add the rows not stored before (by id within their site); return those added.

    The caller's transaction commits them.
    """
    if not rows:
        return []
    ids = list({row.id for row in rows})
    known = set(session.execute(select(ObservationRow.id, ObservationRow.site).where(ObservationRow.id.in_(ids))
                                ).tuples())  # fmt: skip
    added: list[ObservationRow] = []
    for row in rows:
        if (row.id, row.site) not in known:
            known.add((row.id, row.site))
            added.append(row)
    if added:  # one multi-row INSERT, not one ORM object each (the rows stay outside the session)
        columns = [column.key for column in ObservationRow.__table__.columns]
        session.execute(insert(ObservationRow), [{name: getattr(row, name) for name in columns} for row in added])
    return added


def latest(session: Session, patient: str, windows: Mapping[str, dt.timedelta], now: dt.datetime, *,
           site: str) -> dict[str, StoredValue]:  # fmt: skip
    """Per input, the most recent value ``site`` holds effective within its window before ``now`` (never stale).

    One query for all the inputs (from the widest window), then each input's own window.
    """
    if not windows:
        return {}
    oldest = now - max(windows.values())
    rows = session.execute(
        select(ObservationRow.field, ObservationRow.value, ObservationRow.text, ObservationRow.effective,
               ObservationRow.source)
        .where(ObservationRow.patient == patient, ObservationRow.site == site, ObservationRow.field.in_(list(windows)),
               ObservationRow.effective > oldest, ObservationRow.effective <= now)
        .order_by(ObservationRow.effective.desc(), ObservationRow.id)
    )  # fmt: skip (columns, not ORM objects: this runs on every ingest)
    found: dict[str, StoredValue] = {}
    for row in rows:
        if row.field in found or row.effective <= now - windows[row.field]:
            continue
        value: float | str = row.text if row.text is not None else float(row.value or 0.0)
        found[row.field] = StoredValue(value, row.effective, row.source)
    return found


def series(session: Session, patient: str | Sequence[str], since: dt.datetime, fields: Iterable[str] | None = None,
           *, sites: Sequence[str]) -> list[ObservationRow]:  # fmt: skip
    """A patient's (or several patients') observations at ``sites`` (of ``fields``, or all) since ``since``.

    Oldest first.
    """
    patients = [patient] if isinstance(patient, str) else list(patient)
    found: list[ObservationRow] = []
    for start in range(0, len(patients), 500):
        query = select(ObservationRow).where(ObservationRow.patient.in_(patients[start : start + 500]),
                                             ObservationRow.effective >= since,
                                             ObservationRow.site.in_(list(sites)))  # fmt: skip
        if fields is not None:
            query = query.where(ObservationRow.field.in_(list(fields)))
        found += session.scalars(query.order_by(ObservationRow.effective, ObservationRow.id))
    return sorted(found, key=lambda row: (row.effective, row.id)) if len(patients) > 500 else found


@dataclass(frozen=True)
class Monitored:
    """A patient with observations in a window: how many, and the newest one's time."""

    patient: str
    observations: int
    last: dt.datetime


def monitored(session: Session, since: dt.datetime, *, sites: Sequence[str], patient: str | None = None,
              limit: int = 500) -> list[Monitored]:  # fmt: skip
    """The patients with observations at ``sites`` effective since ``since`` (or only ``patient``).

    Most recently seen first.
    """
    last = func.max(ObservationRow.effective)
    query = select(ObservationRow.patient, func.count(), last).where(ObservationRow.effective >= since,
                                                                     ObservationRow.site.in_(list(sites)))  # fmt: skip
    if patient is not None:
        query = query.where(ObservationRow.patient == patient)
    rows = session.execute(query.group_by(ObservationRow.patient).order_by(last.desc()).limit(limit))
    return [Monitored(name, count, when) for name, count, when in rows]  # max() keeps the column's type: aware
