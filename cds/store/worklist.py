"""The radiologist's worklist: pre-read jobs as one item per (job, study), the most urgent first.

A job's state becomes the item's state, with one refinement: a study whose images were all refused (a finished
job without an outcome for it, or a job that failed with a refusal's reason code) is ``refused`` rather than
``done`` or ``failed``. Studies, patients and modalities come from the DICOM index, by the SOP Instance UIDs the
job names: those of its stored instances while it waits, those its refusals cover once it ran, and by study for
its outcomes.

Urgency (triage) comes from each positive finding's label through the model's spec
(:meth:`cds.models.spec.ModelSpec.finding_urgency`, passed in as a :data:`Triage`): a study is as urgent as its
most urgent positive finding (critical > urgent > routine), ``none`` without one; only a critical label at or above
its critical threshold makes a study critical. The order (open referrals to the caller's site first, then urgency,
then newest) is computed from each job's outcome, so the listing reads the newest :data:`SCAN_LIMIT` pre-read jobs
and filters, sorts and pages them in memory; the page's items then get their study's facts, priors and read status
(:mod:`cds.store.worklist_details`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cds.models.spec import Urgency
from cds.results.classification import Finding
from cds.results.jobs import JobKind, JobRecord, PrereadOutcome, PrereadPayload, PrereadReport
from cds.store.dicom_index import STORED
from cds.store.jobs import DONE, FAILED, readable
from cds.store.outbox import Delivery, delivery_of
from cds.store.referrals import REFERRAL_PRIORITIES, open_referral_urgency, referred_jobs
from cds.store.tables import DicomInstanceRow, JobRow
from cds.store.worklist_details import Reader, add_details


class WorklistState(StrEnum):
    """Where a study of the worklist is: its job's state, or ``refused`` (done, but every image was refused)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"


REFUSED = WorklistState.REFUSED.value
STATES = tuple(state.value for state in WorklistState)
SCAN_LIMIT = 2000
_CHUNK = 500
_UNKNOWN = ("", "", "")
NO_URGENCY = "none"  # no positive finding (or not read yet)
URGENCY_ORDER = (*(u.value for u in Urgency), NO_URGENCY)  # most urgent first
Triage = Callable[[str, Finding], Urgency | None]  # (model key, finding) -> its urgency; None: not positive


def positive_is_routine(_model: str, finding: Finding) -> Urgency | None:
    """The triage without a registry: every positive finding is routine (nothing is critical)."""
    return Urgency.ROUTINE if finding.positive else None


@dataclass(frozen=True)
class UrgentFinding:
    """A positive finding that sets its study's urgency: its label, probability and the model's key."""

    label: str
    probability: float
    model: str


@dataclass
class WorklistItem:
    """One study of one pre-read job."""

    job_id: str
    study_uid: str
    state: str
    created_at: dt.datetime  # aware UTC
    updated_at: dt.datetime
    patient_id: str = ""
    modalities: list[str] = field(default_factory=list)
    positive_findings: int = 0
    max_ratio: float | None = None  # highest probability / threshold over the study's findings
    refused_reasons: list[str] = field(default_factory=list)
    outcomes: list[PrereadOutcome] = field(default_factory=list)  # what the viewer opens
    delivery: Delivery | None = None  # the results sent out (PACS, HIS): None when nothing is to be sent
    urgency: str = NO_URGENCY  # one of URGENCY_ORDER
    urgency_findings: list[UrgentFinding] = field(default_factory=list)  # the positives at that urgency
    study_date: str = ""  # DICOM DA (YYYYMMDD), as the images give it
    description: str = ""  # StudyDescription
    accession_number: str = ""
    priors: int = 0  # earlier studies of the same patient at the same site
    read: bool = False  # a verdict or signature by the caller or anyone at the caller's site
    read_by_caller: bool = False

    @property
    def critical(self) -> bool:
        """A critical label at or above its critical threshold."""
        return self.urgency == Urgency.CRITICAL.value

    def triage(self, triage: Triage) -> None:
        """Set the urgency and the findings that drive it from the outcomes' positive findings."""
        graded = [(urgency, outcome.model, finding) for outcome in self.outcomes for finding in outcome.findings
                  if (urgency := triage(outcome.model, finding)) is not None]  # fmt: skip
        if not graded:
            self.urgency, self.urgency_findings = NO_URGENCY, []
            return
        top = min(urgency.rank for urgency, _m, _f in graded)
        drivers = sorted((f for f in graded if f[0].rank == top), key=lambda f: -f[2].probability)
        self.urgency = list(Urgency)[top].value
        self.urgency_findings = [UrgentFinding(f.label, f.probability, model) for _u, model, f in drivers]


@dataclass(frozen=True)
class WorklistPage:
    """A page of items and how many matched in all."""

    items: list[WorklistItem]
    total: int
    scanned_jobs: int


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _by_sop(session: Session, sops: set[str]) -> dict[str, tuple[str, str, str]]:
    """SOP Instance UID -> (study UID, patient ID, modality) of stored instances."""
    row = DicomInstanceRow
    found: dict[str, tuple[str, str, str]] = {}
    for chunk in _chunks(sorted(sops)):
        query = select(row.sop_instance_uid, row.study_uid, row.patient_id, row.modality).where(
            row.sop_instance_uid.in_(chunk))
        found.update({sop: (study, patient, modality) for sop, study, patient, modality in session.execute(query)})
    return found


def _by_study(session: Session, studies: set[str]) -> dict[str, tuple[str, set[str]]]:
    """Study UID -> (patient ID, modalities of its stored instances)."""
    row = DicomInstanceRow
    found: dict[str, tuple[str, set[str]]] = {}
    for chunk in _chunks(sorted(studies)):
        query = select(row.study_uid, row.patient_id, row.modality).where(
            row.study_uid.in_(chunk), row.origin == STORED).distinct()
        for study, patient, modality in session.execute(query):
            entry = found.setdefault(study, (patient, set()))
            entry[1].add(modality)
    return found


class _JobStudies:
    """One job's items, gathered study by study."""

    def __init__(self, job: JobRecord, studies: dict[str, tuple[str, set[str]]]) -> None:
        self.job, self.studies = job, studies
        self.items: dict[str, WorklistItem] = {}

    def item(self, study: str) -> WorklistItem:
        if study not in self.items:
            patient, modalities = self.studies.get(study, ("", set()))
            self.items[study] = WorklistItem(self.job.id, study, self.job.state, _aware(self.job.created_at),
                                             _aware(self.job.updated_at), patient, sorted(modalities))
        return self.items[study]

    def add_outcome(self, outcome: PrereadOutcome) -> None:
        entry = self.item(outcome.study_uid)
        entry.outcomes.append(outcome)
        for finding in outcome.findings:  # a CT outcome's structures are volumes, not findings
            entry.positive_findings += finding.positive
            if finding.ratio is not None:
                entry.max_ratio = finding.ratio if entry.max_ratio is None else max(entry.max_ratio, finding.ratio)

    def add_instance(self, instance: tuple[str, str, str], reason: str | None = None) -> None:
        study, patient, modality = instance
        entry = self.item(study)
        entry.patient_id = entry.patient_id or patient
        if modality and modality not in entry.modalities:
            entry.modalities = sorted([*entry.modalities, modality])
        if reason is not None and reason not in entry.refused_reasons:
            entry.refused_reasons.append(reason)

    def finish(self) -> list[WorklistItem]:
        if not self.items:
            self.item("")
        reason = self.job.error_code if self.job.state == FAILED and self.job.refused else ""
        for entry in self.items.values():
            if reason:
                entry.state = REFUSED
                entry.refused_reasons = entry.refused_reasons or [reason]
            elif self.job.state == DONE and not entry.outcomes:
                entry.state = REFUSED
        return list(self.items.values())


def _report(job: JobRecord) -> PrereadReport:
    return job.outcome if isinstance(job.outcome, PrereadReport) else PrereadReport()


def _waiting(job: JobRecord) -> list[str]:
    """The SOP Instance UIDs of a job that has not finished."""
    if job.state == DONE:
        return []
    return [i.sop_instance_uid for i in job.payload_as(PrereadPayload).instances if i.sop_instance_uid]


def _job_items(job: JobRecord, sops: dict[str, tuple[str, str, str]],
               studies: dict[str, tuple[str, set[str]]]) -> list[WorklistItem]:  # fmt: skip
    gathered, report = _JobStudies(job, studies), _report(job)
    for outcome in report.outcomes:
        gathered.add_outcome(outcome)
    for refusal in report.refusals:
        covered = [sops[uid] for uid in refusal.sop_instance_uids if uid in sops] or [_UNKNOWN]
        for instance in covered:
            gathered.add_instance(instance, refusal.reason)
    for uid in _waiting(job):
        gathered.add_instance(sops.get(uid, _UNKNOWN))
    return gathered.finish()


def list_worklist(
    session: Session, *, states: Iterable[str] = (), modality: str = "", patient: str | None = None,
    limit: int = 50, offset: int = 0, scan_limit: int = SCAN_LIMIT, site: tuple[str, ...] | None = None,
    referred_to: str | None = None, triage: Triage = positive_is_routine, reader: Reader | None = None,
) -> WorklistPage:  # fmt: skip
    """The worklist: the most urgent studies first, then newest; filtered, then paged.

    Args:
        session: An open session.
        states: Keep items in these states (any of :data:`STATES`; empty: all).
        modality: Keep studies holding this modality (e.g. ``CR``; empty: all).
        patient: Keep only this patient's studies (a patient-scoped caller); ``None``: everyone's.
        limit: Page size.
        offset: Items to skip.
        scan_limit: How many of the newest pre-read jobs are read.
        site: Keep only pre-reads of these sites (:func:`cds.store.sites.visible_sites`); ``None``: every site's.
        referred_to: Keep also the pre-reads referred to this site, and put its open referrals first, the most
            urgent first (stat, urgent, routine); then the rest by urgency, then the newest.
        triage: The urgency of a model's finding (default: every positive is routine).
        reader: Who reads the list (read status is theirs and their site's); ``None``: every item unread.
    """
    query = select(JobRow).where(JobRow.kind == JobKind.PREREAD.value)
    if site is not None:
        mine = JobRow.site.in_(site)
        query = query.where(or_(mine, JobRow.id.in_(referred_jobs(referred_to))) if referred_to else mine)
    query = query.order_by(JobRow.created_at.desc(), JobRow.id).limit(scan_limit)
    rows = list(session.execute(query).scalars())
    jobs = readable(rows)
    wanted_sops = {uid for job in jobs for uid in _waiting(job)}
    wanted_sops |= {uid for job in jobs for r in _report(job).refusals for uid in r.sop_instance_uids}
    sops = _by_sop(session, wanted_sops)
    wanted_studies = {o.study_uid for job in jobs for o in _report(job).outcomes}
    studies = _by_study(session, wanted_studies | {study for study, _p, _m in sops.values()})
    items = [item for job in jobs for item in _job_items(job, sops, studies)]
    keep = set(states)
    wanted_modality = modality.upper()
    items = [i for i in items if (not keep or i.state in keep)
             and (not wanted_modality or wanted_modality in i.modalities)
             and (patient is None or i.patient_id == patient)]  # fmt: skip
    for item in items:
        item.triage(triage)
    referral = open_referral_urgency(session, [i.job_id for i in items], referred_to) if referred_to else {}
    items.sort(key=lambda i: (referral.get(i.job_id, len(REFERRAL_PRIORITIES)), URGENCY_ORDER.index(i.urgency),
                              -i.created_at.timestamp(), i.job_id, i.study_uid))  # fmt: skip
    page = items[offset : offset + limit]
    sent = delivery_of(session, sorted({f"ImagingStudy/{i.study_uid}" for i in page if i.study_uid}))
    for item in page:  # a study read twice shows the delivery of all its reads' results
        item.delivery = sent.get(f"ImagingStudy/{item.study_uid}")
    add_details(session, page, reader)
    return WorklistPage(items=page, total=len(items), scanned_jobs=len(rows))
