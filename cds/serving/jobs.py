"""Job workers: claim durable jobs from the database and run them, in-process or as ``cds worker`` processes.

A handler's :class:`~cds.errors.InvalidInputError` fails the job for good (the input will not get better); any
other error puts it back in the queue until its attempts are used up. A worker that dies leaves its job leased;
when the lease expires another worker (or the restarted server) takes it again.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pydicom

from cds.errors import CdsError, InvalidInputError
from cds.models.registry import ModelRegistry
from cds.models.risk import RiskEquation
from cds.pipelines.dicom_reader import read_instance
from cds.pipelines.risk_file import score_file
from cds.serving.preread import BackendFactory, PrereadReport, PrereadRunner, Refusal, onnxruntime_backend
from cds.store import jobs
from cds.store.audit import AuditEvent, append_event
from cds.store.db import Database
from cds.store.dicom_index import AI_RESULT, index_dataset

log = logging.getLogger(__name__)
JobHandler = Callable[[dict[str, Any]], dict[str, Any]]
RISK_FILE = "risk_file"
PREREAD = "preread"
PATHOLOGY = "pathology"


def risk_file_handler(methods: Callable[[], Mapping[str, tuple[RiskEquation, object]]]) -> JobHandler:
    """Scores an uploaded cohort file with the named equation or risk model into a Parquet file."""

    def handle(payload: dict[str, Any]) -> dict[str, Any]:
        available = methods()
        if payload["method"] not in available:
            raise InvalidInputError(f"risk method {payload['method']!r} is no longer available", code="method_gone")
        equation, _ = available[payload["method"]]
        summary = score_file(equation, Path(payload["input"]), Path(payload["output"]))
        return {"rows": summary.rows, "scored": summary.scored, "out_of_range": summary.out_of_range,
                "errors": summary.errors, "output": Path(payload["output"]).name}  # fmt: skip

    return handle


def preread_handler(registry: ModelRegistry, database: Database, *, saliency_grid: int = 7,
                    backends: BackendFactory = onnxruntime_backend) -> JobHandler:  # fmt: skip
    """Pre-reads stored DICOM instances (payload ``files``, ``output``, models, ``actor``/``role``).

    Every pre-read and every refusal is audited with the model identity and the input hash. The result lists the
    outcomes (UIDs, model, findings or structures) and refusals by file name; a job in which nothing could be
    pre-read fails for good with the first refusal's reason.
    """

    def handle(payload: dict[str, Any]) -> dict[str, Any]:
        report, instances = PrereadReport(), []
        for file in (Path(f) for f in payload["files"]):
            try:
                instances.append(read_instance(file, name=file.name))
            except CdsError as exc:
                report.refusals.append(Refusal(file.name, exc.code, exc.message))
        ct_model = payload.get("ct_model")
        with PrereadRunner(registry, registry.get(payload["model"]), registry.get(ct_model) if ct_model else None,
                           Path(payload["output"]), saliency_grid=saliency_grid, backends=backends) as runner:
            for series in runner.group(instances):
                runner.run_series(series, report)
        actor, role = payload.get("actor", ""), payload.get("role", "")
        with database.session() as session:
            for outcome in report.outcomes:
                for output in sorted(Path(outcome.folder).glob("*.dcm")):  # SR, SEG, captures: QIDO/WADO serve them
                    index_dataset(session, pydicom.dcmread(output, stop_before_pixels=True), output, origin=AI_RESULT)
                append_event(session, AuditEvent(
                    actor=actor, role=role, action="imaging.preread", resource=f"ImagingStudy/{outcome.study_uid}",
                    outcome="success", model=outcome.model, input_sha256=outcome.input_sha256,
                    detail={"series": outcome.series_uid, "kind": outcome.kind, "uid": outcome.uid}))
            for refusal in report.refusals:
                append_event(session, AuditEvent(actor=actor, role=role, action="imaging.preread",
                                                 resource="ImagingStudy/unknown", outcome="refused",
                                                 detail={"reason": refusal.reason}))
        if not report.outcomes:
            first = report.refusals[0] if report.refusals else Refusal("", "empty_input", "nothing to pre-read")
            raise InvalidInputError(f"{first.source}: {first.message}", code=first.reason)
        result = report.as_dict()
        for entry in result["outcomes"]:
            entry.pop("folder")  # a server path; the API serves outputs by UID
        return dict(result)

    return handle


def pathology_handler(registry: ModelRegistry, database: Database, *,
                      backends: BackendFactory = onnxruntime_backend) -> JobHandler:  # fmt: skip
    """Reads an uploaded slide or tile (payload ``file``, ``output``, ``model``, ``actor``/``role``/``subject``).

    The read is audited with the model identity and the file's sha256; a slide without tissue is a result
    (``no_tissue``), not a failure; unreadable input fails the job for good with its reason code.
    """
    from cds.pipelines.pathology.outputs import write_slide_outputs
    from cds.pipelines.pathology.pipeline import SlidePipeline

    def handle(payload: dict[str, Any]) -> dict[str, Any]:
        spec = registry.get(payload["model"])
        with backends(spec) as backend:
            analysis = SlidePipeline(backend)(Path(payload["file"]))
        written = write_slide_outputs(analysis, Path(payload["output"]), title=f"AI pathology read: {spec.key}")
        result = analysis.result
        model = f"{result.model.name}:{result.model.version}"
        with database.session() as session:
            append_event(session, AuditEvent(
                actor=payload.get("actor", ""), role=payload.get("role", ""), action="pathology.read",
                resource=f"Slide/{result.input_sha256[:16]}", subject=payload.get("subject", ""), outcome="success",
                model=model, input_sha256=result.input_sha256, detail={"status": result.status.value}))
        summary = result.model_dump(mode="json", include={"status", "reason", "label", "finding", "score", "warnings"})
        return summary | {"model": model, "input_sha256": result.input_sha256, "outputs": [p.name for p in written]}

    return handle


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
        handlers: Job kind -> function from payload to result.
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
            job = jobs.claim(session, self.worker_id, self.lease_s)
            claimed = (job.id, job.kind, job.payload) if job is not None else None
        if claimed is None:
            return False
        job_id, kind, payload = claimed
        handler = self.handlers.get(kind)
        heartbeat = _Heartbeat(self, job_id)
        try:
            if handler is None:
                raise InvalidInputError(f"no handler for job kind {kind!r}", code="unknown_job_kind")
            with heartbeat:
                result = handler(json.loads(payload))
        except InvalidInputError as exc:
            with self.database.session() as session:
                jobs.fail(session, job_id, self.worker_id, str(exc), retry=False)
            return True
        except Exception as exc:  # noqa: BLE001 - any other failure may be transient: retry within the limit
            log.warning("job %s attempt failed: %s", job_id, type(exc).__name__)
            log.debug("%s", traceback.format_exc())
            with self.database.session() as session:
                jobs.fail(session, job_id, self.worker_id, f"{type(exc).__name__}: {exc}"[:500], retry=True)
            return True
        with self.database.session() as session:
            if not jobs.complete(session, job_id, self.worker_id, result):
                log.warning("job %s was taken over by another worker; this result is discarded", job_id)
        return True

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
