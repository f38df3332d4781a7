"""The engine's Prometheus metrics: engine calls, scored requests, jobs by state, readiness.

Labels are model and method names and states, never request or patient data. The HTTP layer adds its request
metrics to the same registry (:mod:`cds.serving.api.middleware`), so ``/metrics`` serves both.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cds.models.spec import ModelSpec

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
            "cds_inference_batch_size", "Items per engine call", ("model",), registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )  # fmt: skip
        self.engine_seconds = Histogram(
            "cds_inference_seconds", "Engine time per call", ("model",), registry=self.registry,
            buckets=SECONDS_BUCKETS,
        )  # fmt: skip

    def observe_batch(self, spec: ModelSpec, items: int, seconds: float) -> None:
        """A backend's engine call (the label is the model name: no request or patient data)."""
        self.batch_size.labels(spec.name).observe(items)
        self.engine_seconds.labels(spec.name).observe(seconds)

    def count_scored(self, method: str, outcome: str) -> None:
        """One scored request of ``method`` that ended in ``outcome`` (``scored``, ``out_of_range``)."""
        self.inferences.labels(method, outcome).inc()
