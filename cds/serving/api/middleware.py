"""ASGI middleware: request-size caps and Prometheus metrics (labels are route templates, never paths or IDs)."""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
    """Refuses what no route should see, before the route sees it, with problem+json.

    * bodies over the cap: 413, by Content-Length or while streaming (chunked bodies too); upload routes (paths
      ending in ``/jobs``, and DICOMweb) get ``max_upload_bytes``, everything else ``max_bytes``;
    * a NUL character in the path, the query string or a JSON body: 422 ``nul_character`` (no database stores it,
      and no clinical text holds one).

    A refusal is answered at once; whatever the route would have sent afterwards is dropped.
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
            await _problem(send, 413, "payload_too_large", f"request body exceeds {limit} bytes")
            return
        if "\x00" in scope["path"] or b"%00" in bytes(scope.get("query_string") or b""):
            await _problem(send, 422, "nul_character", "the path or query holds a NUL character")
            return
        json_body = b"json" in headers.get(b"content-type", b"").lower()
        seen, tail, answered = 0, b"", False

        async def checked() -> Message:
            nonlocal seen, tail, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            body = message.get("body", b"")
            seen += len(body)
            window = tail + body
            if seen > limit:
                await _problem(send, 413, "payload_too_large", f"request body exceeds {limit} bytes")
            elif json_body and (b"\\u0000" in window or b"\x00" in window):
                await _problem(send, 422, "nul_character", "the JSON body holds a NUL character")
            else:
                tail = window[-5:]
                return message
            answered = True
            return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            if not answered:
                await send(message)

        try:
            await self.app(scope, checked, guarded_send)
        except Exception:
            if not answered:  # the refusal was already sent; anything the route raised after is moot
                raise


async def _problem(send: Send, status: int, code: str, detail: str) -> None:
    title = {413: "Payload too large", 422: "Invalid request"}.get(status, "Refused")
    body: dict[str, Any] = {"type": f"urn:cds:problem:{code}", "title": title, "status": status, "detail": detail,
                            "code": code}  # fmt: skip
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
