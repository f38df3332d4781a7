"""Audit administration: verify the chain, export events as FHIR AuditEvent (admin only).

The chain is one for the deployment, so verification walks all of it (and returns no event); an administrator
exports only their own site's events (with the deployment's own events from before sites, for its home site).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import StateDep, refuse_patient_scoped, require
from cds.store.audit import to_fhir_audit_event, verify_chain
from cds.store.audit_anchor import verify_anchor
from cds.store.sites import visible_sites
from cds.store.tables import AuditEventRow

router = APIRouter(prefix="/v1/audit", tags=["audit"])
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


class ChainStatus(BaseModel):
    """Result of walking the chain and holding it to its newest signed checkpoint (kept outside the database)."""

    ok: bool
    checked: int
    broken_at: int | None
    reason: str
    anchored_at: int | None  # the checkpoint's event; None before the first checkpoint
    anchor_ok: bool
    anchor_reason: str


@router.get("/verify")
def verify(state: StateDep, _principal: Admin) -> ChainStatus:
    """Check every event's hash and link, and the chain against its newest signed checkpoint (no event is returned).

    ``ok`` is false when either check fails.
    """
    store = state.engine.checkpoints
    with state.database.session() as session:
        report = verify_chain(session)
        anchor = verify_anchor(session, store.read(), store.public_key)
    return ChainStatus(ok=report.ok and anchor.ok, checked=report.checked, broken_at=report.broken_at,
                       reason=report.reason, anchored_at=anchor.anchored_at, anchor_ok=anchor.ok,
                       anchor_reason=anchor.reason)


@router.get("/events")
def events(
    request: Request, state: StateDep, principal: Admin, after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    """The caller's site's events with sequence number above ``after``, as FHIR AuditEvent resources.

    Not for patient-scoped tokens.
    """
    refuse_patient_scoped(state, request, principal, "the audit trail")
    sites = visible_sites(principal.site, state.settings.site)
    with state.database.session() as session:
        rows = session.execute(
            select(AuditEventRow).where(AuditEventRow.seq > after, AuditEventRow.site.in_(sites))
            .order_by(AuditEventRow.seq).limit(limit)
        ).scalars()  # fmt: skip
        return [to_fhir_audit_event(row) for row in rows]
