"""ASGI middleware: request-size caps and Prometheus metrics (labels are route templates, never paths or IDs)."""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds.errors import PayloadTooLargeError
from cds.services.metrics import SECONDS_BUCKETS


class HttpMetrics:
    """Request counts and latency by route template, in the engine's metrics registry (so ``/metrics`` has both)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "cds_http_requests_total", "HTTP requests", ("method", "route", "status"), registry=registry
        )
        self.latency = Histogram(
            "cds_http_request_seconds", "HTTP request latency", ("route",), registry=registry, buckets=SECONDS_BUCKETS
        )


class MetricsMiddleware:
    """Counts requests and observes latency per route template."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
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
