"""ASGI middleware: request-size caps and Prometheus metrics (labels are route templates, never paths or IDs)."""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds.errors import PayloadTooLargeError
from cds.models.spec import ModelSpec


class Metrics:
    """The service's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cds_http_requests_total", "HTTP requests", ("method", "route", "status"), registry=self.registry
        )
        self.latency = Histogram(
            "cds_http_request_seconds", "HTTP request latency", ("route",), registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
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
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip

    def observe_batch(self, spec: ModelSpec, items: int, seconds: float) -> None:
        """A backend's engine call (the label is the model name: no request or patient data)."""
        self.batch_size.labels(spec.name).observe(items)
        self.engine_seconds.labels(spec.name).observe(seconds)


class MetricsMiddleware:
    """Counts requests and observes latency per route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status["code"])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)


class BodyLimitMiddleware:
    """Refuses bodies over the cap with 413 problem+json, by Content-Length or while streaming.

    Upload routes (paths ending in ``/jobs``, and DICOMweb) get ``max_upload_bytes``; everything else ``max_bytes``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int | None = None) -> None:
        self.app = app
        self.json_limit = max_bytes
        self.upload_limit = max_upload_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["path"].endswith("/jobs") or scope["path"].startswith("/dicomweb/")
        limit = self.upload_limit if upload else self.json_limit
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0
        started = {"response": False}

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["response"] = True
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except PayloadTooLargeError:  # raised outside the app's own error handling
            if not started["response"]:
                await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    body: dict[str, Any] = {
        "type": "urn:cds:problem:payload_too_large", "title": "Payload too large", "status": 413,
        "detail": f"request body exceeds {limit} bytes", "code": "payload_too_large",
    }  # fmt: skip
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
