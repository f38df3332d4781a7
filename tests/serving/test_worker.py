"""Job workers survive what handlers throw at them: native escapes, workers that die on a job, jobs that never end."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import select

from cds.results.jobs import ClaimedJob
from cds.serving.worker import JobWorker
from cds.store import jobs
from cds.store.db import Database
from cds.store.tables import AuditEventRow, JobRow


class Panic(BaseException):  # what a Rust extension raises: not an Exception
    """A native panic."""


def _database(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/w.db")
    database.migrate()
    return database


def _enqueue(database: Database, kind: str, **options: int) -> str:
    with database.session() as session:
        return jobs.enqueue(session, kind=kind, payload={}, actor="t", role="admin", **options)


def _row(database: Database, job_id: str) -> JobRow:
    with database.session() as session:
        return jobs.get_job(session, job_id)


def test_a_panic_in_a_handler_fails_the_job_not_the_worker(tmp_path: Path) -> None:
    database = _database(tmp_path)
    poisoned, fine = _enqueue(database, "panics", max_attempts=2), _enqueue(database, "fine")

    def panics(_job: ClaimedJob) -> dict[str, bool]:
        raise Panic("index out of bounds")

    worker = JobWorker(database, {"panics": panics, "fine": lambda _job: {"ok": True}}, poll_s=0.01)
    while worker.run_once():
        pass
    failed, done = _row(database, poisoned), _row(database, fine)
    assert (failed.state, failed.attempts, failed.error_code, failed.refused) == ("failed", 2, "Panic", False)
    assert done.state == "done"


def test_a_job_whose_workers_died_on_every_attempt_is_not_taken_again(tmp_path: Path) -> None:
    database = _database(tmp_path)
    poisoned, fine = _enqueue(database, "kills", max_attempts=2), _enqueue(database, "fine")
    for _ in range(2):  # two workers claim it and die (their leases lapse at once)
        with database.session() as session:
            assert jobs.claim(session, "dead-worker", lease_s=0.0).id == poisoned
    with database.session() as session:
        taken = jobs.claim(session, "live-worker", lease_s=60)
        assert taken is not None and taken.id == fine  # the next job, not the poison a third time
    row = _row(database, poisoned)
    assert (row.state, row.attempts, row.error_code, row.refused) == ("failed", 2, "attempts_exhausted", False)
    with database.session() as session:
        failures = session.scalars(select(AuditEventRow).where(AuditEventRow.action == "job.failed")).all()
    assert [e.resource for e in failures] == [f"Job/{poisoned}"] and '"attempts_exhausted"' in failures[0].detail


def test_a_job_past_its_time_limit_fails_and_a_fresh_thread_takes_the_queue(tmp_path: Path) -> None:
    database = _database(tmp_path)
    stuck, after = _enqueue(database, "stuck"), _enqueue(database, "fine")
    release = threading.Event()

    def never_ends(_job: ClaimedJob) -> dict[str, bool]:
        release.wait(30)  # an endless loop in native code, until the test lets it go
        return {"late": True}

    worker = JobWorker(database, {"stuck": never_ends, "fine": lambda _job: {"ok": True}}, poll_s=0.05,
                       job_timeout_s=0.5)  # fmt: skip
    worker.start()
    deadline = time.monotonic() + 20
    while _row(database, after).state != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        row = _row(database, stuck)
        assert _row(database, after).state == "done" and not release.is_set()  # while the stuck one still runs
        assert (row.state, row.error_code, row.refused) == ("failed", "job_timeout", False)
        assert worker.alive and worker.abandoned == 1
    finally:
        release.set()
        worker.stop()
    assert _row(database, stuck).result == ""  # its late outcome is discarded: the job had failed
