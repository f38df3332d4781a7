"""The radiologist's worklist: pre-read jobs as one item per (job, study), critical first.

A job's state becomes the item's state, with one refinement: a study whose images were all refused (a finished
job without an outcome for it, or a job that failed with a refusal's reason code) is ``refused`` rather than
``done`` or ``failed``. Studies, patients and modalities come from the DICOM index: by study for finished jobs, by
the stored files' SOP Instance UIDs for jobs still waiting (the files are named by those UIDs).

The order (studies with positive findings first, then newest) is computed from each job's result, so the listing
reads the newest :data:`SCAN_LIMIT` pre-read jobs and filters, sorts and pages them in memory.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cds.store.dicom_index import STORED
from cds.store.tables import DicomInstanceRow, JobRow

REFUSED = "refused"
STATES = ("queued", "running", "done", REFUSED, "failed")
SCAN_LIMIT = 2000
_REASON = re.compile(r"^([a-z][a-z0-9_]*): ")  # "implausible_image: cr.dcm: ..." (a CdsError's str)
_SOP_FILE = re.compile(r"([0-9]+(?:\.[0-9]+)+)\.dcm")
_CHUNK = 500


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
    outcomes: list[dict[str, str]] = field(default_factory=list)  # uid, kind, model: what the viewer opens

    @property
    def critical(self) -> bool:
        """At least one positive AI finding."""
        return self.positive_findings > 0


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


def _sop_of(source: str) -> str | None:
    match = _SOP_FILE.search(source)
    return match.group(1) if match else None


class _JobStudies:
    """One job's items, gathered study by study."""

    def __init__(self, job: JobRow, studies: dict[str, tuple[str, set[str]]]) -> None:
        self.job, self.studies = job, studies
        self.items: dict[str, WorklistItem] = {}

    def item(self, study: str) -> WorklistItem:
        if study not in self.items:
            patient, modalities = self.studies.get(study, ("", set()))
            self.items[study] = WorklistItem(self.job.id, study, self.job.state, _aware(self.job.created_at),
                                             _aware(self.job.updated_at), patient, sorted(modalities))
        return self.items[study]

    def add_outcome(self, outcome: dict[str, Any]) -> None:
        entry = self.item(str(outcome.get("study_uid", "")))
        entry.outcomes.append({k: str(outcome.get(k, "")) for k in ("uid", "kind", "model")})
        for finding in outcome.get("summary", []):
            if "probability" not in finding:
                continue  # a segmented structure: a volume, not a finding
            entry.positive_findings += bool(finding.get("positive"))
            threshold = float(finding.get("threshold") or 0.0)
            if threshold > 0:
                ratio = float(finding["probability"]) / threshold
                entry.max_ratio = ratio if entry.max_ratio is None else max(entry.max_ratio, ratio)

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
        failed = self.job.state == "failed"
        reason = _REASON.match(self.job.error or "") if failed else None
        for entry in self.items.values():
            if reason is not None:
                entry.state = REFUSED
                entry.refused_reasons = entry.refused_reasons or [reason.group(1)]
            elif self.job.state == "done" and not entry.outcomes:
                entry.state = REFUSED
        return list(self.items.values())


def _job_items(job: JobRow, result: dict[str, Any], payload: dict[str, Any],
               sops: dict[str, tuple[str, str, str]], studies: dict[str, tuple[str, set[str]]]) -> list[WorklistItem]:
    gathered, unknown = _JobStudies(job, studies), ("", "", "")
    for outcome in result.get("outcomes", []):
        gathered.add_outcome(outcome)
    for refusal in result.get("refusals", []):
        sop = _sop_of(str(refusal.get("source", "")))
        gathered.add_instance(sops.get(sop or "", unknown), str(refusal.get("reason", "")))
    if job.state != "done":
        for file in payload.get("files", []):
            gathered.add_instance(sops.get(Path(str(file)).stem, unknown))
    return gathered.finish()


def list_worklist(
    session: Session, *, kind: str, states: Iterable[str] = (), modality: str = "", patient: str | None = None,
    limit: int = 50, offset: int = 0, scan_limit: int = SCAN_LIMIT,
) -> WorklistPage:  # fmt: skip
    """The worklist: studies with positive findings first, then newest; filtered, then paged.

    Args:
        session: An open session.
        kind: The pre-read job kind (``cds.serving.jobs.PREREAD``).
        states: Keep items in these states (any of :data:`STATES`; empty: all).
        modality: Keep studies holding this modality (e.g. ``CR``; empty: all).
        patient: Keep only this patient's studies (a patient-scoped caller); ``None``: everyone's.
        limit: Page size.
        offset: Items to skip.
        scan_limit: How many of the newest pre-read jobs are read.
    """
    query = (select(JobRow).where(JobRow.kind == kind).order_by(JobRow.created_at.desc(), JobRow.id)
             .limit(scan_limit))  # fmt: skip
    jobs = list(session.execute(query).scalars())
    parsed = [(job, json.loads(job.result) if job.result else {}, json.loads(job.payload) if job.state != "done"
               else {}) for job in jobs]  # fmt: skip
    wanted_sops: set[str] = set()
    for _job, result, payload in parsed:
        wanted_sops.update(Path(str(f)).stem for f in payload.get("files", []))
        wanted_sops.update(s for r in result.get("refusals", []) if (s := _sop_of(str(r.get("source", "")))))
    sops = _by_sop(session, wanted_sops)
    wanted_studies = {str(o.get("study_uid", "")) for _j, r, _p in parsed for o in r.get("outcomes", [])}
    studies = _by_study(session, wanted_studies | {study for study, _p, _m in sops.values()})
    items = [item for job, result, payload in parsed for item in _job_items(job, result, payload, sops, studies)]
    keep = set(states)
    wanted_modality = modality.upper()
    items = [i for i in items if (not keep or i.state in keep)
             and (not wanted_modality or wanted_modality in i.modalities)
             and (patient is None or i.patient_id == patient)]  # fmt: skip
    items.sort(key=lambda i: (not i.critical, -i.created_at.timestamp(), i.job_id, i.study_uid))
    return WorklistPage(items=items[offset : offset + limit], total=len(items), scanned_jobs=len(jobs))
