"""Shared behaviour of every backend: contract checks around the engine call, lifecycle and identity.

A concrete backend implements ``_load``, ``_run`` and ``_close`` (and names its device and precision); this base
validates inputs before the engine sees them and outputs before the caller sees them, so every engine keeps
the same contract.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

import numpy as np

from cds.errors import BackendUnavailableError, CdsError, InferenceError
from cds.models.backend import BackendHealth, BackendMetadata, ModelRef
from cds.models.spec import BackendKind, ModelSpec
from cds.models.tensors import batch_size, check_tensors

BatchObserver = Callable[[ModelSpec, int, float], None]  # (model, batch size, engine seconds)


class BaseBackend(ABC):
    """Template for :class:`~cds.models.backend.Backend` implementations.

    Args:
        spec: The model version to run.
        check_input_range: Check input values (finite, inside ``value_range``) before inference.
    """

    kind: BackendKind

    def __init__(self, spec: ModelSpec, *, check_input_range: bool = True) -> None:
        self._spec = spec
        self._check_input_range = check_input_range
        self._loaded = False
        self._closed = False
        self._lock = threading.Lock()
        self._sha256 = ""
        self.on_batch: BatchObserver | None = None  # told of every engine call (e.g. the service's metrics)

    @property
    def spec(self) -> ModelSpec:
        """The model version this backend runs."""
        return self._spec

    def load(self) -> None:
        """Verify artifacts and prepare the engine; calling it again does nothing."""
        with self._lock:
            if self._closed:
                raise BackendUnavailableError(f"{self.kind.value} backend for {self._spec.key} is closed")
            if not self._loaded:
                self._sha256 = self._load()
                self._loaded = True

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate ``inputs``, run the engine, validate and return its outputs.

        A batch larger than the spec's ``max_batch_size`` runs as consecutive engine calls of at most that
        size, so no engine is ever asked for more than the model is deployed with.

        Raises:
            InvalidInputError: The inputs break the model's input contract.
            BackendUnavailableError: The backend is closed or cannot be reached.
            InferenceError: The engine failed, or its outputs break the output contract.
        """
        if self._closed:
            raise BackendUnavailableError(f"{self.kind.value} backend for {self._spec.key} is closed")
        if not self._loaded:
            self.load()
        check_tensors(self._spec.inputs, inputs, role="input", check_range=self._check_input_range)
        total, limit = batch_size(inputs), self._spec.max_batch_size
        if total <= limit:
            return self._run_checked(inputs)
        chunks = [
            self._run_checked({name: array[start : start + limit] for name, array in inputs.items()})
            for start in range(0, total, limit)
        ]
        return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}

    def _run_checked(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One engine call of at most ``max_batch_size`` items, with its outputs checked."""
        start = time.perf_counter()
        try:
            outputs = self._run(inputs)
        except CdsError:
            raise
        except Exception as exc:  # noqa: BLE001 - an engine's own errors become one typed error
            raise InferenceError(
                f"{self.kind.value} backend failed on {self._spec.key}: {type(exc).__name__}: {exc}"
            ) from exc
        check_tensors(self._spec.outputs, outputs, role="output", check_range=False)
        if batch_size(outputs) != batch_size(inputs):
            raise InferenceError(
                f"{self.kind.value} backend returned batch {batch_size(outputs)} for an input batch of "
                f"{batch_size(inputs)}",
                code="output_batch",
            )
        if self.on_batch is not None:
            self.on_batch(self._spec, batch_size(inputs), time.perf_counter() - start)
        return outputs

    def metadata(self) -> BackendMetadata:
        """Model identity (with the sha256 of the artifact actually loaded), device and precision."""
        if not self._loaded:
            raise BackendUnavailableError(f"{self.kind.value} backend for {self._spec.key} is not loaded")
        return BackendMetadata(
            model=ModelRef(name=self._spec.name, version=self._spec.version, sha256=self._sha256, backend=self.kind),
            device=self._device(),
            precision=self._precision(),
            details=self._details(),
        )

    def health(self) -> BackendHealth:
        """Ready when loaded, not closed, and the engine's own check passes."""
        if self._closed:
            return BackendHealth(ready=False, reason="closed")
        if not self._loaded:
            return BackendHealth(ready=False, reason="not loaded")
        return self._health()

    def close(self) -> None:
        """Release the engine. Safe to call twice."""
        with self._lock:
            if not self._closed and self._loaded:
                self._close()
            self._closed = True

    def __enter__(self) -> BaseBackend:
        self.load()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abstractmethod
    def _load(self) -> str:
        """Prepare the engine; return the sha256 of the artifact that runs."""

    @abstractmethod
    def _run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one validated batch."""

    @abstractmethod
    def _close(self) -> None:
        """Release engine resources."""

    @abstractmethod
    def _device(self) -> str:
        """Where the model runs, e.g. ``cpu`` or ``cuda:0``."""

    @abstractmethod
    def _precision(self) -> str:
        """Numeric precision, e.g. ``fp32``."""

    def _details(self) -> dict[str, str]:
        return {}

    def _health(self) -> BackendHealth:
        return BackendHealth(ready=True)


def as_contiguous(array: np.ndarray) -> np.ndarray:
    """C-contiguous view or copy, as engines that read raw buffers need."""
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)
