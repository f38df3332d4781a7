"""Fetching a study from a PACS over DICOMweb (dicomweb-client) and reading it like one sent to cds.

The instances are retrieved one by one (WADO-RS, ``iter_study``) and written to disk as they arrive, so a large
study costs one instance of memory; then they take the STOW-RS path (:func:`cds.services.stow.accept_instances`):
checked, stored, indexed, one pre-read queued. Instances cds already holds are not fetched into a second read.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from dicomweb_client.api import DICOMwebClient
from sqlalchemy import select

from cds.errors import BackendUnavailableError, NotFoundError
from cds.services.engine import Engine
from cds.services.stow import StowReceipt, accept_instances
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.tables import DicomInstanceRow


def fetch_study(engine: Engine, url: str, study_uid: str, *, actor: Actor,
                headers: dict[str, str] | None = None) -> StowReceipt:  # fmt: skip
    """Retrieve ``study_uid`` from the DICOMweb server at ``url`` and queue its read.

    Raises:
        NotFoundError: ``study_not_found`` when the server has no such study.
        BackendUnavailableError: ``pacs_unreachable`` when it cannot be reached or fails.
    """
    client = DICOMwebClient(url=url.rstrip("/"), headers=headers or {})
    folder = engine.settings.data_dir / "dicom" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    with engine.database.session() as session:
        held = set(session.scalars(select(DicomInstanceRow.sop_instance_uid).where(
            DicomInstanceRow.study_uid == study_uid)))  # fmt: skip
    paths: list[Path | None] = []
    skipped = 0
    try:
        for dataset in client.iter_study(study_uid):
            if str(dataset.SOPInstanceUID) in held:
                skipped += 1
                continue
            path = folder / f"{len(paths):05d}.dcm"
            dataset.save_as(path, enforce_file_format=True)
            paths.append(path)
    except Exception as exc:  # noqa: BLE001 - requests and the client raise many kinds
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 404:
            raise NotFoundError(f"the DICOMweb server has no study {study_uid[:64]}", code="study_not_found") from None
        raise BackendUnavailableError(f"the DICOMweb server failed: {type(exc).__name__}",
                                      code="pacs_unreachable") from None  # fmt: skip
    receipt = accept_instances(engine, folder, paths, actor=actor)
    with engine.database.session() as session:
        record_event(session, AuditAction.IMAGING_RECEIVE, actor, f"ImagingStudy/{study_uid}",
                     detail={"stored": len(receipt.stored), "already_stored": skipped, "refused": len(receipt.refused),
                             "job": receipt.job_id or "", "from": "dicomweb"})  # fmt: skip
    return receipt
