"""What a model needs to run: the :class:`Backend` protocol and the identity every result carries.

Implementations live in :mod:`cds.serving.backends` and are injected into pipelines; pipelines only see this
protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from cds.models.spec import BackendKind, ModelSpec


class ModelRef(BaseModel):
    """Which model produced a result: name, version, the sha256 of the artifact that ran, and the backend."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str
    sha256: str
    backend: BackendKind

    @property
    def key(self) -> str:
        """``name:version``, spelled as :attr:`cds.models.spec.ModelSpec.key` spells it.

        How job outcomes, audit events and feedback refer to the model; the full identity (sha256, backend) is in
        each result.
        """
        return f"{self.name}:{self.version}"


class BackendMetadata(BaseModel):
    """What a loaded backend runs and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelRef
    device: str
    precision: str
    details: dict[str, str] = {}


class BackendHealth(BaseModel):
    """Whether a backend can serve now, and why not if it cannot."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ready: bool
    reason: str = ""


@runtime_checkable
class Backend(Protocol):
    """An inference engine bound to one model version.

    ``infer`` takes and returns tensors by name, batch first, checked against the model's spec on the way in
    and on the way out. Implementations are not required to be thread-safe beyond what their engine offers;
    the micro-batcher calls ``infer`` from one worker at a time.
    """

    @property
    def spec(self) -> ModelSpec:
        """The model version this backend runs."""
        ...

    def load(self) -> None:
        """Verify artifacts and make the model ready; idempotent."""
        ...

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch."""
        ...

    def metadata(self) -> BackendMetadata:
        """Model identity, device and precision."""
        ...

    def health(self) -> BackendHealth:
        """Readiness, with a reason when not ready."""
        ...

    def close(self) -> None:
        """Release the engine; later calls raise ``BackendUnavailableError``."""
        ...
