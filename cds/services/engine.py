"""The engine every use case runs on: settings, registry, database, the backend factory, served risk models.

One :class:`Engine` is built per process by the composition root (:func:`cds.serving.engine.build_engine`), the
same for ``cds serve`` and ``cds worker``; the backend factory it is given is the only way a service makes a
backend, so every engine call runs on the configured engine (ONNX Runtime in-process or Triton) and is metered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cds.errors import BackendUnavailableError, CdsError, ModelNotFoundError
from cds.models.backend import Backend
from cds.models.registry import ModelRegistry
from cds.models.risk import RiskEquation, available_equations
from cds.models.spec import ModelSpec, Task
from cds.pipelines.risk.equation import equation_ref
from cds.pipelines.risk.model import ModelRiskEquation
from cds.results.risk import MethodRef
from cds.services.metrics import EngineMetrics
from cds.settings import Settings
from cds.store.audit_anchor import CheckpointStore
from cds.store.db import Database

log = logging.getLogger(__name__)
BackendFactory = Callable[[ModelSpec], Backend]  # an unloaded backend for a model version
RiskMethod = tuple[RiskEquation, MethodRef]


@dataclass
class Engine:
    """What the service and its workers hold; nothing is loaded until :meth:`load_models`.

    Attributes:
        settings: The configuration it was built from.
        registry: The model registry.
        database: Results, jobs, audit.
        metrics: Engine calls, scored requests, jobs, readiness.
        backends: Makes an unloaded backend for a model version on the configured engine, metered.
        checkpoints: Where the audit chain's signed checkpoints go (outside the database).
        served: Loaded risk-model backends by model name.
        load_errors: Reason codes of model versions that could not be loaded, by ``name:version``.
    """

    settings: Settings
    registry: ModelRegistry
    database: Database
    metrics: EngineMetrics
    backends: BackendFactory
    checkpoints: CheckpointStore
    served: dict[str, Backend] = field(default_factory=dict)
    load_errors: dict[str, str] = field(default_factory=dict)
    _methods: dict[str, RiskMethod] = field(default_factory=dict)
    _unreachable: dict[str, ModelSpec] = field(default_factory=dict)
    _last_retry: float = 0.0
    _retry_lock: threading.Lock = field(default_factory=threading.Lock)

    def load_models(self) -> None:
        """Load the newest loadable version of every tabular risk model.

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
        backend = self.backends(spec)
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
        self.served[spec.name] = backend
        return True

    def retry_unreachable(self, min_interval_s: float = 2.0) -> None:
        """Try again to load the models whose backend was unreachable (at most every ``min_interval_s``)."""
        now = time.monotonic()
        if not self._unreachable or now - self._last_retry < min_interval_s:
            return
        self._last_retry = now
        with self._retry_lock:
            loaded = [spec for spec in list(self._unreachable.values()) if self._try_load(spec)
                      and spec.name in self.served]  # fmt: skip
            if loaded:
                self._methods = self._build_methods()
                log.info("models now served: %s", ", ".join(s.key for s in loaded))

    def risk_methods(self) -> dict[str, RiskMethod]:
        """Equations and loaded risk models by name (fixed once the models are loaded)."""
        return self._methods or self._build_methods()

    def risk_method(self, name: str) -> RiskMethod:
        """The equation or served risk model ``name``.

        Raises:
            BackendUnavailableError: ``backend_unreachable``: a registered model whose backend is down (503).
            ModelNotFoundError: No such method (404; the message lists the methods).
        """
        self.retry_unreachable()
        methods = self.risk_methods()
        if name not in methods and name in self._unreachable:
            raise BackendUnavailableError(f"risk model {name!r} is registered but its inference backend is not "
                                          "reachable; retry shortly", code="backend_unreachable")
        if name not in methods:
            raise ModelNotFoundError(f"no risk method {name!r}; available: {', '.join(sorted(methods))}")
        return methods[name]

    def _build_methods(self) -> dict[str, RiskMethod]:
        methods: dict[str, RiskMethod] = {
            name: (equation, equation_ref(equation)) for name, equation in available_equations().items()
        }
        for name, backend in self.served.items():
            adapted = ModelRiskEquation(backend)
            methods[name] = (adapted, adapted.method())
        return methods

    def close(self) -> None:
        """Release the served backends and the database."""
        for backend in self.served.values():
            backend.close()
        self.database.close()
