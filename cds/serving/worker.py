"""Job workers: claim durable jobs from the database and run them, in-process or as ``cds worker`` processes.

A handler's :class:`~cds.errors.InvalidInputError` fails the job for good (the input will not get better); any
other error puts it back in the queue until its attempts are used up. A worker that dies leaves its job leased;
when the lease expires another worker (or the restarted server) takes it again. :func:`job_handlers` maps each
:class:`~cds.results.jobs.JobKind` to the use case that runs it.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from cds.errors import CdsError, InvalidInputError
from cds.results.jobs import ClaimedJob, JobKind
from cds.services import cohort, pathology, preread
from cds.services.engine import Engine
from cds.store import jobs
from cds.store.db import Database

log = logging.getLogger(__name__)
JobHandler = Callable[[ClaimedJob], BaseModel | Mapping[str, Any]]


def job_handlers(engine: Engine) -> dict[str, JobHandler]:
    """The use case that runs each job kind, on ``engine``."""
    return {
        JobKind.RISK_FILE: functools.partial(cohort.run_cohort, engine),
        JobKind.PREREAD: functools.partial(preread.run_preread, engine),
        JobKind.PATHOLOGY: functools.partial(pathology.run_slide, engine),
    }


class _Heartbeat:
    """Renews a worker's lease every third of ``lease_s`` while a handler runs, so long jobs are not taken over."""

    def __init__(self, worker: JobWorker, job_id: str) -> None:
        self.worker, self.job_id = worker, job_id
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"cds-job-lease-{job_id[:8]}", daemon=True)

    def _beat(self) -> None:
        while not self._done.wait(self.worker.lease_s / 3):
            try:
                with self.worker.database.session() as session:
                    held = jobs.renew(session, self.job_id, self.worker.worker_id, self.worker.lease_s)
            except Exception as exc:  # noqa: BLE001 - database hiccup: try again at the next beat
                log.warning("job %s lease renewal failed: %s", self.job_id, type(exc).__name__)
                continue
            if not held:
                log.warning("job %s was taken over by another worker", self.job_id)
                return

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()


class JobWorker:
    """Polls the queue and runs jobs one at a time.

    Args:
        database: Where the jobs live.
        handlers: Job kind -> the function that runs a claimed job and returns its outcome.
        lease_s: How long a claim lasts before another worker may take the job over.
        poll_s: Pause between polls when the queue is empty.
    """

    def __init__(
        self, database: Database, handlers: Mapping[str, JobHandler], *, lease_s: float = 300.0, poll_s: float = 0.5
    ) -> None:
        self.database = database
        self.handlers = dict(handlers)
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        """Claim and run one job; ``False`` when there was nothing to do."""
        with self.database.session() as session:
            row = jobs.claim(session, self.worker_id, self.lease_s)
            job = ClaimedJob(id=row.id, kind=row.kind, payload=row.payload, actor=row.created_by, role=row.role,
                             subject=row.subject, attempts=row.attempts) if row is not None else None  # fmt: skip
        if job is None:
            return False
        handler = self.handlers.get(job.kind)
        heartbeat = _Heartbeat(self, job.id)
        try:
            if handler is None:
                raise InvalidInputError(f"no handler for job kind {job.kind!r}", code="unknown_job_kind")
            with heartbeat:
                outcome = handler(job)
        except InvalidInputError as exc:
            self._fail(job.id, exc.code, exc.message, retry=False)
            return True
        except Exception as exc:  # noqa: BLE001 - any other failure may be transient: retry within the limit
            log.warning("job %s attempt failed: %s", job.id, type(exc).__name__)
            log.debug("%s", traceback.format_exc())
            code, message = (exc.code, exc.message) if isinstance(exc, CdsError) else (type(exc).__name__, str(exc))
            self._fail(job.id, code, message, retry=True)
            return True
        with self.database.session() as session:
            if not jobs.complete(session, job.id, self.worker_id, outcome):
                log.warning("job %s was taken over by another worker; this result is discarded", job.id)
        return True

    def _fail(self, job_id: str, code: str, message: str, *, retry: bool) -> None:
        with self.database.session() as session:
            jobs.fail(session, job_id, self.worker_id, code=code, message=message, retry=retry)

    def run_forever(self) -> None:
        """Work until :meth:`stop`."""
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception as exc:  # noqa: BLE001 - e.g. database down: keep the worker alive, retry later
                log.error("job worker: %s", type(exc).__name__)
                busy = False
            if not busy:
                self._stop.wait(self.poll_s)

    def start(self) -> None:
        """Run in a daemon thread."""
        self._thread = threading.Thread(target=self.run_forever, name="cds-job-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the thread to finish its current job and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


def engine_worker(engine: Engine) -> JobWorker:
    """A worker running every job kind on ``engine``."""
    return JobWorker(engine.database, job_handlers(engine), lease_s=engine.settings.job_lease_s)
