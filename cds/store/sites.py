"""Sites: which site's data a row is, and what a caller of a site may see.

A job or a stored DICOM instance belongs to the site of whoever sent it (the caller's token or API key names the
site; a study a PACS sends to the DICOM node belongs to this deployment's site); so do what is kept per patient
(results, observations, early-warning scores, alerts, registry entries, imported shared results) and readers'
verdicts. A caller sees their own site's rows only; another site's job, study, result or alert answers as if it did
not exist (404), so nothing about it leaks. Audit events carry the acting site too.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from cds.store.audit import Actor
from cds.store.tables import (
    AlertRow,
    DicomInstanceRow,
    EcgReviewRow,
    FindingFeedbackRow,
    HookFeedbackRow,
    JobRow,
    ObservationRow,
    RegistryRow,
    ResultRow,
    ScoreRow,
    SharedResultRow,
)

SITED = (JobRow, DicomInstanceRow, ResultRow, ObservationRow, ScoreRow, AlertRow, RegistryRow, SharedResultRow,
         FindingFeedbackRow, EcgReviewRow, HookFeedbackRow)  # every table with a site but the audit trail's


def adopt_unsited(session: Session, site: str) -> int:
    """Give rows stored before sites existed (no site) to ``site``, this deployment's; how many.

    Audit events are never changed (their hash would break): one without a site is the deployment's.
    """
    adopted = 0
    for table in SITED:
        result = session.execute(update(table).where(table.site == "").values(site=site))
        adopted += int(getattr(result, "rowcount", 0) or 0)
    return adopted


def visible_sites(site: str, home: str) -> tuple[str, ...]:
    """The site values a caller of ``site`` sees at a deployment of site ``home``.

    Their own, and for the home site's callers also rows no site was given to yet (the deployment's, as
    :func:`adopt_unsited` says).
    """
    return (site, "") if site == home else (site,)


def acting_site(actor: Actor, home: str) -> str:
    """The site ``actor`` acts for: theirs, or the deployment's (``home``) for one that names none."""
    return actor.site or home


def actor_sites(actor: Actor, home: str) -> tuple[str, ...]:
    """The site values whose rows ``actor`` sees at a deployment of site ``home`` (:func:`visible_sites`)."""
    return visible_sites(acting_site(actor, home), home)
