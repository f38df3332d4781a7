"""The durable outbox: messages written with what they report, delivered with retries until taken.

A message is written in the same transaction as what it reports, then delivered by :mod:`cds.services.delivery`
with retries and backoff until the receiver takes it.

Nothing is lost while a receiver is down: the message stays, its next attempt pushed back (1 s, 2 s, 4 s, ...,
at most :data:`MAX_BACKOFF`). Each message carries its id, so a receiver that sees one twice (a delivery whose
acknowledgement was lost) can tell. Claiming a due message moves its next attempt past the request timeout first,
so two delivery loops never send it at the same time.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cds.store.tables import OutboxRow

MAX_BACKOFF = dt.timedelta(minutes=5)
CLAIM = dt.timedelta(seconds=30)  # longer than a delivery's timeout
NEVER = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)  # the next attempt of a message refused for good


def enqueue(session: Session, *, destinations: Sequence[str], topic: str, payload: dict[str, Any],
            now: dt.datetime, about: str = "") -> list[str]:  # fmt: skip
    """One message per destination, due now; returns their ids (a FHIR resource payload carries it as its ``id``).

    ``about``: what the message reports (``ImagingStudy/<uid>``), for :func:`delivery_of`.
    """
    ids = []
    for destination in destinations:
        message_id = str(uuid.uuid4())
        body = payload | {"id": message_id} if "resourceType" in payload else payload
        session.add(OutboxRow(id=message_id, destination=destination, topic=topic,
                              payload=json.dumps(body, separators=(",", ":")),
                              created_at=now, attempts=0, next_attempt_at=now, delivered_at=None,
                              last_error="", about=about[:200]))  # fmt: skip
        ids.append(message_id)
    return ids


def claim_due(session: Session, now: dt.datetime, limit: int = 50) -> list[OutboxRow]:
    """Undelivered messages due by ``now``, oldest first, claimed (their next attempt moved past the timeout)."""
    rows = list(session.scalars(
        select(OutboxRow).where(OutboxRow.delivered_at.is_(None), OutboxRow.next_attempt_at <= now)
        .order_by(OutboxRow.created_at, OutboxRow.id).limit(limit).with_for_update(skip_locked=True)
    ))  # fmt: skip
    for row in rows:
        row.next_attempt_at = now + CLAIM
    return rows


def delivered(session: Session, message_id: str, now: dt.datetime) -> None:
    """Mark a message delivered."""
    row = session.get(OutboxRow, message_id)
    if row is not None:
        row.delivered_at, row.attempts, row.last_error = now, row.attempts + 1, ""


def failed(session: Session, message_id: str, now: dt.datetime, error: str) -> None:
    """Record a failed attempt and when to try again (exponential backoff, capped)."""
    row = session.get(OutboxRow, message_id)
    if row is not None:
        row.attempts += 1
        row.last_error = error[:300]
        row.next_attempt_at = now + min(dt.timedelta(seconds=2 ** min(row.attempts - 1, 16)), MAX_BACKOFF)


def refused(session: Session, message_id: str, error: str) -> None:
    """Record an attempt that must never be retried: the message stays, with its reason, never due again.

    For a destination outside the site's allowed ones (:mod:`cds.residency`); :data:`NEVER` is its next attempt.
    """
    row = session.get(OutboxRow, message_id)
    if row is not None:
        row.attempts += 1
        row.last_error = error[:300]
        row.next_attempt_at = NEVER


def pending(session: Session) -> list[OutboxRow]:
    """Every undelivered message, oldest first."""
    return list(session.scalars(select(OutboxRow).where(OutboxRow.delivered_at.is_(None))
                                .order_by(OutboxRow.created_at)))  # fmt: skip


@dataclass(frozen=True)
class Delivery:
    """The messages about one thing: how many delivered, how many still waiting, and the latest error."""

    delivered: int
    waiting: int
    last_error: str


def delivery_of(session: Session, abouts: Sequence[str]) -> dict[str, Delivery]:
    """Per ``about``, its messages' delivery (only those with messages appear)."""
    found: dict[str, list[OutboxRow]] = {}
    for start in range(0, len(abouts), 500):
        rows = session.scalars(select(OutboxRow).where(OutboxRow.about.in_(list(abouts[start : start + 500])))
                               .order_by(OutboxRow.created_at))  # fmt: skip
        for row in rows:
            found.setdefault(row.about, []).append(row)
    return {about: Delivery(sum(r.delivered_at is not None for r in rows),
                            sum(r.delivered_at is None for r in rows),
                            next((r.last_error for r in reversed(rows) if r.delivered_at is None and r.last_error), ""))
            for about, rows in found.items()}  # fmt: skip
