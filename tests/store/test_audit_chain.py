"""The audit chain detects edited, deleted, inserted and reordered events, and a changed acting site, on SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cds.cli.main import app
from cds.store.audit import _HASHED, AuditEvent, append_event, event_hash, verify_chain
from cds.store.db import Database
from cds.store.tables import AuditEventRow


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/a.db"
    db = Database(url)
    db.migrate()
    with db.session() as session:
        for i in range(5):
            append_event(session, AuditEvent(actor=f"user{i}", role="clinician", action="result.read",
                                             resource=f"Result/{i}", outcome="success", subject="Patient/1"))  # fmt: skip
    return db


def report(db: Database):  # noqa: ANN201
    with db.session() as session:
        return verify_chain(session)


def test_intact_chain_verifies(database: Database) -> None:
    result = report(database)
    assert result.ok and result.checked == 5


@pytest.mark.parametrize(
    ("statement", "broken_at", "reason"),
    [("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3", 3, "altered"),
     ("DELETE FROM audit_events WHERE seq = 2", 2, "missing"),
     ("DELETE FROM audit_events WHERE seq = 5", 5, "head says 5"),
     ("UPDATE audit_events SET seq = seq + 100 WHERE seq IN (2, 3)", 2, "missing")],
)  # fmt: skip
def test_tampering_is_detected_and_located(database: Database, statement: str, broken_at: int, reason: str) -> None:
    with database.session() as session:
        session.execute(text(statement))
    result = report(database)
    assert not result.ok and result.broken_at == broken_at and reason in result.reason


def test_swapped_events_are_detected(database: Database) -> None:
    with database.session() as session:
        rows = session.execute(text("SELECT seq, actor, hash, prev_hash FROM audit_events WHERE seq IN (2, 3)")).all()
        (s2, a2, h2, p2), (s3, a3, h3, p3) = sorted(rows)
        session.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = 2"))
        session.execute(text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
        session.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = -1"))
    result = report(database)
    assert not result.ok and result.broken_at == 2


def test_cli_verify_reports_and_exits_nonzero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path))
    db = Database(f"sqlite:///{tmp_path}/cds.db")
    db.migrate()
    with db.session() as session:
        append_event(session, AuditEvent(actor="a", role="admin", action="result.read", resource="r", outcome="success"))
        append_event(session, AuditEvent(actor="b", role="admin", action="job.create", resource="r", outcome="success"))
    runner = CliRunner()
    assert "audit chain intact: 2 events" in runner.invoke(app, ["audit", "verify"]).output
    with db.session() as session:
        session.execute(text("UPDATE audit_events SET outcome = 'denied' WHERE seq = 1"))
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1 and "BROKEN at event 1" in broken.output


def _event(actor: str) -> AuditEvent:
    return AuditEvent(actor=actor, role="clinician", action="result.read", resource="Result/x", outcome="success")


def test_events_of_one_transaction_and_of_rolled_back_ones_keep_the_chain_whole(database: Database) -> None:
    with database.session() as session:  # chained together when the transaction commits
        for i in range(3):
            append_event(session, _event(f"batch{i}"))
    with pytest.raises(RuntimeError), database.session() as session:
        append_event(session, _event("rolled-back"))
        raise RuntimeError
    with Session(database.engine) as session:  # one session, four transactions
        append_event(session, _event("first"))
        session.commit()
        append_event(session, _event("undone"))
        session.rollback()
        append_event(session, _event("closed"))
        session.close()
        append_event(session, _event("second"))
        session.commit()
    result = report(database)
    assert result.ok and result.checked == 10
    with database.session() as session:
        rows = session.execute(text("SELECT seq, actor FROM audit_events ORDER BY seq")).all()
    assert rows[5:] == [(6, "batch0"), (7, "batch1"), (8, "batch2"), (9, "first"), (10, "second")]


def test_the_acting_site_is_hashed_and_events_from_before_sites_verify_as_they_were(database: Database) -> None:
    with database.session() as session:
        for i in (6, 7):
            append_event(session, AuditEvent(actor=f"user{i}", role="clinician", action="result.read",
                                             resource=f"Result/{i}", outcome="success", site="clinic-b"))  # fmt: skip
    assert report(database).ok
    with database.session() as session:
        rows = {row.seq: row for row in session.scalars(select(AuditEventRow))}
    old = {k: getattr(rows[1], k) for k in _HASHED}  # hashed as events were before sites existed: no site field
    legacy = json.dumps(old, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert rows[1].site == "" and rows[1].hash == hashlib.sha256(legacy.encode()).hexdigest()
    assert rows[6].site == "clinic-b" and rows[6].hash != event_hash(old | {"seq": 6})
    for statement, broken_at in (("UPDATE audit_events SET site = 'clinic-a' WHERE seq = 6", 6),
                                 ("UPDATE audit_events SET site = '' WHERE seq = 6", 6),
                                 ("UPDATE audit_events SET site = 'clinic-b' WHERE seq = 2", 2)):
        with database.session() as session:
            original = session.execute(text("SELECT site FROM audit_events WHERE seq = :s"),
                                       {"s": broken_at}).scalar_one()  # fmt: skip
            session.execute(text(statement))
        result = report(database)
        assert not result.ok and result.broken_at == broken_at and "altered" in result.reason, statement
        with database.session() as session:
            session.execute(text("UPDATE audit_events SET site = :v WHERE seq = :s"), {"v": original, "s": broken_at})
        assert report(database).ok
