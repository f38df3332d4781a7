"""Sites: which site's data a row is, and what a caller of a site may see.

A job or a stored DICOM instance belongs to the site of whoever sent it (the caller's token or API key names the
site; a study a PACS sends to the DICOM node belongs to this deployment's site). A caller sees their own site's
rows only; another site's job or study answers as if it did not exist (404), so nothing about it leaks.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from cds.store.tables import DicomInstanceRow, JobRow


def adopt_unsited(session: Session, site: str) -> int:
    """Give rows stored before sites existed (no site) to ``site``, this deployment's; how many."""
    adopted = 0
    for table in (JobRow, DicomInstanceRow):
        result = session.execute(update(table).where(table.site == "").values(site=site))
        adopted += int(getattr(result, "rowcount", 0) or 0)
    return adopted


def visible_sites(site: str, home: str) -> tuple[str, ...]:
    """The site values a caller of ``site`` sees at a deployment of site ``home``.

    Their own, and for the home site's callers also rows no site was given to yet (the deployment's, as
    :func:`adopt_unsited` says).
    """
    return (site, "") if site == home else (site,)
