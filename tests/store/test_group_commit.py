"""Group commit: many threads' writes committed together, none answered before it is durable, on both databases.

The crash test kills a process in the middle of a group commit (after the group's rows and audit events were
flushed, before the commit) and checks that every write its caller was answered for survived, with its audit event,
and that the audit chain still verifies.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cds.store.audit import Actor, AuditAction, verify_chain
from cds.store.db import Database
from cds.store.results import release_result
from cds.store.tables import AuditEventRow, ResultRow


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path}/group.db"


def _release(index: int):  # noqa: ANN202
    def work(session: Session) -> str:
        return release_result(session, kind="risk", subject=f"Patient/{index}", method="pce@2013",
                              input_sha256=f"{index:064d}", payload={"i": index}, actor=Actor("u", "clinician"))  # fmt: skip

    return work


def _released_without_audit(database: Database) -> tuple[int, int, bool]:
    """Results, result.create events, and whether the chain verifies."""
    with database.session() as session:
        results = session.scalar(select(func.count()).select_from(ResultRow))
        events = session.scalar(select(func.count()).select_from(AuditEventRow)
                                .where(AuditEventRow.action == AuditAction.RESULT_CREATE.value))  # fmt: skip
        return int(results or 0), int(events or 0), verify_chain(session).ok


def test_concurrent_writes_are_grouped_and_every_one_is_durable_and_chained(database_url: str) -> None:
    database = Database(database_url)
    database.migrate()
    ids: dict[int, str] = {}
    start = threading.Barrier(32)

    def caller(index: int) -> None:
        start.wait()
        for j in range(10):
            ids[index * 100 + j] = database.write(_release(index * 100 + j))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 320 and len(set(ids.values())) == 320
    assert database.group_commit.writes == 320
    assert database.group_commit.groups < 320  # writes waiting together were committed together
    with database.session() as session:
        stored = set(session.scalars(select(ResultRow.id)))
        audited = {event.resource.removeprefix("Result/") for event in session.scalars(select(AuditEventRow))}
        assert stored == set(ids.values()) and stored <= audited
        report = verify_chain(session)
    assert report.ok and report.checked == 320
    database.close()


def test_a_failing_write_fails_alone_and_leaves_no_audit_event(database_url: str) -> None:
    database = Database(database_url)
    database.migrate()
    gate, writing = threading.Event(), threading.Event()
    outcomes: dict[int, object] = {}

    def blocker(session: Session) -> None:
        writing.set()
        gate.wait(10)  # holds the writer, so the next writes queue up and form one group

    def failing(session: Session) -> str:
        _release(99)(session)
        raise ValueError("this write fails after adding its row and its audit event")

    def call(index: int, work) -> None:  # noqa: ANN001
        try:
            outcomes[index] = database.write(work)
        except ValueError as exc:
            outcomes[index] = exc

    first = threading.Thread(target=call, args=(0, blocker))
    first.start()
    assert writing.wait(10)
    threads = [threading.Thread(target=call, args=(i, failing if i == 3 else _release(i))) for i in range(1, 6)]
    for thread in threads:
        thread.start()
    while database.group_commit.waiting < 5:
        time.sleep(0.01)
    gate.set()
    for thread in [first, *threads]:
        thread.join()
    assert database.group_commit.groups == 2  # the blocker's, then the five together
    assert isinstance(outcomes[3], ValueError)
    assert all(isinstance(outcomes[i], str) for i in (1, 2, 4, 5))
    assert _released_without_audit(database) == (4, 4, True)
    with pytest.raises(ValueError, match="this write fails"):
        database.write(failing)  # alone in its group: the whole transaction rolls back
    assert _released_without_audit(database) == (4, 4, True)
    database.close()


CRASHING_CHILD = textwrap.dedent("""
    import os, sys, threading
    from sqlalchemy import event
    from cds.store.audit import Actor
    from cds.store.db import Database
    from cds.store.results import release_result

    database = Database(sys.argv[1])
    database.migrate()
    commits = 0

    @event.listens_for(database.engine, "commit")
    def crash_in_the_third_group(connection):
        global commits
        commits += 1
        if commits == 3:  # the group's rows and events are flushed; the commit never happens
            os._exit(17)

    def caller(index):
        for j in range(50):
            n = index * 100 + j
            result_id = database.write(lambda s: release_result(
                s, kind="risk", subject=f"Patient/{n}", method="pce@2013", input_sha256="0" * 64,
                payload={"n": n}, actor=Actor("u", "clinician")))
            os.write(1, (result_id + "\\n").encode())  # released: the caller was answered (one write per line)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
""")


def test_a_crash_during_a_group_commit_loses_no_released_result(database_url: str, tmp_path: Path) -> None:
    Database(database_url).migrate()  # the schema first, so that the child's migration commits nothing
    child = subprocess.run([sys.executable, "-c", CRASHING_CHILD, database_url], capture_output=True, text=True,
                           timeout=120, cwd=Path(__file__).parents[2])  # fmt: skip
    assert child.returncode == 17, child.stderr[-2000:]
    released = set(child.stdout.split())
    assert released  # the first groups committed and were answered before the crash
    database = Database(database_url)
    with database.session() as session:
        stored = set(session.scalars(select(ResultRow.id)))
    assert released <= stored  # nothing that was answered is lost
    results, events, chain_ok = _released_without_audit(database)
    assert results == events and chain_ok  # and nothing is stored without its audit event
    assert results < 400  # the crashed group is not there
    database.close()
