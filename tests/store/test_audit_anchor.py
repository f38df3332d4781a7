"""Signed checkpoints outside the database catch what the hash chain alone cannot: truncation, wiping and
consistent rewrites of the chain, and an edited checkpoint file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text
from typer.testing import CliRunner

from cds.cli.main import app
from cds.store.audit import GENESIS, AuditEvent, append_event, event_hash, verify_chain
from cds.store.audit_anchor import Checkpointer, CheckpointStore, verify_anchor
from cds.store.db import Database
from cds.store.tables import AuditEventRow, AuditHeadRow

HASHED = ("seq", "occurred_at", "actor", "role", "action", "resource", "subject", "model", "input_sha256",
          "outcome", "detail", "prev_hash")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/a.db"
    db = Database(url)
    db.migrate()
    _append(db, 5)
    return db


def _append(db: Database, count: int) -> None:
    with db.session() as session:
        for i in range(count):
            append_event(session, AuditEvent(actor=f"user{i}", role="clinician", action="result.read",
                                             resource=f"Result/{i}", outcome="success"))  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> CheckpointStore:
    return CheckpointStore(tmp_path / "anchor", Ed25519PrivateKey.generate())


def _check(db: Database, store: CheckpointStore) -> tuple[bool, bool, str]:
    with db.session() as session:
        chain, anchor = verify_chain(session), verify_anchor(session, store.read(), store.public_key)
    return chain.ok, anchor.ok, anchor.reason


def _set_head(session: object, seq: int, hash_: str) -> None:
    session.execute(text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"), {"s": seq, "h": hash_})  # type: ignore[attr-defined]


def test_an_untouched_chain_matches_its_checkpoint_and_later_events_do_not_matter(database: Database,
                                                                                 store: CheckpointStore) -> None:
    with database.session() as session:
        assert store.write(session).seq == 5  # type: ignore[union-attr]
        assert store.write(session) is None  # the head has not moved
    _append(database, 2)
    assert _check(database, store) == (True, True, "")


def test_truncation_and_wiping_are_caught(database: Database, store: CheckpointStore) -> None:
    with database.session() as session:
        store.write(session)
        three = session.scalar(select(AuditEventRow.hash).where(AuditEventRow.seq == 3))
        session.execute(text("DELETE FROM audit_events WHERE seq > 3"))
        _set_head(session, 3, three)  # a consistent, shorter chain
    chain_ok, anchor_ok, reason = _check(database, store)
    assert chain_ok and not anchor_ok and "truncated or wiped" in reason
    with database.session() as session:
        session.execute(text("DELETE FROM audit_events"))
        _set_head(session, 0, GENESIS)
    assert _check(database, store)[:2] == (True, False)


def test_a_consistent_rewrite_is_caught(database: Database, store: CheckpointStore) -> None:
    with database.session() as session:
        store.write(session)
        previous = session.scalar(select(AuditEventRow.hash).where(AuditEventRow.seq == 1))
        for row in session.scalars(select(AuditEventRow).where(AuditEventRow.seq >= 2).order_by(AuditEventRow.seq)):
            if row.seq == 2:
                row.actor = "mallory"  # the edit ...
            row.prev_hash = previous
            row.hash = event_hash({k: getattr(row, k) for k in HASHED})  # ... and fresh hashes from there on
            previous = row.hash
        session.flush()
        head = session.get(AuditHeadRow, 1)
        head.hash = previous  # type: ignore[union-attr]
    chain_ok, anchor_ok, reason = _check(database, store)
    assert chain_ok and not anchor_ok and "rewritten" in reason


def test_an_edited_checkpoint_fails_its_signature(database: Database, store: CheckpointStore) -> None:
    with database.session() as session:
        store.write(session)
    line = json.loads(store.path.read_text())
    store.path.write_text(json.dumps(line | {"hash": "0" * 64}) + "\n")
    assert _check(database, store)[1:] == (False, "checkpoint(s) at event 5 fail their signature: the checkpoint "
                                                  "file was edited")


def test_the_checkpointer_writes_while_running_and_when_stopped(database: Database, store: CheckpointStore) -> None:
    checkpointer = Checkpointer(database, store, interval_s=0.05)
    checkpointer.start()
    deadline = time.monotonic() + 5
    while not store.read() and time.monotonic() < deadline:
        time.sleep(0.02)
    _append(database, 1)
    checkpointer.stop()
    assert [c.seq for c in store.read()] == [5, 6]


def test_the_cli_checkpoints_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path))
    db = Database(f"sqlite:///{tmp_path}/cds.db")
    db.migrate()
    _append(db, 3)
    runner = CliRunner()
    assert "checkpoint at event 3" in runner.invoke(app, ["audit", "checkpoint"]).output
    assert "anchored at event 3" in runner.invoke(app, ["audit", "verify"]).output
    with db.session() as session:
        session.execute(text("DELETE FROM audit_events"))
        _set_head(session, 0, GENESIS)
    wiped = runner.invoke(app, ["audit", "verify"])
    assert wiped.exit_code == 1 and "DOES NOT MATCH ITS CHECKPOINT" in wiped.output
