"""What a worklist page shows about each study beyond its pre-read: study facts, priors, read status.

Read for the page's items only (a page is at most a few hundred studies), in a handful of queries:

* **study facts**: study date and accession number from the DICOM index, the description (StudyDescription) from
  the DICOM JSON kept with one instance of the study;
* **priors**: other studies of the same patient ID stored at the same site whose study date is earlier (when both
  studies state one; otherwise whose first instance was stored earlier). Patient IDs are issued per site, so
  another site's studies are never counted; :func:`prior_studies` lists them by the same rule for the viewer;
* **read status**: a study is *read* once the caller, or anyone at a site the caller sees
  (:func:`cds.store.sites.visible_sites`), has given a verdict on one of its AI findings or signed its report. The
  worklist is a team's list: a colleague's read takes the study off everyone's unread pile, and
  ``read_by_caller`` tells the caller's own reads apart.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cds.store.dicom_index import STORED
from cds.store.tables import DicomInstanceRow, FindingFeedbackRow, ReportSignatureRow

if TYPE_CHECKING:
    from cds.store.worklist import WorklistItem

_CHUNK = 500
STUDY_DESCRIPTION = "00081030"


@dataclass(frozen=True)
class Reader:
    """Who reads the worklist: their subject and the site values whose reads count as their team's."""

    subject: str
    sites: tuple[str, ...]


@dataclass(frozen=True)
class _Study:
    site: str
    date: str
    accession: str
    stored: dt.datetime  # when its first instance was stored
    metadata: str | None


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def _description(metadata: str | None) -> str:
    try:
        value = json.loads(metadata or "{}").get(STUDY_DESCRIPTION, {}).get("Value") or [""]
    except (ValueError, AttributeError):
        return ""
    return str(value[0]) if isinstance(value, list) and value else ""


def _studies(session: Session, uids: Iterable[str]) -> dict[str, _Study]:
    """Study UID -> its facts, from the first stored instance (by SOP Instance UID) that states each."""
    row = DicomInstanceRow
    found: dict[str, _Study] = {}
    for chunk in _chunks(uids):
        query = (select(row.study_uid, row.site, func.max(row.study_date), func.max(row.accession_number),
                        func.min(row.created_at), func.min(row.sop_instance_uid))
                 .where(row.study_uid.in_(chunk), row.origin == STORED).group_by(row.study_uid, row.site))  # fmt: skip
        first: dict[str, str] = {}
        for study, site, date, accession, stored, sop in session.execute(query):
            found[study] = _Study(site, date or "", accession or "", stored, None)
            first[sop] = study
        for sop, metadata in session.execute(select(row.sop_instance_uid, row.metadata_json).where(
                row.sop_instance_uid.in_(sorted(first)))):  # fmt: skip
            study = first[sop]
            found[study] = _Study(**{**vars(found[study]), "metadata": metadata})
    return found


def _earlier(date: str, stored: dt.datetime, than: _Study) -> bool:
    """Whether a study of ``date`` first stored at ``stored`` came before ``than`` (by date when both state one)."""
    return (date < than.date) if date and than.date else (stored < than.stored)


def _priors(session: Session, items: list[WorklistItem], studies: dict[str, _Study]) -> dict[str, int]:
    """Study UID -> the number of earlier studies of its patient at its site."""
    row = DicomInstanceRow
    patients = {i.patient_id for i in items if i.patient_id and i.study_uid in studies}
    history: dict[tuple[str, str], list[tuple[str, str, dt.datetime]]] = defaultdict(list)
    for chunk in _chunks(patients):
        query = (select(row.site, row.patient_id, row.study_uid, func.max(row.study_date), func.min(row.created_at))
                 .where(row.patient_id.in_(chunk), row.origin == STORED)
                 .group_by(row.site, row.patient_id, row.study_uid))  # fmt: skip
        for site, patient, study, date, stored in session.execute(query):
            history[(site, patient)].append((study, date or "", stored))
    counts: dict[str, int] = {}
    for item in items:
        this = studies.get(item.study_uid)
        if this is None or not item.patient_id:
            continue
        counts[item.study_uid] = sum(
            1 for study, date, stored in history[(this.site, item.patient_id)] if study != item.study_uid
            and _earlier(date, stored, this))
    return counts


@dataclass(frozen=True)
class PriorStudy:
    """An earlier study of the same patient at the same site: what the viewer offers to compare with."""

    study_uid: str
    study_date: str  # YYYYMMDD; empty when the images state none
    description: str
    accession_number: str
    modalities: tuple[str, ...]


def prior_studies(session: Session, study_uid: str, patient_id: str, *, sites: Iterable[str]) -> list[PriorStudy]:
    """The earlier studies of ``patient_id`` stored at the site of ``study_uid``, newest first.

    The rule the worklist counts ``priors`` by; nothing when the study is unknown, names no patient, or is held
    at a site not among ``sites`` (the caller's).
    """
    this = _studies(session, [study_uid]).get(study_uid)
    if this is None or not patient_id or this.site not in set(sites):
        return []
    row = DicomInstanceRow
    found: dict[str, tuple[str, dt.datetime]] = {}
    modalities: dict[str, set[str]] = defaultdict(set)
    query = (select(row.study_uid, row.study_date, row.created_at, row.modality)
             .where(row.patient_id == patient_id, row.site == this.site, row.origin == STORED,
                    row.study_uid != study_uid))  # fmt: skip
    for study, date, stored, modality in session.execute(query):
        earliest = found.get(study)
        found[study] = (max(date or "", earliest[0]) if earliest else date or "",
                        min(stored, earliest[1]) if earliest else stored)  # fmt: skip
        if modality:
            modalities[study].add(modality)
    earlier = [study for study, (date, stored) in found.items() if _earlier(date, stored, this)]
    facts = _studies(session, earlier)
    priors = [PriorStudy(study_uid=study, study_date=found[study][0], description=_description(facts[study].metadata),
                         accession_number=facts[study].accession, modalities=tuple(sorted(modalities[study])))
              for study in earlier if study in facts]  # fmt: skip
    return sorted(priors, key=lambda p: (p.study_date, found[p.study_uid][1]), reverse=True)


def _reads(session: Session, items: list[WorklistItem], reader: Reader) -> dict[tuple[str, str], set[str]]:
    """(job, study) -> who read it: ``caller`` and/or ``team``."""
    uids = {(i.job_id, o.uid): (i.job_id, i.study_uid) for i in items for o in i.outcomes}
    jobs = {i.job_id for i in items}
    readers: dict[tuple[str, str], set[str]] = defaultdict(set)

    def count(key: tuple[str, str] | None, actor: str, site: str) -> None:
        if key is None:
            return
        if actor == reader.subject:
            readers[key].add("caller")
        if actor == reader.subject or site in reader.sites:
            readers[key].add("team")

    for chunk in _chunks(jobs):
        verdicts = select(FindingFeedbackRow.job_id, FindingFeedbackRow.uid, FindingFeedbackRow.actor,
                          FindingFeedbackRow.site).where(FindingFeedbackRow.job_id.in_(chunk)).distinct()
        for job, uid, actor, site in session.execute(verdicts):
            count(uids.get((job, uid)), actor, site)
        signed = select(ReportSignatureRow.job_id, ReportSignatureRow.study_uid, ReportSignatureRow.signer,
                        ReportSignatureRow.site).where(ReportSignatureRow.job_id.in_(chunk)).distinct()
        for job, study, signer, site in session.execute(signed):
            count((job, study), signer, site)
    return readers


def add_details(session: Session, items: list[WorklistItem], reader: Reader | None) -> None:
    """Fill in the items' study facts, priors and (for ``reader``) read status."""
    if not items:
        return
    studies = _studies(session, (i.study_uid for i in items if i.study_uid))
    priors = _priors(session, items, studies)
    reads = _reads(session, items, reader) if reader is not None else {}
    for item in items:
        study = studies.get(item.study_uid)
        if study is not None:
            item.study_date, item.accession_number = study.date, study.accession
            item.description = _description(study.metadata)
        item.priors = priors.get(item.study_uid, 0)
        who = reads.get((item.job_id, item.study_uid), set())
        item.read, item.read_by_caller = "team" in who, "caller" in who
