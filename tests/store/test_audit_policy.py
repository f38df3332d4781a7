"""A view is claimed once per key and window, by one of several concurrent processes, and not by a transaction that
rolls back; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from cds.store.audit import Actor, AuditAction
from cds.store.audit_policy import first_view, record_first, seen_key
from cds.store.db import Database
from cds.store.tables import AuditEventRow

READER = Actor("dr-a", "radiologist", session="jti-1")



def _events(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEventRow)) or 0)


def test_a_view_is_audited_once_per_session_and_window(database: Database) -> None:
    for _ in range(3):
        with database.session() as session:
            record_first(session, AuditAction.IMAGING_VIEWER_RENDER, READER, "ImagingStudy/1", seen="img")
    assert _events(database) == 1
    other_session = Actor("dr-a", "radiologist", session="jti-2")
    with database.session() as session:
        assert record_first(session, AuditAction.IMAGING_VIEWER_RENDER, other_session, "ImagingStudy/1", seen="img")
        assert record_first(session, AuditAction.IMAGING_VIEWER_RENDER, READER, "ImagingStudy/1", seen="other")
    key = seen_key(READER, AuditAction.IMAGING_VIEWER_RENDER, "ImagingStudy/1", "img")
    assert "dr-a" not in key and "jti-1" not in key  # a keyed hash, no identifier in clear
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=13)
    with database.session() as session:
        assert first_view(session, key, now=later)  # the window passed: a new view


def test_a_rolled_back_view_leaves_no_claim(database: Database) -> None:
    with pytest.raises(RuntimeError), database.session() as session:
        record_first(session, AuditAction.IMAGING_WORKLIST_READ, READER, "Worklist", seen="page")
        raise RuntimeError("the request failed")
    with database.session() as session:
        assert record_first(session, AuditAction.IMAGING_WORKLIST_READ, READER, "Worklist", seen="page")
    assert _events(database) == 1


def test_concurrent_processes_claim_a_view_once(database: Database) -> None:
    won: list[bool] = []
    start = threading.Barrier(6)

    def claim() -> None:
        start.wait()
        with database.session() as session:
            won.append(record_first(session, AuditAction.IMAGING_VIEWER_OPEN, READER, "ImagingStudy/9", seen="x"))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(won) == [False] * 5 + [True] and _events(database) == 1
