"""Sharing signed results among consortium members: sign what this site shares, verify and import what others do.

:func:`share_report` turns a signed DiagnosticReport into the Bundle other members recognise
(:mod:`cds.consortium.shared_result`) and signs it with the site's active key; :func:`import_shared` verifies a
Bundle from a member (its signature against that member's published key, and that it is one signed report about
one patient) and keeps it, once. Both are audited (``consortium.share``, ``consortium.import``; a refused import
with its reason code).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from cds.consortium.bundle_signature import (
    VerifiedSignature,
    canonical_form,
    sign_bundle,
    signing_kid,
    verify_bundle,
)
from cds.consortium.shared_result import SIGNED_STATUSES, shareable_bundle, validate_bundle
from cds.consortium.site_keys import SiteKeyRing, TrustStore, public_key_set
from cds.errors import InvalidInputError, PayloadTooLargeError
from cds.settings import Settings
from cds.store.audit import Actor, AuditAction, AuditOutcome, record_event
from cds.store.db import Database
from cds.store.sites import acting_site
from cds.store.tables import SharedResultRow

MAX_SHARED_BUNDLE_BYTES = 8 * 2**20  # a report with its observations is kilobytes; images are not shared inline


def key_ring(settings: Settings) -> SiteKeyRing:
    """This site's signing key ring."""
    return SiteKeyRing(settings.resolved_site_keys_dir, settings.site)


def trust_store(settings: Settings) -> TrustStore:
    """The members' published keys and this site's own."""
    ring = key_ring(settings)
    return TrustStore.load(settings.consortium_keys_dir, own=public_key_set(ring) if ring.entries() else None)


def _subject_text(subject: Any) -> str:
    if not isinstance(subject, dict):
        return ""
    identifier = subject.get("identifier") or {}
    if subject.get("reference"):
        return str(subject["reference"])
    if isinstance(identifier, dict) and identifier.get("value"):
        return f"{identifier.get('system', '')}|{identifier['value']}"
    return ""


def share_report(database: Database, settings: Settings, report: dict[str, Any], *, actor: Actor,
                 now: dt.datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """The signed report as a Bundle signed by this site; audited as ``consortium.share``.

    Raises:
        InvalidInputError: The report is not a signed DiagnosticReport (see :func:`shareable_bundle`).
        ConfigurationError: The site has no active signing key.
    """
    bundle = sign_bundle(shareable_bundle(report, site=settings.site, site_name=settings.site_name, now=now),
                         key_ring(settings), when=now)  # fmt: skip
    digest = hashlib.sha256(canonical_form(bundle)).hexdigest()
    with database.session() as session:
        record_event(session, AuditAction.CONSORTIUM_SHARE, actor, f"Bundle/{bundle['identifier']['value']}",
                     subject=_subject_text(report.get("subject")),
                     detail={"kid": signing_kid(bundle), "content_sha256": digest})
    return bundle


@dataclass(frozen=True)
class ImportedResult:
    """A shared result as kept: its row, and whether this import added it (``False``: it was there already)."""

    row: SharedResultRow
    created: bool


def _the_report(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Bundle's one signed DiagnosticReport, every entry about its patient.

    Raises:
        InvalidInputError: ``not_a_shared_result`` (no collection, or not exactly one report), ``not_signed`` (a
            preliminary report), ``mixed_subjects`` (an entry about another patient).
    """
    entries = bundle.get("entry") if bundle.get("resourceType") == "Bundle" else None
    resources = [e["resource"] for e in entries or () if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    reports = [r for r in resources if r.get("resourceType") == "DiagnosticReport"]
    if len(reports) != 1:
        raise InvalidInputError(f"a shared result is a Bundle with one DiagnosticReport; this has {len(reports)}",
                                code="not_a_shared_result")  # fmt: skip
    report: dict[str, Any] = reports[0]
    if report.get("status") not in SIGNED_STATUSES:
        raise InvalidInputError(f"a {report.get('status')!r} report is not a signed result", code="not_signed")
    subject = report.get("subject")
    others = [r["resourceType"] for r in resources if "subject" in r and r["subject"] != subject]
    if others:
        raise InvalidInputError(f"{', '.join(sorted(set(others)))} about another patient than the report's",
                                code="mixed_subjects")  # fmt: skip
    return report


def parse_bundle(data: bytes) -> dict[str, Any]:
    """A shared Bundle from its JSON bytes.

    Raises:
        PayloadTooLargeError: Over :data:`MAX_SHARED_BUNDLE_BYTES`.
        InvalidInputError: ``invalid_json``.
    """
    if len(data) > MAX_SHARED_BUNDLE_BYTES:
        raise PayloadTooLargeError(f"{len(data)} bytes; a shared result of at most {MAX_SHARED_BUNDLE_BYTES}",
                                   code="payload_too_large")  # fmt: skip
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidInputError("the body is not JSON", code="invalid_json") from None
    if not isinstance(document, dict):
        raise InvalidInputError("a shared result is a JSON object (a FHIR Bundle)", code="invalid_json")
    return document


def import_shared(database: Database, settings: Settings, bundle: dict[str, Any], *, actor: Actor,
                  authorize: Callable[[str], None] | None = None) -> ImportedResult:  # fmt: skip
    """Verify a member's signed result and keep it (once); audited, a refusal with its reason.

    ``authorize`` is called with the report's subject before anything is kept (a patient-scoped caller's check).

    Raises:
        InvalidInputError: The reasons of :func:`~cds.consortium.bundle_signature.verify_bundle`, of
            :func:`_the_report`, and ``invalid_fhir``.
    """
    try:
        verified = verify_bundle(bundle, trust_store(settings))
        report = _the_report(bundle)
        validate_bundle(bundle)
    except InvalidInputError as refusal:
        with database.session() as session:
            record_event(session, AuditAction.CONSORTIUM_IMPORT, actor, "Bundle", outcome=AuditOutcome.REFUSED,
                         detail={"reason": refusal.code})
        raise
    if authorize is not None:
        authorize(_subject_text(report.get("subject")))
    return _keep(database, bundle, report, verified, actor=replace(actor, site=acting_site(actor, settings.site)))


def _keep(database: Database, bundle: dict[str, Any], report: dict[str, Any], verified: VerifiedSignature, *,
          actor: Actor) -> ImportedResult:  # fmt: skip
    digest = hashlib.sha256(canonical_form(bundle)).hexdigest()
    subject = _subject_text(report.get("subject"))
    identifiers = [i for i in report.get("identifier") or () if isinstance(i, dict) and i.get("value")]
    with database.session() as session:
        existing = session.scalars(select(SharedResultRow).where(
            SharedResultRow.content_sha256 == digest, SharedResultRow.site == actor.site)).first()  # fmt: skip
        row = existing or SharedResultRow(
            id=str(uuid.uuid4()), content_sha256=digest, origin_site=verified.site, kid=verified.kid,
            signed_at=verified.signed_at, report_identifier=str(identifiers[0]["value"])[:300] if identifiers else "",
            report_status=str(report.get("status")), subject=subject[:300],
            title=str((report.get("code") or {}).get("text", ""))[:300], bundle=json.dumps(bundle, ensure_ascii=False),
            imported_by=actor.subject, imported_at=dt.datetime.now(dt.UTC), site=actor.site)  # fmt: skip
        if existing is None:
            session.add(row)
        record_event(session, AuditAction.CONSORTIUM_IMPORT, actor, f"SharedResult/{row.id}", subject=subject,
                     detail={"origin_site": verified.site, "kid": verified.kid, "content_sha256": digest,
                             "duplicate": existing is not None})  # fmt: skip
    return ImportedResult(row=row, created=existing is None)


def shared_results(database: Database, *, actor: Actor, sites: Sequence[str], subject: str = "",
                   limit: int = 100) -> list[SharedResultRow]:  # fmt: skip
    """The shared results ``sites`` imported, newest first (one patient's, when ``subject`` is given); audited."""
    with database.session() as session:
        query = select(SharedResultRow).where(SharedResultRow.site.in_(list(sites)))
        query = query.order_by(SharedResultRow.imported_at.desc()).limit(limit)
        if subject:
            query = query.where(SharedResultRow.subject == subject)
        rows = list(session.scalars(query))
        record_event(session, AuditAction.CONSORTIUM_RESULTS_READ, actor, "SharedResult", subject=subject,
                     detail={"returned": len(rows)})
        return rows
