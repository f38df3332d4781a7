"""Audit actions are a closed vocabulary, written through one helper with the actor's identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from cds.store.audit import Actor, AuditAction, AuditEvent, AuditOutcome, record_event, verify_chain
from cds.store.db import Database
from cds.store.tables import AuditEventRow


def test_an_action_outside_the_vocabulary_is_refused() -> None:
    with pytest.raises(ValidationError, match="action"):
        AuditEvent(actor="a", role="r", action="imaging.looked_at", resource="x", outcome="success")
    with pytest.raises(ValidationError, match="outcome"):
        AuditEvent(actor="a", role="r", action="result.read", resource="x", outcome="fine")


def test_record_event_writes_the_actor_action_and_detail(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/a.db")
    database.migrate()
    with database.session() as session:
        record_event(session, AuditAction.IMAGING_PREREAD, Actor("dr", "radiologist"), "ImagingStudy/1.2",
                     outcome=AuditOutcome.REFUSED, detail={"reason": "wrong_view"})
    with database.session() as session:
        (row,) = session.scalars(select(AuditEventRow))
        assert (row.actor, row.role, row.action, row.outcome) == ("dr", "radiologist", "imaging.preread", "refused")
        assert row.detail == '{"reason":"wrong_view"}' and verify_chain(session).ok
