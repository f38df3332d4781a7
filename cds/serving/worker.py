"""Job workers: claim durable jobs from the database and run them, in-process or as ``cds worker`` processes.

A handler's :class:`~cds.errors.InvalidInputError` fails the job for good (the input will not get better); any
other error, whatever a native extension raises included (a panic is a ``BaseException``), puts it back in the
queue until its attempts are used up. A worker that dies leaves its job leased; when the lease expires another
worker (or the restarted server) takes it again, unless the job has used up its attempts (then it fails,
``attempts_exhausted``). A job that runs past ``job_timeout_s`` stops having its lease renewed, fails
(``job_timeout``) and its thread is abandoned to a replacement, so one stuck job never stops the queue.
:func:`job_handlers` maps each :class:`~cds.results.jobs.JobKind` to the use case that runs it.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from cds.errors import CdsError, InvalidInputError
from cds.privacy import where
from cds.results.jobs import ClaimedJob, JobKind
from cds.services import cohort, ecg, pathology, preread
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
        JobKind.ECG: functools.partial(ecg.run_ecg, engine),
    }


class _Heartbeat:
    """Renews a worker's lease every third of ``lease_s`` while a handler runs; fails the job past its time limit."""

    def __init__(self, worker: JobWorker, job_id: str) -> None:
        self.worker, self.job_id = worker, job_id
        self._done = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._beat, name=f"cds-job-lease-{job_id[:8]}", daemon=True)

    def _beat(self) -> None:
        worker = self.worker
        while not self._done.wait(min(worker.lease_s / 3, max(worker.job_timeout_s / 3, 0.01))):
            if time.monotonic() - self._started > worker.job_timeout_s:
                self._time_out()
                return
            try:
                with worker.database.session() as session:
                    held = jobs.renew(session, self.job_id, worker.worker_id, worker.lease_s)
            except Exception as exc:  # noqa: BLE001 - database hiccup: try again at the next beat
                log.warning("job %s lease renewal failed: %s", self.job_id, type(exc).__name__)
                continue
            if not held:
                log.warning("job %s was taken over by another worker", self.job_id)
                return

    def _time_out(self) -> None:
        worker = self.worker
        log.error("job %s ran past its %g s limit; failed, and its worker thread replaced", self.job_id,
                  worker.job_timeout_s)  # fmt: skip
        try:
            with worker.database.session() as session:
                jobs.fail(session, self.job_id, worker.worker_id, code="job_timeout", retry=False, refused=False,
                          message=f"the job ran longer than its limit of {worker.job_timeout_s:g} s")  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the lease lapses anyway; another worker fails it at claim
            log.warning("job %s could not be failed: %s", self.job_id, type(exc).__name__)
        worker.abandon_current()

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()


class JobWorker:
    """Polls the queue and runs jobs one at a time, in a thread of its own (:meth:`start`).

    Args:
        database: Where the jobs live.
        handlers: Job kind -> the function that runs a claimed job and returns its outcome.
        lease_s: How long a claim lasts before another worker may take the job over.
        poll_s: Pause between polls when the queue is empty.
        job_timeout_s: Longest a job may run (then it fails with ``job_timeout`` and the thread is replaced).
    """

    def __init__(self, database: Database, handlers: Mapping[str, JobHandler], *, lease_s: float = 300.0,
                 poll_s: float = 0.5, job_timeout_s: float = 3600.0) -> None:  # fmt: skip
        self.database = database
        self.handlers = dict(handlers)
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.job_timeout_s = job_timeout_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.abandoned = 0  # threads left behind in a job that ran past its limit
        self._stop = threading.Event()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run_once(self) -> bool:
        """Claim and run one job; ``False`` when there was nothing to do."""
        with self.database.session() as session:
            row = jobs.claim(session, self.worker_id, self.lease_s)
            job = ClaimedJob(id=row.id, kind=row.kind, payload=row.payload, actor=row.created_by, role=row.role,
                             subject=row.subject, attempts=row.attempts,
                             site=row.site) if row is not None else None  # fmt: skip
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
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - anything else may be transient: retry within the limit
            log.warning("job %s attempt failed: %s", job.id, where(exc))  # no message: it may hold input values
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

    def run_forever(self, generation: int | None = None) -> None:
        """Work until :meth:`stop`, or until this thread is abandoned in a job past its limit."""
        generation = self._generation if generation is None else generation
        while not self._stop.is_set() and generation == self._generation:
            try:
                busy = self.run_once()
            except Exception as exc:  # noqa: BLE001 - e.g. database down: keep the worker alive, retry later
                log.error("job worker: %s", type(exc).__name__)
                busy = False
            if not busy:
                self._stop.wait(self.poll_s)

    def start(self) -> None:
        """Run in a daemon thread."""
        with self._lock:
            self._thread = threading.Thread(target=self.run_forever, args=(self._generation,),
                                            name=f"cds-job-worker-{self._generation}", daemon=True)  # fmt: skip
            self._thread.start()

    def abandon_current(self) -> None:
        """Leave the thread stuck in a job behind (it ends when the job returns) and start a fresh one."""
        with self._lock:
            self._generation += 1
            self.abandoned += 1
        if not self._stop.is_set():
            self.start()

    @property
    def alive(self) -> bool:
        """Whether the current thread is running (a stopped or dead worker is not)."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def wait(self) -> None:
        """Block until :meth:`stop` (``cds worker``'s main thread)."""
        while not self._stop.wait(1.0):
            pass

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the thread to finish its current job and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


def engine_worker(engine: Engine) -> JobWorker:
    """A worker running every job kind on ``engine``."""
    return JobWorker(engine.database, job_handlers(engine), lease_s=engine.settings.job_lease_s,
                     job_timeout_s=engine.settings.job_timeout_s)
