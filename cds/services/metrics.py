"""The engine's metrics: engine calls, scored requests, jobs by state, readiness.

Prometheus (``/metrics``) holds this process's view; labels are model and method names and states, never request
or patient data. The HTTP layer adds its request metrics to the same registry (:mod:`cds.serving.api.middleware`),
so ``/metrics`` serves both. Engine calls (per model ``name:version``) and scored requests are also counted for the
database (:class:`cds.store.engine_metrics.PendingMetrics`), flushed every few seconds by :class:`MetricsFlusher`
and at shutdown, so the dashboard's history survives restarts and adds up every process; the leading process rolls
finished days up and drops those past the retention (:class:`MetricsRollUp`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.orm import Session

from cds.models.spec import ModelSpec
from cds.periodic import Periodic
from cds.store.engine_metrics import PendingMetrics, roll_up

SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class EngineMetrics:
    """The engine's metrics, in ``registry`` (a new one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.inferences = Counter(
            "cds_inferences_total", "Scored requests", ("method", "outcome"), registry=self.registry
        )
        self.ready = Gauge("cds_ready", "1 when models and database are available", registry=self.registry)
        self.jobs = Gauge("cds_jobs", "Jobs by state (queued = queue depth)", ("state",), registry=self.registry)
        self.batch_size = Histogram(
            "cds_inference_batch_size", "Items per engine call", ("model", "version"), registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )  # fmt: skip
        self.engine_seconds = Histogram(
            "cds_inference_seconds", "Engine time per call", ("model", "version"), registry=self.registry,
            buckets=SECONDS_BUCKETS,
        )  # fmt: skip
        self.pending = PendingMetrics(SECONDS_BUCKETS)  # for the database, by model name:version

    def observe_batch(self, spec: ModelSpec, items: int, seconds: float) -> None:
        """A backend's engine call (labelled by model name and version: no request or patient data)."""
        self.batch_size.labels(spec.name, spec.version).observe(items)
        self.engine_seconds.labels(spec.name, spec.version).observe(seconds)
        self.pending.add_call(spec.key, items, seconds)

    def count_scored(self, method: str, outcome: str) -> None:
        """One scored request of ``method`` that ended in ``outcome`` (``scored``, ``out_of_range``)."""
        self.inferences.labels(method, outcome).inc()
        self.pending.add_scored(method, outcome)


class MetricsFlusher:
    """Flushes ``metrics``' counts to the database every ``interval_s`` in a daemon thread (every process runs one).

    Args:
        metrics: The process's metrics.
        open_session: Opens a session that commits on leaving (:meth:`cds.store.db.Database.session`).
        interval_s: Seconds between flushes.
    """

    def __init__(self, metrics: EngineMetrics, open_session: Callable[[], AbstractContextManager[Session]],
                 interval_s: float = 10.0) -> None:  # fmt: skip
        self.metrics, self.open_session, self.interval_s = metrics, open_session, interval_s
        self._rounds = Periodic("cds-metrics", self._flush, interval_s, final=True)

    def _flush(self) -> None:
        self.metrics.pending.flush(self.open_session)

    def flush(self) -> None:
        """Flush now; a database outage is logged and the counts kept for the next flush."""
        self._rounds.run_once()

    def start(self) -> None:
        """Begin flushing."""
        self._rounds.start()

    def stop(self) -> None:
        """Stop, flushing what was counted last."""
        self._rounds.stop()


class MetricsRollUp:
    """Rolls the engine metrics of finished days up into one row per day and series (the leader only).

    Every ten minutes by default, so a leader that restarts often still gets there; a round with nothing to merge
    reads one small row per day and series.

    Args:
        open_session: Opens a session that commits on leaving.
        retention_days: Days of history kept (the dashboard's longest window is 366).
        interval_s: Seconds between rounds.
    """

    def __init__(self, open_session: Callable[[], AbstractContextManager[Session]], retention_days: int,
                 interval_s: float = 600.0) -> None:  # fmt: skip
        self.open_session, self.retention_days = open_session, retention_days
        self._rounds = Periodic("cds-metrics-roll-up", self.roll_up, interval_s)

    def roll_up(self) -> tuple[int, int]:
        """One round now: ``(rows merged away, rows dropped)``."""
        return roll_up(self.open_session, dt.datetime.now(dt.UTC), retention_days=self.retention_days)

    def start(self) -> None:
        """Begin the rounds."""
        self._rounds.start()

    def stop(self) -> None:
        """Stop after the round in progress."""
        self._rounds.stop()
