"""Released results: written in the same transaction as their audit event, so none exists without it."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cds.errors import ResultNotFoundError
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.tables import ResultRow


def release_result(
    session: Session, *, kind: str, subject: str, method: str, input_sha256: str, payload: dict[str, Any],
    actor: str, role: str,
) -> str:  # fmt: skip
    """Store a result and its ``result.create`` audit event; return the result id."""
    result_id = str(uuid.uuid4())
    session.add(
        ResultRow(
            id=result_id, kind=kind, subject=subject, method=method, input_sha256=input_sha256,
            payload=json.dumps(payload, separators=(",", ":")), created_by=actor, created_at=dt.datetime.now(dt.UTC),
        )  # fmt: skip
    )
    record_event(session, AuditAction.RESULT_CREATE, Actor(actor, role), f"Result/{result_id}", subject=subject,
                 model=method, input_sha256=input_sha256, detail={"kind": kind})
    return result_id


def read_result(session: Session, result_id: str) -> ResultRow:
    """A stored result.

    Raises:
        ResultNotFoundError: No result with that id (404, ``result_not_found``).
    """
    row = session.get(ResultRow, result_id)
    if row is None:
        raise ResultNotFoundError(f"no result {result_id!r}")
    return row


@dataclass(frozen=True)
class StoredScore:
    """One released score: whose, from which method (``name@version``), when, and its band.

    ``observed_at`` is when the newest input was measured (scores from time series), else the release time.
    """

    subject: str
    method: str
    at: dt.datetime
    score: float
    band: str | None
    category: str | None
    result_id: str
    observed_at: dt.datetime


def stored_scores(session: Session, *, methods: Sequence[str], since: dt.datetime,
                  subjects: Sequence[str] | None = None) -> list[StoredScore]:  # fmt: skip
    """The scores released by ``methods`` since ``since`` (of ``subjects``, or everyone's), oldest first."""
    query = select(ResultRow).where(ResultRow.method.in_(list(methods)), ResultRow.created_at >= since)
    if subjects is not None:
        query = query.where(ResultRow.subject.in_(list(subjects)))
    found = []
    for row in session.scalars(query.order_by(ResultRow.created_at, ResultRow.id)):
        payload = json.loads(row.payload)
        score = payload.get("score")
        if isinstance(score, int | float):
            observed = payload.get("observed_at")
            found.append(StoredScore(row.subject, row.method, row.created_at, float(score), payload.get("band"),
                                     payload.get("category"), row.id,
                                     dt.datetime.fromisoformat(observed) if observed else row.created_at))  # fmt: skip
    return found
