"""Accept DICOM instances sent by STOW-RS: read each defensively, store the readable ones, queue one pre-read.

The parts arrive as files (the route streams them to disk; one over the per-instance cap arrives as ``None``). Each
is read by the defensive DICOM reader (a deflated dataset may inflate to the per-instance cap, no more), must
carry the UIDs the index needs and, if it is an image, pixel data that is whole (frames and items checked, not
decoded); refused parts are reported with their reason and removed, the rest kept (under
their SOP Instance UID when it is a plain UID), indexed for QIDO/WADO with their DICOM JSON metadata, and queued
together as one ``preread`` job.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from cds.errors import CdsError, InvalidInputError
from cds.pipelines.ecg.readers import ECG_SOP_CLASSES
from cds.pipelines.imaging.dicom_reader import DicomInstance, check_pixel_data, read_instance
from cds.results.jobs import EcgPayload, JobKind, PrereadPayload, StoredInstance
from cds.services.engine import Engine
from cds.store import jobs
from cds.store.audit import Actor
from cds.store.audit_policy import record_refused_upload
from cds.store.dicom_index import STORED, index_row, instance_uids

PLAIN_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")  # safe as a file name
OVER_BUDGET = frozenset({"inflated_too_large"})  # refusals that are about size, not content


class FailureReason(IntEnum):
    """STOW-RS Failure Reason values (PS3.18) for refused parts."""

    OUT_OF_RESOURCES = 0xA700  # the instance is over the size cap
    CANNOT_UNDERSTAND = 0xC000


@dataclass(frozen=True)
class StoredPart:
    """An instance that was stored: its SOP Class, Instance, Study and Series UIDs."""

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str


@dataclass(frozen=True)
class RefusedPart:
    """A part that was not stored: the STOW-RS failure reason and ours, and its UIDs when they could be read."""

    failure: FailureReason
    reason: str
    sop_class_uid: str = ""
    sop_instance_uid: str = ""


@dataclass
class StowReceipt:
    """What one STOW-RS request did: parts stored and refused, and the pre-read queued for the stored ones."""

    stored: list[StoredPart] = field(default_factory=list)
    refused: list[RefusedPart] = field(default_factory=list)
    job_id: str | None = None
    ecg_job_ids: list[str] = field(default_factory=list)


def pixel_data_whole(instance: DicomInstance) -> None:
    """Refuse an image whose pixel data is cut off or malformed (an object without pixels, such as an SR, passes).

    Raises:
        InvalidInputError: ``truncated_file``, ``pixel_data_short``, ``pixel_data_corrupt`` or ``invalid_header``.
    """
    try:
        check_pixel_data(instance)
    except InvalidInputError as exc:
        if exc.code != "no_pixel_data":
            raise


@dataclass(frozen=True)
class CheckedPart:
    """A part as cds stores it (read defensively, the UIDs the index needs, whole pixel data), or why not.

    ``uids`` holds what could be read even when the part is refused (a header whose pixel data is cut short).
    """

    instance: DicomInstance | None
    uids: dict[str, str]
    error: CdsError | None = None


def check_part(path: Path, name: str, max_bytes: int) -> CheckedPart:
    """Read and check one received part (STOW-RS or C-STORE)."""
    uids: dict[str, str] = {}
    try:
        instance = read_instance(path, name=name, max_inflated_bytes=max_bytes)
        uids = instance_uids(instance.dataset)
        pixel_data_whole(instance)
    except CdsError as exc:  # without its traceback, whose frames would keep the reader's buffers alive
        return CheckedPart(None, uids, exc.with_traceback(None))
    return CheckedPart(instance, uids)


def accept_instances(engine: Engine, folder: Path, parts: Sequence[Path | None], *, actor: Actor) -> StowReceipt:
    """Store the readable ``parts`` (files in ``folder``; ``None``: over the size cap) and queue their pre-read.

    Images are queued together as one ``preread`` job; each ECG waveform (12-lead or general ECG SOP class) as an
    ``ecg`` job of its own. Refused parts' files are removed, and ``folder`` with them when nothing was stored.

    Raises:
        OverloadedError: The job queue is full (nothing is indexed or queued, nothing kept).
    """
    settings = engine.settings
    site = actor.site or settings.site
    receipt, rows = StowReceipt(), []
    stored: list[StoredInstance] = []  # images, read together by one pre-read
    ecgs: list[StoredInstance] = []  # ECG waveforms, each read on its own
    for index, part in enumerate(parts):
        if part is None:
            receipt.refused.append(RefusedPart(FailureReason.OUT_OF_RESOURCES, "instance_too_large"))
            continue
        checked = check_part(part, f"part {index + 1}", settings.max_instance_bytes)
        uids, exc, instance = checked.uids, checked.error, checked.instance
        if exc is not None or instance is None:  # the one comes with the other
            part.unlink(missing_ok=True)
            code = exc.code if exc is not None else ""
            failure = FailureReason.OUT_OF_RESOURCES if code in OVER_BUDGET else FailureReason.CANNOT_UNDERSTAND
            receipt.refused.append(RefusedPart(failure, code, uids.get("SOPClassUID", ""),
                                               uids.get("SOPInstanceUID", "")))  # fmt: skip
            continue
        sop = uids["SOPInstanceUID"]
        path = part.rename(folder / (f"{sop}.dcm" if PLAIN_UID.match(sop) else f"{uuid.uuid4().hex}.dcm"))
        instance_record = StoredInstance(path=path, sop_instance_uid=sop, study_uid=uids["StudyInstanceUID"])
        (ecgs if uids.get("SOPClassUID") in ECG_SOP_CLASSES else stored).append(instance_record)
        rows.append(index_row(instance.dataset, path, origin=STORED, site=site))  # not the dataset: pixels pile up
        receipt.stored.append(StoredPart(uids["SOPClassUID"], sop, uids["StudyInstanceUID"],
                                         uids["SeriesInstanceUID"]))  # fmt: skip
    if not stored and not ecgs:
        shutil.rmtree(folder, ignore_errors=True)
        return receipt
    try:
        with engine.database.session() as session:
            for row in rows:
                session.merge(row)
            if stored:
                payload = PrereadPayload(instances=tuple(stored), output=folder / "outputs",
                                         model=settings.preread_model, ct_model=settings.ct_model or None)
                receipt.job_id = jobs.enqueue(session, kind=JobKind.PREREAD, payload=payload, actor=actor.subject,
                                              role=actor.role, max_pending=settings.max_pending_jobs,
                                              site=site)  # fmt: skip
            for ecg in ecgs:
                ecg_payload = EcgPayload(file=ecg.path, output=folder / "outputs" / ecg.sop_instance_uid,
                                         model=settings.ecg_model, study_uid=ecg.study_uid,
                                         sop_instance_uid=ecg.sop_instance_uid)  # fmt: skip
                receipt.ecg_job_ids.append(jobs.enqueue(session, kind=JobKind.ECG, payload=ecg_payload,
                                                        actor=actor.subject, role=actor.role,
                                                        max_pending=settings.max_pending_jobs,
                                                        site=site))  # fmt: skip
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing indexed or queued: nothing kept
        raise
    return receipt


def audit_refused_parts(engine: Engine, actor: Actor, receipt: StowReceipt, resource: str) -> None:
    """Audit the parts a STOW-RS request had refused: one ``upload.refused`` event per reason, with the count.

    The reason codes only (``instance_too_large``, ``truncated_file``, ``missing_uid``, ...): no UID or file name.
    """
    reasons = Counter(part.reason or "unreadable" for part in receipt.refused)
    if not reasons:
        return
    with engine.database.session() as session:
        for reason, parts in sorted(reasons.items()):
            record_refused_upload(session, actor, "dicom", reason, resource, parts=parts,
                                  stored=len(receipt.stored))  # fmt: skip
