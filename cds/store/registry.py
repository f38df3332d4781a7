"""Chronic-disease registries: a patient is enrolled once per condition; listed per site."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cds.errors import NotFoundError
from cds.store.tables import RegistryRow


def enroll(session: Session, *, patient: str, condition: str, site: str, enrolled_on: dt.date,
           birth_date: str | None, source: str, enrolled_by: str) -> tuple[RegistryRow, bool]:  # fmt: skip
    """Enrol ``patient`` at ``site``; an enrolment already there is kept (a birth date it lacked is added).

    ``(row, new)``.
    """
    row = session.scalars(select(RegistryRow).where(RegistryRow.patient == patient, RegistryRow.site == site,
                                                    RegistryRow.condition == condition)).first()  # fmt: skip
    if row is not None:
        if row.birth_date is None and birth_date is not None:
            row.birth_date = birth_date
        return row, False
    row = RegistryRow(id=str(uuid.uuid4()), patient=patient, condition=condition, site=site, birth_date=birth_date,
                      enrolled_on=enrolled_on, source=source[:300], enrolled_by=enrolled_by[:200],
                      created_at=dt.datetime.now(dt.UTC))  # fmt: skip
    session.add(row)
    return row, True


def entries(session: Session, *, sites: Sequence[str], condition: str | None = None,
            patient: str | None = None) -> list[RegistryRow]:  # fmt: skip
    """Registry entries at ``sites``, by condition and patient when given, oldest enrolment first."""
    query = select(RegistryRow).where(RegistryRow.site.in_(list(sites)))
    if condition is not None:
        query = query.where(RegistryRow.condition == condition)
    if patient is not None:
        query = query.where(RegistryRow.patient == patient)
    return list(session.scalars(query.order_by(RegistryRow.enrolled_on, RegistryRow.patient)))


def entry(session: Session, patient: str, condition: str, *, sites: Sequence[str]) -> RegistryRow:
    """One patient's entry at ``sites``.

    Raises:
        NotFoundError: ``not_enrolled`` (404).
    """
    found = entries(session, sites=sites, condition=condition, patient=patient)
    if not found:
        raise NotFoundError(f"{patient} is not in the {condition} registry", code="not_enrolled")
    return found[0]
