"""The tamper-evident audit trail: every event is hash-chained to the one before it.

``hash = sha256(canonical JSON of the event's fields, including its sequence number and the previous hash)``; the
acting site is one of those fields when the event has one (events written before sites existed have none, and hash as
they did).
Appending locks the chain head (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises writers), so events
from many workers form one chain. :func:`verify_chain` finds the first edited, deleted, inserted or reordered event.
Events never hold tokens; patient references stay in the database and never reach logs or metrics.

What happened is one of :class:`AuditAction` and how it ended one of :class:`AuditOutcome`; :func:`record_event`
is the one helper that writes an event for an :class:`Actor`. Identifiers in an event's details (UIDs, file names:
:data:`IDENTIFYING_DETAILS`) are written as keyed hashes (:func:`pseudonym`), under a key the composition root sets
from the audit signing key (:func:`use_pseudonym_key`; a process that never sets one uses a random key).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import select
from sqlalchemy.orm import Session, SessionTransaction

from cds.privacy import Pseudonymizer
from cds.store.tables import AuditEventRow, AuditHeadRow

GENESIS = "0" * 64
IDENTIFYING_DETAILS = ("uid", "series", "instance", "file")  # detail keys whose values are pseudonymized
_pseudonyms = Pseudonymizer(secrets.token_bytes(32))
_HASHED = ("seq", "occurred_at", "actor", "role", "action", "resource", "subject", "model", "input_sha256",
           "outcome", "detail", "prev_hash")  # fmt: skip
_PENDING_KEY = "cds.audit_pending"  # Session.info: the transaction's events, chained when it commits


def use_pseudonym_key(key: bytes) -> None:
    """Set the key of the details' keyed hashes (the same for every process of one deployment)."""
    global _pseudonyms  # noqa: PLW0603 - one key per process, set by the composition root
    _pseudonyms = Pseudonymizer(key)


def pseudonym(identifier: str) -> str:
    """The keyed hash an identifier is written as in audit details."""
    return _pseudonyms(identifier)


class AuditAction(StrEnum):
    """Everything the audit trail records, by what was done (the dashboard and exports filter on these)."""

    ACCESS_DENIED = "access.denied"
    RESULT_CREATE = "result.create"
    RESULT_READ = "result.read"
    JOB_CREATE = "job.create"
    JOB_DONE = "job.done"
    JOB_FAILED = "job.failed"
    JOB_READ = "job.read"
    JOB_RESULT_READ = "job.result.read"
    HOOKS_CALL = "hooks.call"
    HOOKS_FEEDBACK = "hooks.feedback"
    IMAGING_PREREAD = "imaging.preread"
    IMAGING_RESULT_READ = "imaging.result.read"
    IMAGING_WORKLIST_READ = "imaging.worklist.read"
    IMAGING_VIEWER_OPEN = "imaging.viewer.open"
    IMAGING_VIEWER_RENDER = "imaging.viewer.render"
    IMAGING_FEEDBACK = "imaging.feedback"
    IMAGING_FEEDBACK_READ = "imaging.feedback.read"
    REFERRAL_CREATE = "referral.create"  # a site referred a study to another (the hub) for reading
    REFERRALS_READ = "referrals.read"
    IMAGING_REPORT_SIGN = "imaging.report.sign"  # a specialist signed (or amended) a pre-read: the final report
    IMAGING_SIGNATURES_READ = "imaging.signatures.read"
    IMAGING_SEARCH = "imaging.search"
    IMAGING_RETRIEVE = "imaging.retrieve"
    PATHOLOGY_READ = "pathology.read"
    PATHOLOGY_RESULT_READ = "pathology.result.read"
    PATHOLOGY_JOBS_READ = "pathology.jobs.read"
    PATHOLOGY_VIEWER_RENDER = "pathology.viewer.render"
    PATHOLOGY_FEEDBACK = "pathology.feedback"  # a pathologist accepted or rejected a slide read's AI finding
    PATHOLOGY_FEEDBACK_READ = "pathology.feedback.read"
    PATHOLOGY_REPORT_SIGN = "pathology.report.sign"  # a pathologist signed (or amended) a slide read: the final report
    PATHOLOGY_SIGNATURES_READ = "pathology.signatures.read"
    ECG_READ = "ecg.read"
    ECG_RESULT_READ = "ecg.result.read"
    ECG_JOBS_READ = "ecg.jobs.read"
    ECG_REVIEW = "ecg.review"
    ECG_REVIEWS_READ = "ecg.reviews.read"
    ECG_REPORT_SIGN = "ecg.report.sign"  # a cardiologist signed (or amended) an ECG read: the final report
    ECG_SIGNATURES_READ = "ecg.signatures.read"
    DASHBOARD_READ = "dashboard.read"
    OBSERVATIONS_INGEST = "observations.ingest"
    OBSERVATIONS_READ = "observations.read"
    ALERT_OPEN = "alert.open"
    ALERT_ESCALATE = "alert.escalate"
    ALERT_ACKNOWLEDGE = "alert.acknowledge"
    ALERTS_READ = "alerts.read"
    MONITORING_READ = "monitoring.read"
    SCORES_READ = "scores.read"
    REGISTRY_ENROL = "registry.enrol"
    REGISTRY_READ = "registry.read"
    IMAGING_RECEIVE = "imaging.receive"
    IMAGING_SEND = "imaging.send"
    DATA_EGRESS_REFUSED = "data.egress.refused"  # a destination outside CDS_ALLOWED_DESTINATIONS: nothing sent
    TRAINING_EXPORT = "training.export"
    CONSORTIUM_SHARE = "consortium.share"  # a signed result signed by this site for other members
    CONSORTIUM_IMPORT = "consortium.import"  # a member's signed result verified and kept (or refused)
    CONSORTIUM_RESULTS_READ = "consortium.results.read"
    UPLOAD_REFUSED = "upload.refused"  # an upload (or a STOW-RS part) refused: too large, wrong type, unreadable


class AuditOutcome(StrEnum):
    """How an audited action ended."""

    SUCCESS = "success"
    DENIED = "denied"  # refused for want of credentials, role or scope
    REFUSED = "refused"  # refused because of its input (an image the contract or gate refused)
    ERROR = "error"  # failed


@dataclass(frozen=True)
class Actor:
    """Who acts: the subject, their roles, the scoped patient, the site.

    ``patient`` is the one patient a scoped token is limited to; ``site`` the site they act for (empty: this
    deployment's); ``session`` what identifies their sign-in (a token's ``jti``; not written into events, only used
    to audit a view once per session: :mod:`cds.store.audit_policy`).
    """

    subject: str
    role: str
    patient: str | None = None
    site: str = ""
    session: str = ""


class AuditEvent(BaseModel):
    """What happened, to be appended to the chain.

    Who (actor, role) did what (action) to what (resource, patient subject), with which model and input, and how
    it ended.
    """

    model_config = ConfigDict(frozen=True)

    actor: str
    role: str
    action: AuditAction
    resource: str
    outcome: AuditOutcome
    subject: str = ""
    model: str = ""
    input_sha256: str = ""
    detail: dict[str, Any] = {}
    site: str = ""  # the site the actor acts for


def event_hash(fields: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of the hashed fields (with the site when it is not empty)."""
    hashed = {k: fields[k] for k in _HASHED}
    if fields.get("site"):
        hashed["site"] = fields["site"]
    canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def append_event(session: Session, event: AuditEvent, *, now: dt.datetime | None = None) -> None:
    """Append ``event`` to the chain in the caller's transaction: durable when that commits, gone if it rolls back.

    The event is timed now and chained when the transaction commits (:func:`_chain_pending`), so the chain's head
    is locked only while the commit writes, not while the transaction works.
    """
    if session.get_transaction() is None:
        session.begin()  # what the next statement would begin: the events end with this transaction
    session.info.setdefault(_PENDING_KEY, []).append((event, now or dt.datetime.now(dt.UTC)))


@sqlalchemy_event.listens_for(Session, "before_commit")
def _chain_pending(session: Session) -> None:
    """Link the transaction's events to the chain and write them, just before it commits."""
    pending: list[tuple[AuditEvent, dt.datetime]] = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return
    head = session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).scalar_one()
    for event, when in pending:
        fields: dict[str, Any] = {
            "seq": head.seq + 1,
            "occurred_at": when.isoformat(timespec="microseconds"),
            "actor": event.actor,
            "role": event.role,
            "action": event.action.value,
            "resource": event.resource,
            "subject": event.subject,
            "model": event.model,
            "input_sha256": event.input_sha256,
            "outcome": event.outcome.value,
            "detail": json.dumps(event.detail, sort_keys=True, separators=(",", ":")),
            "prev_hash": head.hash,
            "site": event.site,
        }
        row = AuditEventRow(**fields, hash=event_hash(fields))
        session.add(row)
        head.seq, head.hash = row.seq, row.hash


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """A savepoint of the caller's transaction whose audit events go when it rolls back, like its rows."""
    if session.get_transaction() is None:
        session.begin()
    pending: list[tuple[AuditEvent, dt.datetime]] = session.info.setdefault(_PENDING_KEY, [])
    mark = len(pending)
    try:
        with session.begin_nested():
            yield
    except BaseException:
        del pending[mark:]
        raise


@sqlalchemy_event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    """A transaction that ended without committing (rolled back, closed) leaves no events for the next one."""
    if transaction.parent is None:  # the outermost transaction, not a savepoint
        session.info.pop(_PENDING_KEY, None)


def record_event(
    session: Session, action: AuditAction, actor: Actor, resource: str, *,
    outcome: AuditOutcome = AuditOutcome.SUCCESS, subject: str = "", model: str = "", input_sha256: str = "",
    detail: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Append what ``actor`` did to the chain, inside the caller's transaction (durable when that commits).

    Args:
        session: The caller's open session.
        action: What was done.
        actor: Who did it.
        resource: What it was done to (``Job/<id>``, ``ImagingStudy/<uid>``, ``GET /v1/...``).
        outcome: How it ended.
        subject: The patient it concerns (``Patient/<id>``), if known.
        model: The model or method key (``name:version`` / ``name@version``) that produced the data.
        input_sha256: The hash of the input concerned.
        detail: Further facts (reason codes, counts); never free text a person typed. Values under
            :data:`IDENTIFYING_DETAILS` are written as keyed hashes.
    """
    details = _pseudonyms.details(detail or {}, IDENTIFYING_DETAILS)
    append_event(session, AuditEvent(actor=actor.subject, role=actor.role, action=action, resource=resource,
                                     outcome=outcome, subject=subject, model=model,
                                     input_sha256=input_sha256, detail=details, site=actor.site))  # fmt: skip


@dataclass(frozen=True)
class ChainReport:
    """Outcome of a verification: ``ok``, events checked, and where and why it broke."""

    ok: bool
    checked: int
    broken_at: int | None = None
    reason: str = ""


def verify_chain(session: Session) -> ChainReport:
    """Walk the chain in sequence order and report the first inconsistency."""
    expected_seq, previous = 1, GENESIS
    rows = session.execute(select(AuditEventRow).order_by(AuditEventRow.seq)).scalars()
    checked = 0
    for row in rows:
        fields = {k: getattr(row, k) for k in (*_HASHED, "site")}
        if row.seq != expected_seq:
            return ChainReport(False, checked, expected_seq, f"event {expected_seq} is missing (next is {row.seq})")
        if row.prev_hash != previous:
            return ChainReport(False, checked, row.seq, f"event {row.seq} does not follow event {row.seq - 1}")
        if event_hash(fields) != row.hash:
            return ChainReport(False, checked, row.seq, f"event {row.seq} was altered after it was written")
        previous, expected_seq, checked = row.hash, expected_seq + 1, checked + 1
    head = session.get(AuditHeadRow, 1)
    if head is None or head.seq != checked or head.hash != previous:
        last = head.seq if head else 0
        return ChainReport(False, checked, checked + 1, f"the chain ends at {checked} but its head says {last}")
    return ChainReport(True, checked)


def to_fhir_audit_event(row: AuditEventRow) -> dict[str, Any]:
    """The event as a FHIR R4 AuditEvent (JSON-ready)."""
    outcome = {"success": "0", "refused": "4", "denied": "4", "error": "8"}.get(row.outcome, "8")
    entity: list[dict[str, Any]] = [{"what": {"display": row.resource}}]
    if row.subject:
        entity.append({"what": {"reference": row.subject}, "role": {"code": "1", "display": "Patient"}})
    return {
        "resourceType": "AuditEvent",
        "id": str(row.seq),
        "type": {"system": "urn:cds:audit", "code": row.action},
        "recorded": row.occurred_at,
        "outcome": outcome,
        "outcomeDesc": row.detail or None,
        "agent": [{"who": {"display": row.actor}, "role": [{"text": row.role}], "requestor": True}],
        "source": {"site": row.site, "observer": {"display": "cds"}} if row.site else {"observer": {"display": "cds"}},
        "entity": entity,
    }
