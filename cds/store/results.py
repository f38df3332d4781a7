"""Released results: written in the same transaction as their audit event, so none exists without it."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from cds.errors import ResultNotFoundError
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.tables import ResultRow


def release_result(
    session: Session, *, kind: str, subject: str, method: str, input_sha256: str, payload: dict[str, Any],
    actor: Actor,
) -> str:  # fmt: skip
    """Store a result for ``actor``'s site and its ``result.create`` audit event; return the result id."""
    result_id = str(uuid.uuid4())
    session.add(
        ResultRow(
            id=result_id, kind=kind, subject=subject, method=method, input_sha256=input_sha256,
            payload=json.dumps(payload, separators=(",", ":")), created_by=actor.subject,
            created_at=dt.datetime.now(dt.UTC), site=actor.site,
        )  # fmt: skip
    )
    record_event(session, AuditAction.RESULT_CREATE, actor, f"Result/{result_id}", subject=subject,
                 model=method, input_sha256=input_sha256, detail={"kind": kind})
    return result_id


def read_result(session: Session, result_id: str, *, sites: Sequence[str]) -> ResultRow:
    """A stored result of one of ``sites``.

    Raises:
        ResultNotFoundError: No result with that id (404, ``result_not_found``), or another site's.
    """
    row = session.get(ResultRow, result_id)
    if row is None or row.site not in sites:
        raise ResultNotFoundError(f"no result {result_id!r}")
    return row
