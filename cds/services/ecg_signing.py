"""A cardiologist signs an ECG read: the final FHIR report, with their reviewed rhythm, measurements and flags.

Signing needs the signer's own current review of the rhythm and of every flag (``POST .../reviews``; measurements
they corrected or accepted are included, the others stay the AI's) and their impression. It writes the signed FHIR
DiagnosticReport (:func:`cds.interop.fhir_signed_report.signed_report` with :func:`cds.interop.fhir_ecg.
review_readings`) into the read's folder and keeps a signature row with its audit event (``ecg.report.sign``).
Signing again amends. There is no signed DICOM object for an ECG yet: the read's source may be a CSV or an aECG.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Final

from cds.errors import InvalidInputError
from cds.interop.fhir_ecg import review_readings
from cds.interop.fhir_signed_report import Signer, signed_report
from cds.results.ecg import EcgResult
from cds.results.jobs import EcgPayload, JobRecord
from cds.results.layout import OutputLayout
from cds.services.ecg import reviewed
from cds.services.engine import Engine
from cds.services.report_signing import checked_impression, signatures_of, signer_name, write_signed_report
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.ecg_reviews import list_reviews
from cds.store.referrals import mark_signed
from cds.store.tables import ReportSignatureRow

ECG_READ: Final = "ecg"  # the signature rows' ``uid`` for an ECG read (one read per job)


def layout_of(job: JobRecord) -> OutputLayout:
    """Where the ECG read's files are."""
    return OutputLayout(job.payload_as(EcgPayload).output)


def ecg_signatures(engine: Engine, job: JobRecord) -> list[ReportSignatureRow]:
    """Every signature of the ECG read, oldest first."""
    return signatures_of(engine, job.id, ECG_READ)


def sign_ecg(engine: Engine, job: JobRecord, *, impression: str, name: str, actor: Actor) -> ReportSignatureRow:
    """Sign (or amend) the finished ECG read's report as ``actor``.

    Raises:
        InvalidInputError: ``empty_impression``, ``impression_too_long``, ``invalid_signer_name``,
            ``unreviewed_items`` (the rhythm or flags the signer has not reviewed, named).
    """
    impression = checked_impression(impression)
    shown = signer_name(name, actor.subject)
    ecg = reviewed(job)
    with engine.database.session() as session:
        rows = list_reviews(session, job.id)  # newest first
    current: dict[str, tuple[str, str]] = {}
    for row in rows:
        if row.actor == actor.subject:
            current.setdefault(row.item, (row.verdict, row.value))
    missing = [item for item in ("rhythm", *sorted(ecg.flags)) if item not in current]
    if missing:
        raise InvalidInputError(f"review the rhythm and every flag before signing; missing: {', '.join(missing)}",
                                code="unreviewed_items")  # fmt: skip
    layout = layout_of(job)
    result = EcgResult.model_validate_json(layout.path(OutputLayout.RESULT).read_text(encoding="utf-8"))
    ai_report = json.loads(layout.path(OutputLayout.REPORT).read_text(encoding="utf-8"))
    version = len(ecg_signatures(engine, job)) + 1
    now = dt.datetime.now(dt.UTC)
    home = actor.site or engine.settings.site  # the signer's site
    final = signed_report(ai_report, signer=Signer(name=shown, login=actor.subject, site=home),
                          readings=review_readings(ai_report, result, current), impression=impression,
                          signed_at=now, version=version)  # fmt: skip
    signature = ReportSignatureRow(job_id=job.id, uid=ECG_READ, study_uid="", version=version,
                                   status=final["status"], signer=actor.subject, signer_name=shown, role=actor.role,
                                   site=home, impression=impression,
                                   verdicts=json.dumps({k: v[0] for k, v in current.items()}, sort_keys=True),
                                   sr_sop_instance_uid="", created_at=now)  # fmt: skip
    with engine.database.session() as session:
        session.add(signature)
        record_event(session, AuditAction.ECG_REPORT_SIGN, actor, f"Job/{job.id}", subject=job.subject,
                     model=ecg.model, input_sha256=ecg.input_sha256,
                     detail={"version": version, "status": final["status"], "reviewed": len(current)})  # fmt: skip
        mark_signed(session, job.id, site=home, signer=actor.subject, now=now)
        session.flush()
        write_signed_report(layout.path(OutputLayout.SIGNED_REPORT), final)
    return signature
