"""ASGI middleware: request-size caps and Prometheus metrics (labels are route templates, never paths or IDs)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds.services.metrics import SECONDS_BUCKETS

log = logging.getLogger(__name__)


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

    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int | None = None,
                 on_too_large: Callable[[str, str, dict[str, str]], None] | None = None) -> None:  # fmt: skip
        self.app = app
        self.json_limit = max_bytes
        self.upload_limit = max_upload_bytes or max_bytes
        self.on_too_large = on_too_large  # (method, path, headers): e.g. audit the refused upload

    async def _too_large(self, scope: Scope, send: Send, limit: int) -> None:
        await _problem(send, 413, "payload_too_large", f"request body exceeds {limit} bytes")
        if self.on_too_large is not None:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
            try:
                await run_in_threadpool(self.on_too_large, scope.get("method", ""), scope["path"], headers)
            except Exception as exc:  # noqa: BLE001 - the refusal is answered already; a failed audit must not 500
                log.error("could not audit a refused upload: %s", type(exc).__name__)

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
            await self._too_large(scope, send, limit)
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
                await self._too_large(scope, send, limit)
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
