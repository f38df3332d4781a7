"""A specialist signs a radiograph's pre-read: the final report, as FHIR and as DICOM SR, back to the PACS.

Signing needs the signer's own verdict on every AI finding (``POST .../feedback``) and their impression; it writes
the signed FHIR DiagnosticReport (:mod:`cds.interop.fhir_signed_report`) and the signed SR (COMPLETE, VERIFIED, the
signer as Verifying Observer; :func:`cds.interop.dicom_sr.build_classification_sr`) into the outcome's folder,
indexes the SR (QIDO/WADO serve it), queues it from the outbox to the DICOM destinations of the read's site (a
referred read's report goes back to the referring clinic's PACS, not the hub's), and keeps a signature row with its
audit event (``imaging.report.sign``, naming those destinations). Signing again amends: the next version, status
``amended``, the SR naming the one before it as its predecessor; the amended version's SR stays
(``signed-report-sr-v<n>.dcm``), indexed under its own SOP Instance UID.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Final

import pydicom
from sqlalchemy import select

from cds.errors import InvalidInputError, ResultNotFoundError
from cds.interop.dicom_sr import ReaderSignature, build_classification_sr
from cds.interop.fhir_signed_report import Signer, finding_readings, signed_report
from cds.results.classification import ClassificationResult
from cds.results.jobs import OutcomeKind, PrereadPayload
from cds.results.layout import OutputLayout
from cds.services.dicom_sender import queue_results
from cds.services.engine import Engine
from cds.services.feedback import verdicts as all_verdicts
from cds.services.preread import FinishedOutcome
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.dicom_index import AI_RESULT, index_dataset
from cds.store.referrals import mark_signed
from cds.store.tables import ReportSignatureRow

MAX_IMPRESSION_CHARS: Final = 4000
MAX_NAME_CHARS: Final = 64  # a DICOM PN component group


def checked_impression(impression: str) -> str:
    """The impression, trimmed.

    Raises:
        InvalidInputError: ``empty_impression`` or ``impression_too_long``.
    """
    text = impression.strip()
    if not text:
        raise InvalidInputError("a signed report needs the reader's impression", code="empty_impression")
    if len(text) > MAX_IMPRESSION_CHARS:
        raise InvalidInputError(f"impression of {len(text)} characters; at most {MAX_IMPRESSION_CHARS}",
                                code="impression_too_long")  # fmt: skip
    return text


def signer_name(name: str, fallback: str) -> str:
    """The name a signed report shows: ``name`` with its spaces tidied, else ``fallback`` (the account).

    Raises:
        InvalidInputError: ``invalid_signer_name``.
    """
    text = " ".join(name.split()) or fallback
    if len(text) > MAX_NAME_CHARS or "\\" in text or not text.isprintable():
        raise InvalidInputError(f"signer name: at most {MAX_NAME_CHARS} printable characters, no backslash",
                                code="invalid_signer_name")  # fmt: skip
    return text


def _signers_verdicts(engine: Engine, read: FinishedOutcome, signer: str) -> dict[str, str]:
    """The signer's current verdict per finding (their newest)."""
    current: dict[str, str] = {}
    for row in all_verdicts(engine, read):  # newest first
        if row.actor == signer:
            current.setdefault(row.label, row.verdict)
    return current


def _source_header(read: FinishedOutcome) -> pydicom.Dataset:
    payload = read.job.payload_as(PrereadPayload)
    stored = next((i for i in payload.instances if i.sop_instance_uid == read.outcome.uid), None)
    if stored is None or not stored.path.is_file():
        raise ResultNotFoundError(f"the radiograph {read.outcome.uid} is no longer stored; the signed SR must "
                                  "reference it", code="source_not_stored")  # fmt: skip
    return pydicom.dcmread(stored.path, stop_before_pixels=True)


def signatures_of(engine: Engine, job_id: str, uid: str) -> list[ReportSignatureRow]:
    """Every signature of read ``uid`` of job ``job_id``, oldest first."""
    with engine.database.session() as session:
        query = select(ReportSignatureRow).where(ReportSignatureRow.job_id == job_id, ReportSignatureRow.uid == uid)
        return list(session.scalars(query.order_by(ReportSignatureRow.version)))


def signatures(engine: Engine, read: FinishedOutcome) -> list[ReportSignatureRow]:
    """Every signature of the outcome, oldest first."""
    return signatures_of(engine, read.job.id, read.outcome.uid)


def write_signed_report(path: Path, report: dict[str, Any]) -> None:
    """Put the signed FHIR report in place of the one before it, whole (never half-written)."""
    _replace(path, (json.dumps(report, ensure_ascii=False, indent=2) + "\n").encode())


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def sign_radiograph(engine: Engine, read: FinishedOutcome, *, impression: str, name: str,
                    actor: Actor) -> ReportSignatureRow:  # fmt: skip
    """Sign (or amend) the outcome's report as ``actor``.

    Raises:
        InvalidInputError: ``unsupported_outcome`` (a CT series: not yet), ``empty_impression``,
            ``impression_too_long``, ``invalid_signer_name``, ``unreviewed_findings`` (findings the signer gave no
            verdict on, named).
        ResultNotFoundError: ``source_not_stored``.
    """
    if read.outcome.kind is not OutcomeKind.RADIOGRAPH:
        raise InvalidInputError("signing a CT segmentation is not supported yet; radiographs are",
                                code="unsupported_outcome")  # fmt: skip
    impression = checked_impression(impression)
    name = signer_name(name, actor.subject)
    verdicts = _signers_verdicts(engine, read, actor.subject)
    missing = [f.label for f in read.outcome.findings if f.label not in verdicts]
    if missing:
        raise InvalidInputError(f"give your verdict on every finding before signing; missing: {', '.join(missing)}",
                                code="unreviewed_findings")  # fmt: skip
    layout, settings = read.layout, engine.settings
    document: dict[str, Any] = json.loads(layout.path(OutputLayout.RESULT).read_text(encoding="utf-8"))
    result = ClassificationResult.model_validate(document["result"])
    ai_report = json.loads(layout.path(OutputLayout.REPORT).read_text(encoding="utf-8"))
    header = _source_header(read)
    version = len(signatures(engine, read)) + 1
    sr_path, report_path = layout.path(OutputLayout.SIGNED_SR), layout.path(OutputLayout.SIGNED_REPORT)
    previous = pydicom.dcmread(sr_path) if version > 1 and sr_path.is_file() else None
    now = dt.datetime.now(dt.UTC)
    home = actor.site or settings.site  # the signer's site (a hub reading a referred study signs as the hub)
    site = settings.site_name if home == settings.site and settings.site_name else home
    final = signed_report(ai_report, signer=Signer(name=name, login=actor.subject, site=home),
                          readings=finding_readings(ai_report, verdicts), impression=impression, signed_at=now,
                          version=version)  # fmt: skip
    sr = build_classification_sr(result, header, signature=ReaderSignature(
        name=name, login=actor.subject, organization=site, verdicts=verdicts, impression=impression,
        previous=previous))  # fmt: skip
    row = ReportSignatureRow(job_id=read.job.id, uid=read.outcome.uid, study_uid=read.outcome.study_uid,
                             version=version, status=final["status"], signer=actor.subject, signer_name=name,
                             role=actor.role, site=home, impression=impression,
                             verdicts=json.dumps(verdicts, sort_keys=True), sr_sop_instance_uid=str(sr.SOPInstanceUID),
                             created_at=now)  # fmt: skip
    staged = sr_path.with_name(f".{sr_path.name}.staged")
    sr.save_as(staged)
    written = pydicom.dcmread(staged, stop_before_pixels=True)  # as stored: what QIDO and WADO will serve
    with engine.database.session() as session:
        session.add(row)
        index_dataset(session, written, sr_path, origin=AI_RESULT, site=read.job.site)
        sent_to = queue_results(session, settings, [sr_path], study_uid=read.outcome.study_uid, site=read.job.site,
                                now=now)  # fmt: skip
        mark_signed(session, read.job.id, site=home, signer=actor.subject, now=now)
        record_event(session, AuditAction.IMAGING_REPORT_SIGN, actor, f"ImagingStudy/{read.outcome.study_uid}",
                     model=read.outcome.model, input_sha256=read.outcome.input_sha256,
                     detail={"job": read.job.id, "uid": read.outcome.uid, "version": version,
                             "status": final["status"], "accepted": sum(v == "accepted" for v in verdicts.values()),
                             "rejected": sum(v == "rejected" for v in verdicts.values()),
                             "sent_to": sent_to})  # fmt: skip
        if previous is not None:  # the version it amends stays served (QIDO/WADO) under its own name
            kept = sr_path.with_name(f"signed-report-sr-v{version - 1}.dcm")
            index_dataset(session, previous, kept, origin=AI_RESULT, site=read.job.site)
            session.flush()
            os.replace(sr_path, kept)
        session.flush()
        os.replace(staged, sr_path)  # in place before the commit that queues and indexes it
        write_signed_report(report_path, final)
    return row


def shared_bundle(engine: Engine, layout: OutputLayout, *, actor: Actor) -> dict[str, Any]:
    """The read's signed report as a Bundle this site signed for the other consortium members (audited).

    Raises:
        InvalidInputError: ``not_signed``: nobody has signed the read yet.
        ConfigurationError: ``site_keys_missing``.
    """
    from cds.services.consortium import share_report

    path = layout.path(OutputLayout.SIGNED_REPORT)
    if not path.is_file():
        raise InvalidInputError("nobody has signed this report yet; only signed reports are shared", code="not_signed")
    report = json.loads(path.read_text(encoding="utf-8"))
    return share_report(engine.database, engine.settings, report, actor=actor)
