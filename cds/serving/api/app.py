"""``create_app(settings)``: the FastAPI service, built explicitly (nothing is created at import time)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from cds import __version__
from cds.errors import ConfigurationError
from cds.pipelines.imaging.dicom_reader import prestart_decoders
from cds.pipelines.isolation import shutdown as stop_decoders
from cds.pipelines.pathology.isolated_slide import keep_spare_slide_child
from cds.services.delivery import Deliverer
from cds.services.metrics import MetricsFlusher, MetricsRollUp
from cds.serving.api import errors, openapi
from cds.serving.api.auth import Authenticator
from cds.serving.api.hooks_auth import DevHookClient, HookTokenVerifier, load_clients
from cds.serving.api.middleware import BodyLimitMiddleware, HttpMetrics, MetricsMiddleware
from cds.serving.api.routes import (
    about,
    alerts,
    audit,
    cds_hooks,
    consortium,
    dashboard,
    dev,
    dicom_dictionary,
    dicomweb,
    ecg,
    health,
    jobs,
    me,
    models,
    monitoring,
    observations,
    pathology,
    preread,
    referrals,
    registries,
    results,
    risk,
    worklist,
)
from cds.serving.api.state import AppState
from cds.serving.api.uploads import too_large_upload
from cds.serving.dev_keys import DEV_KEYS
from cds.serving.dicom_node import DicomNode
from cds.serving.engine import build_engine
from cds.serving.leadership import Leadership
from cds.serving.ui import mount_ui
from cds.serving.worker import engine_worker
from cds.settings import Settings
from cds.store.audit_anchor import Checkpointer

log = logging.getLogger(__name__)
ROUTERS = (health, me, models, risk, jobs, results, audit, cds_hooks, dashboard, worklist, preread, dicomweb, about,
           dicom_dictionary, observations, alerts, monitoring, registries,
           pathology, ecg, consortium, referrals)  # one module per URL resource; no two of them share a path prefix


def check_security(settings: Settings) -> None:
    """Refuse to run without real authentication unless dev mode is explicitly on, and refuse mixtures.

    Dev mode (anyone may mint any token) never runs beside production authentication; outside dev mode the CDS
    Hooks audience comes from ``CDS_PUBLIC_URL`` alone, never from a request's ``Host`` header.
    """
    if settings.dev_mode:
        if settings.jwt_jwks_file is not None or settings.api_keys_only or settings.hooks_clients_file is not None:
            raise ConfigurationError(
                "dev mode mints tokens for anyone and cannot run beside production authentication: unset "
                "CDS_DEV_MODE, or unset CDS_JWT_JWKS_FILE, CDS_API_KEYS_ONLY and CDS_HOOKS_CLIENTS_FILE",
                code="dev_mode_with_production_auth")  # fmt: skip
        log.warning("DEV MODE: self-signed tokens are issued at POST /v1/dev/token; never use this in production")
        return
    if settings.hooks_clients_file is not None and not settings.public_url:
        raise ConfigurationError("CDS_PUBLIC_URL is required with CDS_HOOKS_CLIENTS_FILE: EHRs sign for the "
                                 "service's configured URL, not for whatever Host a request names",
                                 code="public_url_required")  # fmt: skip
    if settings.jwt_jwks_file is None and not settings.api_keys_only:
        raise ConfigurationError(
            "no authentication configured: set CDS_JWT_JWKS_FILE and CDS_JWT_ISSUER (identity provider), or "
            "CDS_API_KEYS_ONLY=true (service accounts only), or CDS_DEV_MODE=true for local development",
            code="auth_not_configured",
        )
    if settings.jwt_jwks_file is not None and not settings.jwt_issuer:
        raise ConfigurationError("CDS_JWT_ISSUER is required with CDS_JWT_JWKS_FILE", code="auth_not_configured")


def build_state(settings: Settings) -> AppState:
    """The engine and what only HTTP needs: authenticators, CDS Hooks clients, request metrics."""
    engine = build_engine(settings)
    state = AppState(engine=engine, authenticator=Authenticator(settings),
                     hook_verifier=HookTokenVerifier(load_clients(settings.hooks_clients_file)),
                     http_metrics=HttpMetrics(engine.metrics.registry))  # fmt: skip
    if settings.dev_mode:
        state.dev_hook_client = DevHookClient(settings.data_dir / DEV_KEYS)
        state.hook_verifier.clients[DevHookClient.issuer] = state.dev_hook_client.client
    return state


def start_decoders(settings: Settings) -> None:
    """Start the decoder processes in the background (``CDS_DECODE_PRESTART``), and a spare one for slides.

    Now, not when the first reader opens a study or a slide and would wait about a second for them.
    """
    if settings.decode_prestart:
        threading.Thread(target=prestart_decoders, name="cds-decoder-warm-up", daemon=True).start()
        keep_spare_slide_child()


def create_app(settings: Settings) -> FastAPI:
    """The service for ``settings``: database migrated, models loaded at start-up, routes mounted.

    Raises:
        ConfigurationError: Unsafe configuration (no authentication outside dev mode).
    """
    check_security(settings)
    state = build_state(settings)
    engine = state.engine

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        engine.database.migrate(site=settings.site)
        engine.load_models()
        start_decoders(settings)
        flusher = MetricsFlusher(engine.metrics, engine.database.session, settings.metrics_flush_s)
        flusher.start()  # every process keeps its engine calls in the database, for the dashboard's history
        state.workers = [engine_worker(engine) for _ in range(settings.job_workers)]
        for worker in state.workers:
            worker.start()
        checkpointer = Checkpointer(engine.database, engine.checkpoints, settings.audit_checkpoint_s)
        deliverer = Deliverer(engine, settings.outbox_interval_s)
        roll_up = MetricsRollUp(engine.database.session, settings.metrics_retention_days)
        state.dicom_node = DicomNode(engine) if settings.dicom_port is not None else None
        singletons = [service for service in (checkpointer, deliverer, roll_up, state.dicom_node)
                      if service is not None]  # fmt: skip

        def lead() -> None:
            started: list[Any] = []
            try:
                for service in singletons:
                    service.start()
                    started.append(service)
            except BaseException:  # all or none: a process that cannot run them all runs none
                for service in reversed(started):
                    service.stop()
                raise

        leadership = Leadership(settings.data_dir / "service.lock", lead)
        leadership.start()
        yield

        def resign() -> None:
            for service in reversed(singletons):
                service.stop()

        leadership.stop(resign)  # the services stop before the lock is given up, so two never overlap
        for worker in state.workers:
            worker.stop()
        flusher.stop()
        engine.close()
        stop_decoders()  # the decoder processes and the spare go with the service

    app = FastAPI(
        title="cds",
        version=__version__,
        description="AI clinical decision-support and imaging inference engine. Not for diagnostic use.",
        lifespan=lifespan,
    )
    app.state.cds = state
    routers = [module.router for module in ROUTERS] + ([dev.router] if settings.dev_mode else [])
    errors.install(app, routers)
    for router in routers:
        app.include_router(router)
    mount_ui(app, dev_mode=settings.dev_mode, language=settings.language)
    openapi.install(app, routers)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_json_bytes, max_upload_bytes=settings.max_upload_bytes,
        on_too_large=partial(too_large_upload, state),
    )
    app.add_middleware(MetricsMiddleware, metrics=state.http_metrics)
    if settings.cors_origins:  # outermost, so refusals carry the headers too and a browser can read them
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["Authorization", "X-API-Key",
                           "Content-Type", "Accept"], expose_headers=["Location", "Content-Location"],
                           max_age=600)  # fmt: skip
    return app


def service_from_environment() -> FastAPI:
    """The service for the ``CDS_*`` environment: what each worker process of ``cds serve --workers N`` runs."""
    return create_app(Settings())
