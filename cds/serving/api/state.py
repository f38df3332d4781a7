"""What the running service holds: settings, registry, database, authenticator, loaded risk models, metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cds.errors import CdsError
from cds.models.registry import ModelRegistry
from cds.models.risk import RiskEquation, available_equations
from cds.models.spec import Task
from cds.pipelines.results import MethodRef
from cds.pipelines.risk import equation_ref
from cds.pipelines.risk_model import ModelRiskEquation
from cds.serving.api.auth import Authenticator
from cds.serving.api.hooks_auth import DevHookClient, HookTokenVerifier
from cds.serving.api.middleware import Metrics
from cds.serving.backends import BaseBackend, OnnxRuntimeBackend
from cds.serving.jobs import PREREAD, RISK_FILE, JobWorker, preread_handler, risk_file_handler
from cds.settings import Settings
from cds.store.db import Database

log = logging.getLogger(__name__)


@dataclass
class AppState:
    """Built once in :func:`cds.serving.api.app.create_app`; nothing is created at import time."""

    settings: Settings
    registry: ModelRegistry
    database: Database
    authenticator: Authenticator
    metrics: Metrics
    hook_verifier: HookTokenVerifier
    dev_hook_client: DevHookClient | None = None
    backends: dict[str, BaseBackend] = field(default_factory=dict)
    load_errors: dict[str, str] = field(default_factory=dict)
    _methods: dict[str, tuple[RiskEquation, MethodRef]] = field(default_factory=dict)

    def load_models(self) -> None:
        """Load the newest loadable version of every tabular risk model on ONNX Runtime.

        A version that fails (e.g. an artifact whose sha256 does not match) is refused and reported, and the
        next older version serves instead.
        """
        for name in self.registry.names():
            for version in reversed(self.registry.versions(name)):
                spec = self.registry.get(name, version)
                if spec.task is not Task.RISK:
                    break
                backend = OnnxRuntimeBackend(spec)
                try:
                    backend.load()
                except CdsError as exc:
                    self.load_errors[spec.key] = exc.code
                    log.error("model %s refused: %s", spec.key, exc.code)
                    continue
                self.backends[name] = backend
                break
        self._methods = self._build_methods()

    def risk_methods(self) -> dict[str, tuple[RiskEquation, MethodRef]]:
        """Equations and loaded risk models by name (fixed once the models are loaded)."""
        return self._methods or self._build_methods()

    def _build_methods(self) -> dict[str, tuple[RiskEquation, MethodRef]]:
        methods: dict[str, tuple[RiskEquation, MethodRef]] = {
            name: (equation, equation_ref(equation)) for name, equation in available_equations().items()
        }
        for name, backend in self.backends.items():
            adapted = ModelRiskEquation(backend)
            methods[name] = (adapted, adapted.method())
        return methods

    def job_worker(self) -> JobWorker:
        """A worker with this service's job handlers."""
        handlers = {RISK_FILE: risk_file_handler(self.risk_methods),
                    PREREAD: preread_handler(self.registry, self.database,
                                             saliency_grid=self.settings.preread_saliency_grid)}
        return JobWorker(self.database, handlers, lease_s=self.settings.job_lease_s)

    def close(self) -> None:
        """Release backends and the database."""
        for backend in self.backends.values():
            backend.close()
        self.database.close()
