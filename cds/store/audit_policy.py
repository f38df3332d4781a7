"""Which audit events are worth writing: a view once per session and window, and every refused upload.

**Views, once.** A worklist that polls every 3 s, or a viewer that re-draws its image for each window/level, slice or
heatmap change, would otherwise write an event per request; what the trail must say is *who saw what, when*.
:func:`record_first` writes the event only the first time a key is seen within a window, the key being a keyed hash
of (actor, session, action, resource, what was seen): the session is the token's ``jti`` (a new sign-in is a new
session), and "what was seen" is whatever makes two views differ (the image's UID; a digest of a worklist page, so
a page that changed is audited again). Exports, verdicts and signatures never go through here: they are audited
every time.

The keys live in the database (:class:`~cds.store.tables.AuditSeenRow`), written in the request's own transaction:
every API process and worker sees the same keys (an in-process cache would audit once per process, and a poll that
lands on another worker would be audited again), no extra service is needed (no Redis), and a request whose
transaction rolls back leaves neither the event nor the key. Two processes claiming one key at once meet on its
primary key: one inserts, the other's insert fails inside a savepoint and it writes nothing. Expired keys are
deleted when a new key is claimed.

**Refused uploads.** :func:`record_refused_upload` writes an ``upload.refused`` event with the machine-readable
reason (``instance_too_large``, ``payload_too_large``, ``unsupported_media_type``, ``truncated_file``, ...) and no
file name or UID in clear (details under :data:`~cds.store.audit.IDENTIFYING_DETAILS` are pseudonymised).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cds.store.audit import Actor, AuditAction, AuditOutcome, pseudonym, record_event
from cds.store.tables import AuditSeenRow

DEFAULT_WINDOW = dt.timedelta(hours=12)  # longer than a working session's token: once per session in practice


def seen_key(actor: Actor, action: AuditAction, resource: str, seen: str = "") -> str:
    """The keyed hash naming one view (no identifier is stored in clear)."""
    return pseudonym("\x1f".join((actor.subject, actor.site, actor.session, action.value, resource, seen)))


def first_view(session: Session, key: str, *, window: dt.timedelta = DEFAULT_WINDOW,
               now: dt.datetime | None = None) -> bool:  # fmt: skip
    """Claim ``key`` for ``window`` in the caller's transaction; False when it is already claimed and not expired."""
    now = now or dt.datetime.now(dt.UTC)
    row = session.get(AuditSeenRow, key, populate_existing=True)
    if row is not None:
        if row.expires_at > now:
            return False
        row.expires_at = now + window  # seen before, but long enough ago to be a new view
        return True
    session.execute(delete(AuditSeenRow).where(AuditSeenRow.expires_at <= now))
    try:
        with session.begin_nested():
            session.add(AuditSeenRow(key=key, expires_at=now + window))
    except IntegrityError:  # another process claimed it at the same moment: its event stands for both
        return False
    return True


def record_first(
    session: Session, action: AuditAction, actor: Actor, resource: str, *, seen: str = "",
    window: dt.timedelta = DEFAULT_WINDOW, **event: Any,
) -> bool:  # fmt: skip
    """:func:`~cds.store.audit.record_event`, unless ``actor`` saw the same thing in this session and window.

    Args:
        session: The caller's open session.
        action: What was done (a read or view).
        actor: Who did it, with their session (:attr:`Actor.session`).
        resource: What it was done to.
        seen: What makes two views of ``resource`` differ (an image's UID, a digest of what was shown).
        window: How long a view suppresses the same view.
        **event: The event's further fields (``subject``, ``model``, ``input_sha256``, ``detail``).

    Returns:
        Whether an event was written.
    """
    if not first_view(session, seen_key(actor, action, resource, seen), window=window):
        return False
    record_event(session, action, actor, resource, **event)
    return True


def record_refused_upload(session: Session, actor: Actor, upload: str, reason: str, resource: str,
                          **detail: Any) -> None:  # fmt: skip
    """Audit a refused upload (``upload``: ``dicom``, ``slide``, ``ecg``, ``cohort``) with its reason code."""
    record_event(session, AuditAction.UPLOAD_REFUSED, actor, resource, outcome=AuditOutcome.REFUSED,
                 detail={"upload": upload, "reason": reason, **detail})
