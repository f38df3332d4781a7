"""The composition root: settings → registry, database, metrics, the backend factory → one :class:`Engine`.

``cds serve`` (:func:`cds.serving.api.app.create_app`) and ``cds worker`` both start from :func:`build_engine`, so
the service and its workers run the same models on the same engine with the same settings.
"""

from __future__ import annotations

from cds.models.backend import Backend
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind, ModelSpec
from cds.pipelines import isolation
from cds.pipelines.isolation import IsolationLimits
from cds.privacy import quiet_library_warnings
from cds.services.engine import Engine
from cds.services.metrics import EngineMetrics
from cds.serving.backends import BackendOptions, TritonOptions, create_backend
from cds.serving.backends.triton import TritonProtocol
from cds.settings import Settings
from cds.store.audit import use_pseudonym_key
from cds.store.audit_anchor import checkpoint_store, pseudonym_key
from cds.store.db import Database


def backend_options(settings: Settings) -> BackendOptions | None:
    """The options of the configured engine (``None``: the engine's defaults)."""
    if settings.backend is BackendKind.TRITON:
        return TritonOptions(url=settings.triton_url, protocol=TritonProtocol(settings.triton_protocol),
                             timeout_s=settings.triton_timeout_s)
    return None


def build_engine(settings: Settings) -> Engine:
    """The engine for ``settings``: nothing is loaded or migrated yet (see :meth:`Engine.load_models`).

    Also sets what is process-wide: the limits for decoding untrusted pixel data (:mod:`cds.pipelines.isolation`),
    withheld library warnings, and the key of the audit details' pseudonyms (:mod:`cds.privacy`).
    """
    isolation.configure(IsolationLimits(timeout_s=settings.decode_timeout_s,
                                        memory_bytes=settings.decode_memory_bytes, workers=settings.decode_workers))
    quiet_library_warnings()
    checkpoints = checkpoint_store(settings)
    use_pseudonym_key(pseudonym_key(checkpoints.key))
    metrics = EngineMetrics()
    options = backend_options(settings)

    def backends(spec: ModelSpec) -> Backend:
        backend = create_backend(settings.backend, spec, options)
        backend.on_batch = metrics.observe_batch
        return backend

    return Engine(settings=settings, registry=ModelRegistry.from_directory(settings.registry_dir),
                  database=Database(settings.resolved_database_url), metrics=metrics, backends=backends,
                  checkpoints=checkpoints)
