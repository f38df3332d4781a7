"""A pathologist reviews and signs a slide read: their verdict on the AI's slide-level finding, the final report.

The pathologist accepts or rejects each slide-level AI finding (the tumour call; a slide without tissue has none),
optionally with a comment: a :class:`~cds.store.tables.FindingFeedbackRow` per verdict (append only), audited as
``pathology.feedback``. Signing needs the signer's own verdict on every finding and their impression; it writes the
signed FHIR DiagnosticReport (:func:`cds.interop.fhir_signed_report.signed_report` with :func:`~cds.interop.
fhir_signed_report.finding_readings`) into the read's folder, keeps a signature row with its audit event
(``pathology.report.sign``) and closes an open referral of the read. Signing again amends (status ``amended``).

A slide read is known by its slide: the rows' ``uid`` is the sha256 of the slide file (the outcome's
``input_sha256``), ``study_uid`` the Study Instance UID of a DICOM WSI (empty for any other file). There is no
signed DICOM object for a slide yet.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cds.errors import InvalidInputError
from cds.interop.fhir_signed_report import Signer, finding_readings, signed_report
from cds.results.jobs import JobRecord, PathologyOutcome, PathologyPayload
from cds.results.layout import OutputLayout
from cds.services.engine import Engine
from cds.services.report_signing import checked_impression, signatures_of, signer_name, write_signed_report
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.feedback import ReviewedOutcome, Verdict, list_feedback, record_feedback
from cds.store.referrals import mark_signed
from cds.store.tables import FindingFeedbackRow, ReportSignatureRow


def layout_of(job: JobRecord) -> OutputLayout:
    """Where the slide read's files are."""
    return OutputLayout(job.payload_as(PathologyPayload).output)


def _outcome(job: JobRecord) -> PathologyOutcome:
    if not isinstance(job.outcome, PathologyOutcome):  # a finished pathology job always has one
        raise InvalidInputError(f"job {job.id} has no slide read-out", code="job_not_done")
    return job.outcome


def findings_of(job: JobRecord) -> tuple[str, ...]:
    """The labels of the read's slide-level AI findings (none for a slide without tissue)."""
    finding = _outcome(job).finding
    return (finding.label,) if finding is not None else ()


def study_uid_of(path: Path) -> str:
    """The Study Instance UID of a DICOM WSI file; empty for any other slide (or a header without one)."""
    if path.suffix.lower() != ".dcm" or not path.is_file():
        return ""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
    except (InvalidDicomError, OSError, ValueError):
        return ""
    return str(header.get("StudyInstanceUID", "") or "")


def reviewed_slide(job: JobRecord) -> ReviewedOutcome:
    """The slide read as the feedback store knows it: the slide's sha256 as its ``uid``, its findings' labels."""
    outcome = _outcome(job)
    return ReviewedOutcome(job_id=job.id, uid=outcome.input_sha256,
                           study_uid=study_uid_of(job.payload_as(PathologyPayload).file), model=outcome.model,
                           input_sha256=outcome.input_sha256, labels=findings_of(job),
                           action=AuditAction.PATHOLOGY_FEEDBACK, resource=f"Job/{job.id}",
                           subject=job.subject)  # fmt: skip


def submit_verdict(engine: Engine, job: JobRecord, *, label: str, verdict: Verdict | str, comment: str,
                   actor: Actor, expected: int | None = None) -> FindingFeedbackRow:  # fmt: skip
    """Store ``actor``'s verdict on finding ``label`` of the finished slide read, audited.

    ``expected``: the version of the verdicts the pathologist saw (:func:`cds.store.feedback.hold_version`).

    Raises:
        InvalidInputError: ``unknown_finding``, ``invalid_verdict`` or ``comment_too_long``.
        PreconditionFailedError: ``stale_verdicts``.
    """
    with engine.database.session() as session:
        return record_feedback(session, reviewed_slide(job), label=label, verdict=verdict, comment=comment,
                               actor=actor, expected=expected)  # fmt: skip


def verdicts(engine: Engine, job: JobRecord) -> list[FindingFeedbackRow]:
    """Every verdict on the slide read's findings, newest first."""
    with engine.database.session() as session:
        return list_feedback(session, job.id, _outcome(job).input_sha256)


def slide_signatures(engine: Engine, job: JobRecord) -> list[ReportSignatureRow]:
    """Every signature of the slide read, oldest first."""
    return signatures_of(engine, job.id, _outcome(job).input_sha256)


def sign_slide(engine: Engine, job: JobRecord, *, impression: str, name: str, actor: Actor) -> ReportSignatureRow:
    """Sign (or amend) the finished slide read's report as ``actor``.

    Raises:
        InvalidInputError: ``empty_impression``, ``impression_too_long``, ``invalid_signer_name``,
            ``unreviewed_findings`` (findings the signer gave no verdict on, named).
    """
    impression = checked_impression(impression)
    shown = signer_name(name, actor.subject)
    slide = reviewed_slide(job)
    current: dict[str, str] = {}
    for row in verdicts(engine, job):  # newest first
        if row.actor == actor.subject:
            current.setdefault(row.label, row.verdict)
    missing = [label for label in slide.labels if label not in current]
    if missing:
        raise InvalidInputError(f"give your verdict on every finding before signing; missing: {', '.join(missing)}",
                                code="unreviewed_findings")  # fmt: skip
    layout = layout_of(job)
    ai_report = json.loads(layout.path(OutputLayout.REPORT).read_text(encoding="utf-8"))
    version = len(slide_signatures(engine, job)) + 1
    now = dt.datetime.now(dt.UTC)
    home = actor.site or engine.settings.site  # the signer's site (a hub reading a referred slide signs as the hub)
    final = signed_report(ai_report, signer=Signer(name=shown, login=actor.subject, site=home),
                          readings=finding_readings(ai_report, current), impression=impression, signed_at=now,
                          version=version)  # fmt: skip
    signature = ReportSignatureRow(job_id=job.id, uid=slide.uid, study_uid=slide.study_uid, version=version,
                                   status=final["status"], signer=actor.subject, signer_name=shown, role=actor.role,
                                   site=home, impression=impression, verdicts=json.dumps(current, sort_keys=True),
                                   sr_sop_instance_uid="", created_at=now)  # fmt: skip
    with engine.database.session() as session:
        session.add(signature)
        record_event(session, AuditAction.PATHOLOGY_REPORT_SIGN, actor, f"Job/{job.id}", subject=job.subject,
                     model=slide.model, input_sha256=slide.input_sha256,
                     detail={"version": version, "status": final["status"],
                             "accepted": sum(v == Verdict.ACCEPTED for v in current.values()),
                             "rejected": sum(v == Verdict.REJECTED for v in current.values())})  # fmt: skip
        mark_signed(session, job.id, site=home, signer=actor.subject, now=now)
        session.flush()
        write_signed_report(layout.path(OutputLayout.SIGNED_REPORT), final)
    return signature
