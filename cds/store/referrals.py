"""Referrals in the store: which jobs and studies a site was asked to read, and marking them signed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, exists, select, update
from sqlalchemy.orm import Session

from cds.store.tables import ReferralRow

REFERRAL_PRIORITIES = ("stat", "urgent", "routine")  # most urgent first


def open_referral_urgency(session: Session, job_ids: list[str], site: str) -> dict[str, int]:
    """For each of ``job_ids`` with an open referral to ``site``: its priority's rank (0 most urgent)."""
    rank = {priority: index for index, priority in enumerate(REFERRAL_PRIORITIES)}
    found: dict[str, int] = {}
    for start in range(0, len(job_ids), 500):
        rows = session.execute(select(ReferralRow.job_id, ReferralRow.priority).where(
            ReferralRow.job_id.in_(job_ids[start:start + 500]), ReferralRow.to_site == site,
            ReferralRow.status == "open"))  # fmt: skip
        for job_id, priority in rows:
            found[job_id] = min(found.get(job_id, len(rank)), rank.get(priority, len(rank)))
    return found


def is_referred(session: Session, job_id: str, site: str) -> bool:
    """Whether job ``job_id`` was referred to ``site``."""
    return bool(session.scalar(select(exists().where(ReferralRow.job_id == job_id, ReferralRow.to_site == site))))


def referred_jobs(site: str) -> Select[str]:
    """The ids of the jobs referred to ``site`` (a subquery)."""
    return select(ReferralRow.job_id).where(ReferralRow.to_site == site)


def referred_studies(session: Session, site: str) -> list[str]:
    """The Study Instance UIDs of the jobs referred to ``site``."""
    found: set[str] = set()
    for uids in session.scalars(select(ReferralRow.study_uids).where(ReferralRow.to_site == site)):
        found.update(uids.split())
    return sorted(found)


def referrals_of(session: Session, job_ids: list[str], site: str) -> dict[str, ReferralRow]:
    """The newest referral of each of ``job_ids`` to or from ``site``, by job id."""
    rows = session.scalars(select(ReferralRow).where(ReferralRow.job_id.in_(job_ids),
                                                     (ReferralRow.to_site == site) | (ReferralRow.from_site == site))
                           .order_by(ReferralRow.created_at))  # fmt: skip
    return {row.job_id: row for row in rows}


def mark_signed(session: Session, job_id: str, *, site: str, signer: str, now: dt.datetime) -> int:
    """Close the open referrals of ``job_id`` to ``site``: signed by ``signer`` at ``now``; how many."""
    result = session.execute(update(ReferralRow).where(ReferralRow.job_id == job_id, ReferralRow.to_site == site,
                                                       ReferralRow.status == "open")
                             .values(status="signed", signed_at=now, signed_by=signer))  # fmt: skip
    return int(getattr(result, "rowcount", 0) or 0)
