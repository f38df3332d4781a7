"""What the running service holds: settings, registry, database, authenticator, loaded risk models, metrics."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from cds.errors import BackendUnavailableError, CdsError
from cds.models.registry import ModelRegistry
from cds.models.risk import RiskEquation, available_equations
from cds.models.spec import ModelSpec, Task
from cds.pipelines.risk import equation_ref
from cds.pipelines.risk_model import ModelRiskEquation
from cds.results.risk import MethodRef
from cds.serving.api.auth import Authenticator
from cds.serving.api.hooks_auth import DevHookClient, HookTokenVerifier
from cds.serving.api.middleware import Metrics
from cds.serving.backends import BaseBackend, OnnxRuntimeBackend, TritonBackend, TritonOptions
from cds.serving.backends.triton import TritonProtocol
from cds.serving.jobs import (
    PATHOLOGY,
    PREREAD,
    RISK_FILE,
    JobWorker,
    pathology_handler,
    preread_handler,
    risk_file_handler,
)
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
    _unreachable: dict[str, ModelSpec] = field(default_factory=dict)
    _last_retry: float = 0.0
    _retry_lock: threading.Lock = field(default_factory=threading.Lock)

    def load_models(self) -> None:
        """Load the newest loadable version of every tabular risk model on the configured backend.

        A version that fails for good (e.g. an artifact whose sha256 does not match) is refused and reported, and
        the next older version serves instead. A model whose backend cannot be reached (Triton down) is reported
        and retried by :meth:`retry_unreachable`, so the service recovers by itself when the server returns.
        """
        for name in self.registry.names():
            for version in reversed(self.registry.versions(name)):
                spec = self.registry.get(name, version)
                if spec.task is not Task.RISK:
                    break
                if self._try_load(spec):
                    break
        self._methods = self._build_methods()

    def _try_load(self, spec: ModelSpec) -> bool:
        """Serve ``spec`` if it loads; ``False`` when it should be skipped for an older version."""
        backend = self.new_backend(spec)
        try:
            backend.load()
        except BackendUnavailableError as exc:  # transient: keep this version and retry later
            self.load_errors[spec.key] = exc.code
            self._unreachable[spec.name] = spec
            log.error("model %s unavailable: %s", spec.key, exc.code)
            return True
        except CdsError as exc:
            self.load_errors[spec.key] = exc.code
            log.error("model %s refused: %s", spec.key, exc.code)
            return False
        self.load_errors.pop(spec.key, None)
        self._unreachable.pop(spec.name, None)
        self.backends[spec.name] = backend
        return True

    def new_backend(self, spec: ModelSpec) -> BaseBackend:
        """An unloaded backend for ``spec`` on the configured engine, reporting its engine calls to the metrics."""
        settings = self.settings
        backend: BaseBackend
        if settings.backend == "triton":
            options = TritonOptions(url=settings.triton_url, protocol=TritonProtocol(settings.triton_protocol),
                                    timeout_s=settings.triton_timeout_s)  # fmt: skip
            backend = TritonBackend(spec, options)
        else:
            backend = OnnxRuntimeBackend(spec)
        backend.on_batch = self.metrics.observe_batch
        return backend

    def is_unreachable(self, name: str) -> bool:
        """Whether model ``name`` is registered but not served because its backend could not be reached."""
        return name in self._unreachable

    def retry_unreachable(self, min_interval_s: float = 2.0) -> None:
        """Try again to load the models whose backend was unreachable (at most every ``min_interval_s``)."""
        now = time.monotonic()
        if not self._unreachable or now - self._last_retry < min_interval_s:
            return
        self._last_retry = now
        with self._retry_lock:
            loaded = [spec for spec in list(self._unreachable.values()) if self._try_load(spec)
                      and spec.name in self.backends]  # fmt: skip
            if loaded:
                self._methods = self._build_methods()
                log.info("models now served: %s", ", ".join(s.key for s in loaded))

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
                                             saliency_grid=self.settings.preread_saliency_grid,
                                             backends=self.new_backend),
                    PATHOLOGY: pathology_handler(self.registry, self.database, backends=self.new_backend)}
        return JobWorker(self.database, handlers, lease_s=self.settings.job_lease_s)

    def close(self) -> None:
        """Release backends and the database."""
        for backend in self.backends.values():
            backend.close()
        self.database.close()
