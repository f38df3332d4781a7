"""What the running service holds: the engine, and what only HTTP needs (authentication, CDS Hooks clients)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cds.models.registry import ModelRegistry
from cds.services.engine import Engine
from cds.services.metrics import EngineMetrics
from cds.serving.api.auth import Authenticator
from cds.serving.api.hooks_auth import DevHookClient, HookTokenVerifier
from cds.serving.api.middleware import HttpMetrics
from cds.serving.dicom_node import DicomNode
from cds.serving.worker import JobWorker
from cds.settings import Settings
from cds.store.db import Database


@dataclass
class AppState:
    """Built once in :func:`cds.serving.api.app.create_app`; nothing is created at import time."""

    engine: Engine
    authenticator: Authenticator
    hook_verifier: HookTokenVerifier
    http_metrics: HttpMetrics
    dev_hook_client: DevHookClient | None = None
    workers: list[JobWorker] = field(default_factory=list)  # the in-process job workers, once started
    dicom_node: DicomNode | None = None  # the C-STORE SCP, when CDS_DICOM_PORT is set and the service runs

    @property
    def settings(self) -> Settings:
        """The engine's settings."""
        return self.engine.settings

    @property
    def registry(self) -> ModelRegistry:
        """The engine's model registry."""
        return self.engine.registry

    @property
    def database(self) -> Database:
        """The engine's database."""
        return self.engine.database

    @property
    def metrics(self) -> EngineMetrics:
        """The engine's metrics (the HTTP metrics share their registry)."""
        return self.engine.metrics
