"""The index of DICOM instances the service holds, and the study/series/instance searches QIDO-RS answers from.

Instances enter the index when STOW-RS stores them (origin ``stored``) and when a pre-read writes its DICOM
outputs (origin ``ai_result``: SR, SEG, secondary captures, in the source study). Storing an instance whose SOP
Instance UID is already indexed replaces the entry (DICOM's "store again" semantics). Searches run in SQL, so
they page through large archives without loading them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import Dataset
from sqlalchemy import ColumnElement, distinct, func, or_, select
from sqlalchemy.orm import Session

from cds.errors import InvalidInputError
from cds.store.tables import DicomInstanceRow

STORED, AI_RESULT = "stored", "ai_result"
BULK_THRESHOLD = 4096  # bytes; longer values are bulk data, retrieved with the instance
DATE = re.compile(r"^\d{8}$")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def instance_uids(dataset: Dataset) -> dict[str, str]:
    """Study, Series, SOP Instance and SOP Class UID of ``dataset``.

    Raises:
        InvalidInputError: One is missing (``missing_uid``): such an instance cannot be indexed or retrieved.
    """
    uids = {key: str(dataset.get(key, "") or "") for key in ("StudyInstanceUID", "SeriesInstanceUID",
                                                               "SOPInstanceUID", "SOPClassUID")}
    missing = [key for key, value in uids.items() if not value]
    if missing:
        raise InvalidInputError(f"the instance has no {', '.join(missing)}", code="missing_uid")
    return uids


def dicom_json(dataset: Dataset) -> str:
    """``dataset`` as DICOM JSON text (PS3.18 F.2).

    Binary values over 4 KiB become a ``BulkDataURI`` left empty, for the server to fill in; elements whose values
    cannot be expressed are left out.
    """
    document = dataset.to_json_dict(bulk_data_threshold=BULK_THRESHOLD, bulk_data_element_handler=lambda _e: "",
                                    suppress_invalid_tags=True)  # fmt: skip
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def index_dataset(session: Session, dataset: Dataset, path: Path, *, origin: str, site: str = "") -> DicomInstanceRow:
    """Add (or replace) the index entry of the instance ``dataset`` whose file is at ``path``, with its metadata.

    Raises:
        InvalidInputError: The dataset lacks a Study, Series or SOP Instance UID (``missing_uid``).
    """
    merged: DicomInstanceRow = session.merge(index_row(dataset, path, origin=origin, site=site))
    return merged


def index_row(dataset: Dataset, path: Path, *, origin: str, site: str = "") -> DicomInstanceRow:
    """The index entry of ``dataset``, held for ``site`` (header and metadata only: the dataset need not be kept).

    Raises:
        InvalidInputError: The dataset lacks a Study, Series or SOP Instance UID (``missing_uid``).
    """
    uids = instance_uids(dataset)
    row = DicomInstanceRow(
        sop_instance_uid=uids["SOPInstanceUID"], sop_class_uid=uids["SOPClassUID"],
        study_uid=uids["StudyInstanceUID"], series_uid=uids["SeriesInstanceUID"],
        modality=str(dataset.get("Modality", "") or "")[:16], instance_number=_int(dataset.get("InstanceNumber")),
        series_number=_int(dataset.get("SeriesNumber")),
        series_description=str(dataset.get("SeriesDescription", "") or "")[:64],
        patient_id=str(dataset.get("PatientID", "") or "")[:64],
        patient_name=str(dataset.get("PatientName", "") or "")[:200],
        study_date=str(dataset.get("StudyDate", "") or "")[:8],
        accession_number=str(dataset.get("AccessionNumber", "") or "")[:16],
        origin=origin, path=str(path), created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        metadata_json=dicom_json(dataset), site=site,
    )  # fmt: skip
    return row


def patient_of_study(session: Session, study_uid: str) -> str:
    """The Patient ID the index holds for ``study_uid`` (empty when the study is unknown or has none)."""
    query = select(DicomInstanceRow.patient_id).where(DicomInstanceRow.study_uid == study_uid).limit(1)
    return session.scalar(query) or ""


@dataclass(frozen=True)
class InstanceQuery:
    """QIDO-RS match keys (empty: any) and paging.

    ``patient_id`` and ``accession_number`` take DICOM wildcards (``*``, ``?``); ``study_date`` is a date or a
    range ``YYYYMMDD-YYYYMMDD`` (either end may be open); ``modality`` matches any instance of the study (study
    level) or the series' modality (series and instance level). ``only_patient`` restricts every answer to one
    patient (a patient-scoped token), ``only_site`` to these sites' studies (the caller's).
    """

    study_uid: str = ""
    series_uid: str = ""
    sop_instance_uid: str = ""
    patient_id: str = ""
    accession_number: str = ""
    study_date: str = ""
    modality: str = ""
    only_patient: str | None = None
    only_site: tuple[str, ...] | None = None
    also_studies: tuple[str, ...] = ()  # studies of other sites referred to the caller's
    limit: int | None = 100  # None: all (retrieval)
    offset: int = 0
    unsupported: list[str] = field(default_factory=list)

    def conditions(self, *, modality_of_study: bool) -> list[ColumnElement[bool]]:
        """SQL conditions on :class:`DicomInstanceRow`.

        Raises:
            InvalidInputError: A malformed date or date range (``invalid_query``).
        """
        row, where = DicomInstanceRow, []
        for column, value in ((row.study_uid, self.study_uid), (row.series_uid, self.series_uid),
                              (row.sop_instance_uid, self.sop_instance_uid)):
            if value:
                where.append(column == value)
        for column, value in ((row.patient_id, self.patient_id), (row.accession_number, self.accession_number)):
            if value:
                where.append(_wildcard(column, value))
        if self.only_patient is not None:
            where.append(row.patient_id == self.only_patient)
        if self.only_site is not None:
            mine = row.site.in_(self.only_site)
            where.append(or_(mine, row.study_uid.in_(self.also_studies)) if self.also_studies else mine)
        if self.study_date:
            where.extend(_date_range(self.study_date))
        if self.modality:
            if modality_of_study:
                studies_with = select(row.study_uid).where(row.modality == self.modality.upper())
                where.append(row.study_uid.in_(studies_with))
            else:
                where.append(row.modality == self.modality.upper())
        return where


def _wildcard(column: Any, value: str) -> ColumnElement[bool]:
    if "*" not in value and "?" not in value:
        return column == value  # type: ignore[no-any-return]
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped.replace("*", "%").replace("?", "_"), escape="\\")  # type: ignore[no-any-return]


def _date_range(text: str) -> list[ColumnElement[bool]]:
    start, dash, end = text.partition("-")
    bounds = [start, end] if dash else [start]
    if not any(bounds) or any(b and not DATE.match(b) for b in bounds):
        raise InvalidInputError(f"StudyDate {text!r} is not YYYYMMDD or a range YYYYMMDD-YYYYMMDD",
                                code="invalid_query")
    column = DicomInstanceRow.study_date
    if not dash:
        return [column == start]
    return [c for c in ((column >= start) if start else None, (column <= end) if end else None) if c is not None]


@dataclass(frozen=True)
class StudyEntry:
    """One study in a search answer."""

    study_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    accession_number: str
    modalities: list[str]
    series: int
    instances: int


def find_studies(session: Session, query: InstanceQuery) -> list[StudyEntry]:
    """Studies with at least one instance matching ``query``, newest study date first."""
    row = DicomInstanceRow
    page = session.execute(
        select(row.study_uid, func.max(row.patient_id), func.max(row.patient_name), func.max(row.study_date),
               func.max(row.accession_number), func.count(distinct(row.series_uid)), func.count())
        .where(*query.conditions(modality_of_study=True))
        .group_by(row.study_uid)
        .order_by(func.max(row.study_date).desc(), row.study_uid)
        .limit(query.limit).offset(query.offset)
    ).all()  # fmt: skip
    uids = [entry[0] for entry in page]
    modalities: dict[str, set[str]] = {uid: set() for uid in uids}
    for uid, modality in session.execute(select(row.study_uid, row.modality).where(row.study_uid.in_(uids))
                                         .distinct()):  # fmt: skip
        if modality:
            modalities[uid].add(modality)
    return [StudyEntry(uid, pid, name, date, accession, sorted(modalities[uid]), n_series, n_instances)
            for uid, pid, name, date, accession, n_series, n_instances in page]  # fmt: skip


@dataclass(frozen=True)
class SeriesEntry:
    """One series in a search answer."""

    study_uid: str
    series_uid: str
    modality: str
    series_number: int | None
    description: str
    instances: int


def find_series(session: Session, query: InstanceQuery) -> list[SeriesEntry]:
    """Series with at least one instance matching ``query``, by series number."""
    row = DicomInstanceRow
    page = session.execute(
        select(row.study_uid, row.series_uid, func.max(row.modality), func.min(row.series_number),
               func.max(row.series_description), func.count())
        .where(*query.conditions(modality_of_study=False))
        .group_by(row.study_uid, row.series_uid)
        .order_by(row.study_uid, func.min(row.series_number), row.series_uid)
        .limit(query.limit).offset(query.offset)
    ).all()  # fmt: skip
    return [SeriesEntry(*entry) for entry in page]


def find_instances(session: Session, query: InstanceQuery) -> Sequence[DicomInstanceRow]:
    """Instances matching ``query``, by series and instance number."""
    row = DicomInstanceRow
    return session.scalars(
        select(row).where(*query.conditions(modality_of_study=False))
        .order_by(row.study_uid, row.series_uid, row.instance_number, row.sop_instance_uid)
        .limit(query.limit).offset(query.offset)
    ).all()  # fmt: skip


def representative_metadata(session: Session, *, studies: Sequence[str] = (),
                            series: Sequence[str] = ()) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per study (or series) UID, the DICOM JSON of one of its stored instances (the lowest SOP Instance UID)."""
    key = DicomInstanceRow.series_uid if series else DicomInstanceRow.study_uid
    wanted = list(series or studies)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(key, DicomInstanceRow.metadata_json)
            .where(key.in_(wanted[start : start + 500]), DicomInstanceRow.metadata_json.is_not(None))
            .order_by(key, DicomInstanceRow.origin.desc(), DicomInstanceRow.sop_instance_uid)
        )  # fmt: skip ("stored" sorts before "ai_result" in descending order: the acquired image speaks first)
        for uid, text in rows:
            if uid not in found and text:
                found[uid] = json.loads(text)
    return found
