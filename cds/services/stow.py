"""Accept DICOM instances sent by STOW-RS: read each defensively, store the readable ones, queue one pre-read.

Each part is checked against the per-instance size cap, read by the defensive DICOM reader and must carry the UIDs
the index needs; refused parts are reported with their reason and the rest stored (under their SOP Instance UID
when it is a plain UID), indexed for QIDO/WADO and queued together as one ``preread`` job.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from cds.errors import CdsError
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.results.jobs import JobKind, PrereadPayload, StoredInstance
from cds.services.engine import Engine
from cds.store import jobs
from cds.store.audit import Actor
from cds.store.dicom_index import STORED, index_dataset, instance_uids

PLAIN_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")  # safe as a file name


class FailureReason(IntEnum):
    """STOW-RS Failure Reason values (PS3.18) for refused parts."""

    OUT_OF_RESOURCES = 0xA700  # the instance is over the size cap
    CANNOT_UNDERSTAND = 0xC000


@dataclass(frozen=True)
class StoredPart:
    """An instance that was stored: its SOP Class and Instance UIDs."""

    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True)
class RefusedPart:
    """A part that was not stored: the STOW-RS failure reason and ours."""

    failure: FailureReason
    reason: str


@dataclass
class StowReceipt:
    """What one STOW-RS request did: parts stored and refused, and the pre-read queued for the stored ones."""

    stored: list[StoredPart] = field(default_factory=list)
    refused: list[RefusedPart] = field(default_factory=list)
    job_id: str | None = None


def accept_instances(engine: Engine, parts: Sequence[bytes], *, actor: Actor) -> StowReceipt:
    """Store the readable parts and queue their pre-read (nothing is queued when no part was stored).

    Raises:
        OverloadedError: The job queue is full (nothing is indexed or queued).
    """
    settings = engine.settings
    folder = settings.data_dir / "dicom" / uuid.uuid4().hex
    receipt, stored, datasets = StowReceipt(), [], []
    for index, data in enumerate(parts):
        if len(data) > settings.max_instance_bytes:
            receipt.refused.append(RefusedPart(FailureReason.OUT_OF_RESOURCES, "instance_too_large"))
            continue
        try:
            instance = read_instance(data, name=f"part {index + 1}")
            uids = instance_uids(instance.dataset)
        except CdsError as exc:
            receipt.refused.append(RefusedPart(FailureReason.CANNOT_UNDERSTAND, exc.code))
            continue
        sop = uids["SOPInstanceUID"]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (f"{sop}.dcm" if PLAIN_UID.match(sop) else f"{uuid.uuid4().hex}.dcm")
        path.write_bytes(data)
        stored.append(StoredInstance(path=path, sop_instance_uid=sop, study_uid=uids["StudyInstanceUID"]))
        datasets.append((instance.dataset, path))
        receipt.stored.append(StoredPart(uids["SOPClassUID"], sop))
    if not stored:
        return receipt
    payload = PrereadPayload(instances=tuple(stored), output=folder / "outputs", model=settings.preread_model,
                             ct_model=settings.ct_model or None)
    try:
        with engine.database.session() as session:
            for dataset, path in datasets:
                index_dataset(session, dataset, path, origin=STORED)
            receipt.job_id = jobs.enqueue(session, kind=JobKind.PREREAD, payload=payload, actor=actor.subject,
                                          role=actor.role, max_pending=settings.max_pending_jobs)  # fmt: skip
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing indexed or queued: nothing kept
        raise
    return receipt
