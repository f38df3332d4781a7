"""Early-warning scores over time, written with their released result.

Read as a patient's series, each patient's latest, and the lowest in a window (the trend rule's baseline).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cds.store.tables import ScoreRow


def add(session: Session, row: ScoreRow) -> None:
    """Add ``row`` to the caller's transaction."""
    session.add(row)


def series(session: Session, patient: str, since: dt.datetime, *, sites: Sequence[str]) -> list[ScoreRow]:
    """A patient's scores at ``sites`` measured since ``since``, oldest first."""
    query = select(ScoreRow).where(ScoreRow.patient == patient, ScoreRow.observed_at >= since,
                                   ScoreRow.site.in_(list(sites)))  # fmt: skip
    return list(session.scalars(query.order_by(ScoreRow.observed_at, ScoreRow.released_at)))


def latest(session: Session, patients: Sequence[str], since: dt.datetime, *,
           sites: Sequence[str]) -> dict[str, dict[str, ScoreRow]]:  # fmt: skip
    """Per patient and score family, the most recently measured score at ``sites`` since ``since``."""
    found: dict[str, dict[str, ScoreRow]] = {}
    for start in range(0, len(patients), 500):
        query = select(ScoreRow).where(ScoreRow.patient.in_(list(patients[start : start + 500])),
                                       ScoreRow.observed_at >= since, ScoreRow.site.in_(list(sites)))  # fmt: skip
        for row in session.scalars(query.order_by(ScoreRow.observed_at, ScoreRow.released_at)):
            found.setdefault(row.patient, {})[row.family] = row  # later rows replace earlier ones
    return found


def lowest(session: Session, patient: str, family: str, start: dt.datetime, end: dt.datetime, *,
           excluding: str, site: str) -> float | None:  # fmt: skip
    """The lowest score of ``family`` at ``site`` measured in [start, end], but ``excluding``; ``None`` if none."""
    value = session.scalar(select(func.min(ScoreRow.score)).where(
        ScoreRow.patient == patient, ScoreRow.family == family, ScoreRow.observed_at >= start, ScoreRow.site == site,
        ScoreRow.observed_at <= end, ScoreRow.id != excluding))  # fmt: skip
    return None if value is None else float(value)
