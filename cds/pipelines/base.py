"""The pipeline template: ``preprocess → infer (the backend call, timed) → postprocess``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Generic, TypeVar

import numpy as np

from cds.models.backend import Backend
from cds.pipelines.timing import StageTimer

RawT = TypeVar("RawT")
ResultT = TypeVar("ResultT")


class Pipeline(ABC, Generic[RawT, ResultT]):
    """One task family's path from raw input to typed results, over an injected backend.

    Args:
        backend: A loaded backend for the model this pipeline serves.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def __call__(self, raw: RawT) -> list[ResultT]:
        """Run the whole pipeline on one raw input (which may hold several items)."""
        inputs = self.preprocess(raw)
        outputs, elapsed_ms = self.infer(inputs)
        return self.postprocess(inputs, outputs, elapsed_ms)

    @abstractmethod
    def preprocess(self, raw: RawT) -> dict[str, np.ndarray]:
        """Validate and turn raw input into model tensors (batch first)."""

    def infer(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        """Call the backend; return its outputs and the wall time in milliseconds."""
        timer = StageTimer()
        with timer.stage("infer"):
            outputs = self.backend.infer(inputs)
        return outputs, timer.ms["infer_ms"]

    @abstractmethod
    def postprocess(
        self, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray], elapsed_ms: float
    ) -> list[ResultT]:
        """Turn model outputs into one typed result per item."""
