"""Liveness, readiness and Prometheus metrics (no authentication; nothing patient-related is exposed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from cds.errors import CdsError
from cds.serving.api.deps import EngineDep, StateDep
from cds.store import jobs

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Liveness answer."""

    status: str


class WorkerStatus(BaseModel):
    """The in-process job workers: how many should run, how many do, and threads left in jobs past their limit."""

    configured: int
    running: int
    abandoned: int


class Readiness(BaseModel):
    """Readiness: models loaded, database reachable, job workers running, and what is missing."""

    ready: bool
    database: str
    models: dict[str, str]
    workers: WorkerStatus


@router.get("/healthz")
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(engine: EngineDep, state: StateDep) -> JSONResponse:
    """Ready when the database, every registered risk model and every configured job worker are (else 503)."""
    engine.retry_unreachable()
    try:
        engine.database.ping()
        database = "ok"
    except CdsError as exc:
        database = exc.code
    health_by_key = {b.spec.key: b.health() for b in engine.served.values()}
    models = {key: "ok" if h.ready else h.reason for key, h in health_by_key.items()}
    refused = {key: f"refused: {code}" for key, code in engine.load_errors.items()}
    served = {key.split(":")[0] for key in models}
    unserved = [key for key in refused if key.split(":")[0] not in served]
    workers = WorkerStatus(configured=len(state.workers), running=sum(w.alive for w in state.workers),
                           abandoned=sum(w.abandoned for w in state.workers))
    ready = (database == "ok" and all(v == "ok" for v in models.values()) and not unserved
             and workers.running == workers.configured)  # fmt: skip
    models |= refused
    engine.metrics.ready.set(1 if ready else 0)
    body = Readiness(ready=ready, database=database, models=models, workers=workers)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(engine: EngineDep) -> Response:
    """Prometheus metrics (request counts and latency by route template, scores, jobs by state, readiness)."""
    try:
        with engine.database.session() as session:
            by_state = jobs.counts(session)
        for state in jobs.JobState:
            engine.metrics.jobs.labels(state.value).set(by_state.get(state.value, 0))
    except SQLAlchemyError:
        pass  # metrics stay available while the database is down; readiness reports the outage
    return Response(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)
