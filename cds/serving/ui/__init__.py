"""The web workspace: static HTML, CSS and ES modules served by ``cds serve`` under ``/ui``.

The shell needs no authentication (it holds no data); everything it shows comes from the API with the user's bearer
token or API key. ``/ui/config.json`` tells the shell whether dev sign-in exists and the deployment's language
(``CDS_LANGUAGE`` when set, else null: the browser's language decides), and ``GET /v1/me``
(:mod:`cds.serving.api.routes.me`) tells it who the credential belongs to, so navigation follows the roles the server
recognises. Static responses carry a strict Content-Security-Policy: scripts, styles and connections from this origin
only, images also from ``blob:`` (rendered images are fetched with the token and shown from blobs); workers from this
origin and ``'wasm-unsafe-eval'`` so the viewer's DICOM decode worker (``/ui/dist``, built by ``make web``) can compile
its WASM codecs, which it fetches from this origin too (no CDN: the workspace works offline).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds import __version__
from cds.interop.card_language import Language
from cds.serving.api.auth import Role

STATIC = Path(__file__).with_name("static")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
                               "style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}  # fmt: skip

class _SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def ui_app(*, dev_mode: bool, language: Language | None = None) -> ASGIApp:
    """The workspace: ``config.json`` and the static files (``index.html`` for the folder).

    ``language`` is the deployment's default, used when neither the user nor the browser names English or Chinese.
    """

    async def config(_request: Request) -> JSONResponse:
        return JSONResponse({"dev_mode": dev_mode, "version": __version__, "roles": [r.value for r in Role],
                             "language": language.value if language is not None else None})

    routes = [Route("/config.json", config), Mount("/", StaticFiles(directory=STATIC, html=True))]
    return _SecurityHeaders(Router(routes=routes))


def mount_ui(app: FastAPI, *, dev_mode: bool, language: Language | None = None) -> None:
    """Serve the workspace at ``/ui`` (``/ui`` itself redirects to ``/ui/``)."""
    app.mount("/ui", ui_app(dev_mode=dev_mode, language=language), name="ui")
